//! Which master the agent tries next. The listed URLs are tried in turn, and a leader named by a
//! standby straight away, even when it is not listed. A standby's answer or an unreachable master
//! moves on at once; only a full round of the list without a session pauses, for a backoff that
//! doubles from 200 ms to 5 s and starts over after each session. A leader is followed once per
//! round, so standbys naming each other cannot keep the agent busy; after a round in which a standby
//! answered (a takeover under way) the pause is at most 500 ms.

use std::time::Duration;

use baton_common::master_list::{MasterList, is_standby, named_leader};

/// The pause after the first round without a session, and after each session.
pub const MIN_BACKOFF: Duration = Duration::from_millis(200);

/// The longest pause between rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The longest pause after a round in which a standby answered: a takeover is under way, and the
/// agent must reach the new leader well within its fence window.
pub const TAKEOVER_BACKOFF: Duration = Duration::from_millis(500);

/// Parses `--master`: URLs separated by commas, each `http://` or `https://`.
pub fn parse_masters(text: &str) -> Result<MasterList, String> {
    let list = MasterList::parse(text)?;
    for url in list.urls() {
        baton_common::tls::check_url(url)?;
    }
    Ok(list)
}

/// How an attempt to hold a session with one master ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A session was held and has ended; a master stepping down may have named its successor.
    Served {
        /// The leader named when the session ended, if any.
        leader: Option<String>,
    },
    /// A standby master declined the session.
    Standby {
        /// The leader it named, if it knows one.
        leader: Option<String>,
    },
    /// The master could not be reached or refused the session otherwise.
    Failed,
}

impl Outcome {
    /// The outcome of a session call the master answered with `status`.
    pub fn refused(status: &tonic::Status) -> Self {
        if is_standby(status) {
            Self::Standby {
                leader: leader_url(status),
            }
        } else {
            Self::Failed
        }
    }

    /// The outcome of a session that ended with `status` (None: it ended without one).
    pub fn ended(status: Option<&tonic::Status>) -> Self {
        let leader = status.filter(|s| is_standby(s)).and_then(leader_url);
        Self::Served { leader }
    }
}

/// The leader a standby named, when it is a URL the agent can connect to.
fn leader_url(status: &tonic::Status) -> Option<String> {
    named_leader(status).filter(|url| baton_common::tls::check_url(url).is_ok())
}

/// The agent's place in its list of masters.
#[derive(Debug)]
pub struct Rotation {
    urls: Vec<String>,
    /// The listed URL tried next when no leader is named.
    next: usize,
    /// A leader named by a standby (or the master last served by), tried before the list.
    leader: Option<String>,
    /// URLs tried in this round, so that a leader is followed once per round.
    tried: Vec<String>,
    /// Listed URLs that failed or declined in this round.
    misses: usize,
    /// Whether a standby answered in this round.
    standby_seen: bool,
    /// The pause at the end of the next round without a session.
    backoff: Duration,
}

impl Rotation {
    /// Starts at the first of `masters`.
    pub fn new(masters: &MasterList) -> Self {
        Self {
            urls: masters.urls().to_vec(),
            next: 0,
            leader: None,
            tried: Vec::new(),
            misses: 0,
            standby_seen: false,
            backoff: MIN_BACKOFF,
        }
    }

    /// The URL to try now.
    pub fn current(&self) -> &str {
        self.leader.as_deref().unwrap_or(&self.urls[self.next])
    }

    /// Whether `url` is one of the listed masters.
    pub fn is_listed(&self, url: &str) -> bool {
        self.urls.iter().any(|listed| listed == url)
    }

    /// Records how the attempt on [`Rotation::current`] ended; returns the pause before the next.
    pub fn record(&mut self, outcome: Outcome) -> Duration {
        let url = self.current().to_string();
        let followed = self.leader.take().is_some();
        let named = match outcome {
            Outcome::Served { leader } => {
                self.tried.clear();
                self.misses = 0;
                self.standby_seen = false;
                self.backoff = MIN_BACKOFF;
                if let Some(leader) = leader.filter(|l| *l != url) {
                    self.leader = Some(leader);
                    return Duration::ZERO;
                }
                // The same master again first: most sessions end with its restart.
                self.leader = followed.then_some(url);
                return MIN_BACKOFF;
            }
            Outcome::Standby { leader } => {
                self.standby_seen = true;
                leader
            }
            Outcome::Failed => None,
        };
        self.tried.push(url);
        self.leader = named.filter(|l| !self.tried.contains(l));
        if !followed {
            self.misses += 1;
            self.next = (self.next + 1) % self.urls.len();
        }
        if self.leader.is_some() || self.misses < self.urls.len() {
            return Duration::ZERO;
        }
        let pause = if self.standby_seen {
            self.backoff.min(TAKEOVER_BACKOFF)
        } else {
            self.backoff
        };
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.tried.clear();
        self.misses = 0;
        self.standby_seen = false;
        pause
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    const A: &str = "http://a:8090";
    const B: &str = "http://b:8090";
    const C: &str = "http://c:8090";

    fn rotation(urls: &[&str]) -> Rotation {
        Rotation::new(&parse_masters(&urls.join(",")).unwrap())
    }

    fn standby(leader: &str) -> Outcome {
        Outcome::Standby {
            leader: Some(leader.to_string()),
        }
    }

    fn served() -> Outcome {
        Outcome::Served { leader: None }
    }

    #[test]
    fn master_lists_are_checked_entry_by_entry() {
        let list = parse_masters("http://a:8090, https://b:8443").unwrap();
        assert_eq!(list.urls(), ["http://a:8090", "https://b:8443"]);
        let err = parse_masters("http://a:8090,b:8090").unwrap_err();
        assert!(err.contains("\"b:8090\" must start with http://"), "{err}");
        assert!(parse_masters("http://a:8090,").is_err());
    }

    #[test]
    fn rounds_with_a_standby_pause_briefly_while_it_takes_over() {
        let mut r = rotation(&[A, B]);
        let mut pauses = Vec::new();
        for _ in 0..6 {
            assert_eq!(r.record(Outcome::Failed), Duration::ZERO);
            pauses.push(r.record(Outcome::Standby { leader: None }).as_millis());
        }
        assert_eq!(pauses, [200, 400, 500, 500, 500, 500]);
        let after = [r.record(Outcome::Failed), r.record(Outcome::Failed)];
        assert_eq!(
            after,
            [Duration::ZERO, MAX_BACKOFF],
            "no standby: full backoff"
        );
    }

    #[test]
    fn one_master_backs_off_as_before() {
        let mut r = rotation(&[A]);
        let pauses: Vec<Duration> = (0..7).map(|_| r.record(Outcome::Failed)).collect();
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(r.current(), A);
        assert_eq!(r.record(served()), MIN_BACKOFF);
        assert_eq!(
            r.record(Outcome::Failed),
            MIN_BACKOFF,
            "a session starts over"
        );
    }

    #[test]
    fn only_a_full_round_pauses() {
        let mut r = rotation(&[A, B, C]);
        assert_eq!(r.record(Outcome::Failed), Duration::ZERO);
        assert_eq!(r.current(), B);
        assert_eq!(r.record(Outcome::Standby { leader: None }), Duration::ZERO);
        assert_eq!(r.current(), C);
        assert_eq!(r.record(Outcome::Failed), MIN_BACKOFF);
        assert_eq!(r.current(), A);
        r.record(Outcome::Failed);
        r.record(Outcome::Failed);
        assert_eq!(r.record(Outcome::Failed), MIN_BACKOFF * 2);
    }

    #[test]
    fn a_named_leader_is_tried_next_even_when_unlisted() {
        let mut r = rotation(&[A, B]);
        assert_eq!(r.record(standby(C)), Duration::ZERO);
        assert_eq!(r.current(), C);
        assert!(!r.is_listed(C));
        assert_eq!(r.record(served()), MIN_BACKOFF);
        assert_eq!(r.current(), C, "the leader again after its session ends");
        assert_eq!(r.record(Outcome::Failed), Duration::ZERO);
        assert_eq!(r.current(), B, "then the list where it left off");
    }

    #[test]
    fn a_lone_standby_leads_to_the_leader_without_a_pause() {
        let mut r = rotation(&[A]);
        assert_eq!(r.record(standby(B)), Duration::ZERO);
        assert_eq!(r.current(), B);
        assert_eq!(r.record(Outcome::Failed), MIN_BACKOFF);
        assert_eq!(r.current(), A);
    }

    #[test]
    fn standbys_naming_each_other_end_the_round() {
        let mut r = rotation(&[A, B]);
        let mut paused = Duration::ZERO;
        let mut attempts = 0;
        while paused.is_zero() {
            let named = if r.current() == A { B } else { A };
            paused = r.record(standby(named));
            attempts += 1;
        }
        assert!(attempts <= 3, "{attempts} attempts before pausing");
        assert_eq!(paused, MIN_BACKOFF);
    }

    #[test]
    fn a_master_stepping_down_hands_over_at_once() {
        let mut r = rotation(&[A, B]);
        let handover = Outcome::Served {
            leader: Some(B.to_string()),
        };
        assert_eq!(r.record(handover), Duration::ZERO);
        assert_eq!(r.current(), B);
        assert_eq!(r.record(served()), MIN_BACKOFF);
        assert_eq!(r.current(), B);
    }

    #[test]
    fn session_answers_are_classified() {
        let mut metadata = MetadataMap::new();
        metadata.insert("baton-leader", B.parse().unwrap());
        let named = tonic::Status::with_metadata(
            tonic::Code::Unavailable,
            format!("standby master: the leader is at {B}"),
            metadata,
        );
        assert_eq!(Outcome::refused(&named), standby(B));
        let no_leader = tonic::Status::unavailable("standby master: no leader yet");
        assert_eq!(
            Outcome::refused(&no_leader),
            Outcome::Standby { leader: None }
        );
        let refused = tonic::Status::permission_denied("bad token");
        assert_eq!(Outcome::refused(&refused), Outcome::Failed);
        assert_eq!(
            Outcome::ended(Some(&named)),
            Outcome::Served {
                leader: Some(B.to_string())
            }
        );
        assert_eq!(Outcome::ended(Some(&refused)), served());
        assert_eq!(Outcome::ended(None), served());
    }

    #[test]
    fn a_named_leader_that_is_no_url_is_ignored() {
        let mut metadata = MetadataMap::new();
        metadata.insert("baton-leader", "b:8090".parse().unwrap());
        let status = tonic::Status::with_metadata(
            tonic::Code::Unavailable,
            "standby master: the leader is at b:8090",
            metadata,
        );
        assert_eq!(Outcome::refused(&status), Outcome::Standby { leader: None });
    }
}
