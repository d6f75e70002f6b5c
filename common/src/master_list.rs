//! `--master` lists: master URLs separated by commas, tried in turn to find the leading master,
//! and the way a standby master names the leader.

/// Response metadata in which a standby master names the leader (`baton-leader: URL`).
pub const LEADER_KEY: &str = "baton-leader";

/// Master URLs in the order they are tried; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterList(Vec<String>);

impl MasterList {
    /// Splits `text` at commas and trims spaces; an empty entry is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let urls: Vec<String> = text.split(',').map(|url| url.trim().to_string()).collect();
        if urls.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?} has an empty entry: give master URLs separated by commas (e.g. http://m1:8090,http://m2:8090)"
            ));
        }
        Ok(Self(urls))
    }

    /// The URLs, in the order given.
    pub fn urls(&self) -> &[String] {
        &self.0
    }
}

/// Whether `status` is a standby master declining a call (it is not the leader).
pub fn is_standby(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        && (status.message().starts_with("standby master")
            || status.metadata().contains_key(LEADER_KEY))
}

/// The leader a standby master named in `status`, if any.
pub fn named_leader(status: &tonic::Status) -> Option<String> {
    let value = status.metadata().get(LEADER_KEY)?.to_str().ok()?.trim();
    Some(value.to_string()).filter(|url| !url.is_empty())
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;
    use tonic::{Code, Status};

    use super::*;

    #[test]
    fn lists_split_at_commas_and_trim() {
        let list = MasterList::parse("http://a:8090, http://b:8090 ,https://c").unwrap();
        assert_eq!(list.urls(), ["http://a:8090", "http://b:8090", "https://c"]);
        assert_eq!(MasterList::parse("a").unwrap().urls(), ["a"]);
    }

    #[test]
    fn empty_entries_are_refused() {
        for text in ["", " ", "http://a,", ",http://a", "http://a,,http://b"] {
            let err = MasterList::parse(text).unwrap_err();
            assert!(err.contains("empty entry"), "{text:?}: {err}");
        }
    }

    fn standby(leader: Option<&str>) -> Status {
        let mut metadata = MetadataMap::new();
        if let Some(leader) = leader {
            metadata.insert(LEADER_KEY, leader.parse().unwrap());
        }
        let message = match leader {
            Some(leader) => format!("standby master: the leader is at {leader}"),
            None => "standby master: no leader yet".to_string(),
        };
        Status::with_metadata(Code::Unavailable, message, metadata)
    }

    #[test]
    fn standbys_are_told_from_other_failures() {
        assert!(is_standby(&standby(Some("http://b:8090"))));
        assert!(is_standby(&standby(None)));
        assert!(!is_standby(&Status::unavailable("connection refused")));
        assert!(!is_standby(&Status::permission_denied("standby master")));
        assert_eq!(
            named_leader(&standby(Some(" http://b:8090 "))).as_deref(),
            Some("http://b:8090")
        );
        assert_eq!(named_leader(&standby(None)), None);
        assert_eq!(named_leader(&Status::unavailable("down")), None);
    }
}
