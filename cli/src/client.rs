//! Connecting to the master, and the errors that decide the exit status.

use std::time::Duration;

use baton_common::error_chain;
use baton_common::master_list::MasterList;
use baton_common::proto::admin_service_client::AdminServiceClient;
use baton_common::tls::ClientTls;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The admin API client over one connection, presenting the caller's token.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer TOKEN` to every call when a token is given.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// Presents `token`, when given.
    pub fn new(token: Option<&str>) -> Result<Self, UsageError> {
        let value = match token {
            Some(token) => Some(format!("Bearer {token}").parse().map_err(|_| {
                UsageError("--token / BATON_TOKEN must be printable ASCII without spaces".into())
            })?),
            None => None,
        };
        Ok(Self(value))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The token in `$XDG_CONFIG_HOME/baton/token` (or `~/.config/baton/token`), if that file exists.
pub fn token_from_config() -> Option<String> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".config"))
        })?;
    let token = std::fs::read_to_string(dir.join("baton").join("token")).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Largest gRPC message sent or received (contexts and checkpoint lists can be big).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// How long to wait for the master to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A mistake in the command line found after parsing; exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every command is given: where the master is and whether to print JSON.
#[derive(Debug, Clone)]
pub struct Run {
    /// The masters' URLs (several: the leader is looked for among them).
    pub masters: MasterList,
    /// Print JSON instead of tables.
    pub json: bool,
    /// The admin API token, if any.
    pub token: Option<String>,
    /// TLS towards an `https://` master.
    pub tls: ClientTls,
}

impl Run {
    /// Connects to the master, or with several URLs to the first that leads.
    pub async fn connect(&self) -> anyhow::Result<Admin> {
        let bearer = Bearer::new(self.token.as_deref())?;
        match self.masters.urls() {
            [url] => connect(url, bearer, &self.tls).await,
            urls => crate::leader::connect_leader(urls, &bearer, &self.tls).await,
        }
    }
}

/// Connects to the master at `url`, presenting `bearer` on every call.
pub async fn connect(url: &str, bearer: Bearer, tls: &ClientTls) -> anyhow::Result<Admin> {
    let channel = channel(url, tls).await.map_err(|cause| {
        anyhow::anyhow!(
            "cannot reach the Baton master at {url}: {cause} (set --master or BATON_MASTER)"
        )
    })?;
    Ok(admin(channel, bearer))
}

/// A connection to the master at `url` (`http://` is assumed when the URL has no scheme), or why
/// there is none.
pub async fn channel(url: &str, tls: &ClientTls) -> Result<Channel, String> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    baton_common::tls::endpoint(&full, tls)?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| baton_common::tls::explain(&full, &error_chain(&e)))
}

/// The admin API client over `channel`, presenting `bearer` on every call.
pub fn admin(channel: Channel, bearer: Bearer) -> Admin {
    AdminServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The message to print and the exit status for an error that ended a command.
pub fn describe_failure(err: &anyhow::Error) -> (String, u8) {
    if let Some(status) = err.downcast_ref::<tonic::Status>() {
        let message = if status.message().is_empty() {
            format!("{:?}", status.code())
        } else {
            status.message().to_string()
        };
        return (message, 1);
    }
    if let Some(usage) = err.downcast_ref::<UsageError>() {
        return (usage.0.clone(), 2);
    }
    (format!("{err:#}"), 1)
}

/// Whether the error is a closed stdout (`baton ... | head`), which is not a failure. Only an
/// error that is itself an I/O error counts: a broken connection to the master is a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_master_names_url_and_fix() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = connect(&url, Bearer::default(), &Default::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot reach the Baton master at {url}: ")),
            "{err}"
        );
        assert!(err.ends_with("(set --master or BATON_MASTER)"), "{err}");
    }

    #[test]
    fn failures_map_to_exit_status() {
        let status = anyhow::Error::from(tonic::Status::not_found("experiment 9 not found"));
        assert_eq!(
            describe_failure(&status),
            ("experiment 9 not found".to_string(), 1)
        );
        let usage = anyhow::Error::from(UsageError("--save-trial-best: bad".into()));
        assert_eq!(describe_failure(&usage).1, 2);
        assert_eq!(describe_failure(&anyhow::anyhow!("boom")).1, 1);
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe));
        let transport = anyhow::Error::from(tonic::Status::from_error(Box::new(
            std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        )));
        assert!(
            !is_broken_pipe(&transport),
            "a broken link to the master is a failure"
        );
    }
}
