//! Finding the leader among several masters: each is asked in turn, through the gRPC health
//! service, whether it serves the admin API; standbys and unreachable masters are passed over.

use std::fmt;
use std::time::Duration;

use baton_common::master_list::{is_standby, named_leader};
use baton_common::proto::ListAgentsRequest;
use baton_common::proto::admin_service_server::SERVICE_NAME;
use baton_common::tls::ClientTls;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::client::{Admin, Bearer, admin, channel};

/// How long a master may take to say whether it leads.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a master answered when asked whether it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It serves the admin API.
    Leading,
    /// A standby master.
    Standby {
        /// The leader it named, if it knows one.
        leader: Option<String>,
    },
    /// It cannot be used, for this reason.
    Unusable(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leading => f.write_str("leading"),
            Self::Standby {
                leader: Some(leader),
            } => write!(f, "standby (leader at {leader})"),
            Self::Standby { leader: None } => f.write_str("standby (no leader named)"),
            Self::Unusable(why) => f.write_str(why),
        }
    }
}

/// Connects to the first of `urls` that leads, or fails naming what each answered.
pub async fn connect_leader(
    urls: &[String],
    bearer: &Bearer,
    tls: &ClientTls,
) -> anyhow::Result<Admin> {
    let mut answers = Vec::new();
    for url in urls {
        let answer = match channel(url, tls).await {
            Ok(channel) => match ask(&channel, bearer).await {
                Answer::Leading => return Ok(admin(channel, bearer.clone())),
                answer => answer,
            },
            Err(cause) => Answer::Unusable(cause),
        };
        answers.push((url.clone(), answer));
    }
    Err(no_leader(&answers))
}

/// Asks the master on `channel` whether it leads; a standby is also asked where the leader is.
async fn ask(channel: &Channel, bearer: &Bearer) -> Answer {
    let request = HealthCheckRequest {
        service: SERVICE_NAME.to_string(),
    };
    let mut health = HealthClient::new(channel.clone());
    match tokio::time::timeout(ANSWER_TIMEOUT, health.check(request)).await {
        Err(_) => Answer::Unusable(format!("no health answer within {ANSWER_TIMEOUT:?}")),
        Ok(Err(status)) => Answer::Unusable(format!(
            "health check failed: {:?} {}",
            status.code(),
            status.message()
        )),
        Ok(Ok(response)) => match response.into_inner().status() {
            ServingStatus::Serving => Answer::Leading,
            ServingStatus::NotServing => Answer::Standby {
                leader: leader_named_by(channel, bearer).await,
            },
            other => Answer::Unusable(format!("health {}", other.as_str_name())),
        },
    }
}

/// The leader a standby names when it declines an admin call.
async fn leader_named_by(channel: &Channel, bearer: &Bearer) -> Option<String> {
    let mut admin = admin(channel.clone(), bearer.clone());
    let call = admin.list_agents(ListAgentsRequest::default());
    match tokio::time::timeout(ANSWER_TIMEOUT, call).await {
        Ok(Err(status)) if is_standby(&status) => named_leader(&status),
        _ => None,
    }
}

/// The error when none of the masters leads: each URL and what it answered.
fn no_leader(answers: &[(String, Answer)]) -> anyhow::Error {
    let answered: Vec<String> = answers
        .iter()
        .map(|(url, answer)| format!("{url}: {answer}"))
        .collect();
    anyhow::anyhow!(
        "cannot reach a leading Baton master: {} (set --master or BATON_MASTER)",
        answered.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_lists_every_master_and_its_answer() {
        let answers = [
            (
                "http://a:8090".to_string(),
                Answer::Standby {
                    leader: Some("http://c:8090".into()),
                },
            ),
            (
                "http://b:8090".to_string(),
                Answer::Unusable("connection refused".into()),
            ),
            (
                "http://d:8090".to_string(),
                Answer::Standby { leader: None },
            ),
        ];
        assert_eq!(
            no_leader(&answers).to_string(),
            "cannot reach a leading Baton master: http://a:8090: standby (leader at http://c:8090); \
             http://b:8090: connection refused; http://d:8090: standby (no leader named) \
             (set --master or BATON_MASTER)"
        );
    }
}
