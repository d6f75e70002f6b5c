//! Who may call the admin API: bearer tokens from an auth file, each with a role.
//!
//! The auth file (`--auth-file`) lists tokens by name, role and the SHA-256 of the token (hex);
//! the tokens themselves are never stored. Without an auth file the admin API is open, which the
//! master allows only on a loopback address unless `--insecure` says otherwise. The same file may
//! give agent ids their own tokens, so a token leaked from one host cannot join as another.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read.
    Viewer,
    /// Everything.
    Admin,
}

/// What a call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads state.
    Read,
    /// Changes state.
    Mutate,
}

/// Who made a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name ("anonymous" on an open master).
    pub name: String,
    /// Where the call came from.
    pub peer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    tokens: Vec<TokenEntry>,
    #[serde(default)]
    agents: Vec<AgentTokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentTokenEntry {
    id: String,
    sha256: String,
}

/// What agents must present to join: their own token where the auth file gives their id one,
/// the cluster token otherwise.
#[derive(Debug, Clone, Default)]
pub struct AgentTokens {
    /// Token every agent without its own token presents ("" lets any such agent join).
    pub cluster_token: String,
    /// Agent id → SHA-256 (hex) of its own token.
    pub per_agent: HashMap<String, String>,
}

impl AgentTokens {
    /// Checks the token an agent presented for its id; the error says which token was expected.
    pub fn check(&self, agent_id: &str, token: &str) -> Result<(), String> {
        match self.per_agent.get(agent_id) {
            Some(hash) if *hash == hex(&Sha256::digest(token.as_bytes())) => Ok(()),
            Some(_) => Err(format!(
                "agent {agent_id:?} presented a token that is not its own: this id has its own token in the master's auth file, pass it as --cluster-token (BATON_CLUSTER_TOKEN)"
            )),
            None if token == self.cluster_token => Ok(()),
            None => Err(format!(
                "agent {agent_id:?} presented a wrong cluster token: set --cluster-token (BATON_CLUSTER_TOKEN) to the master's"
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    sha256: String,
}

/// The admin API's gatekeeper.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    /// Token SHA-256 (hex) → name and role; None when the API is open.
    tokens: Option<HashMap<String, (String, Role)>>,
    /// Said to every `agent list` when an open API is served beyond loopback.
    warning: Option<String>,
}

impl Authority {
    /// An open admin API (no tokens).
    pub fn open() -> Self {
        Self::default()
    }

    /// An open admin API on a non-loopback address, which every `agent list` warns about.
    pub fn open_insecure(listen: &str) -> Self {
        Self {
            tokens: None,
            warning: Some(format!(
                "the master serves an open admin API on {listen} (--insecure): anyone who can reach it controls the cluster; configure --auth-file"
            )),
        }
    }

    /// The warning for `agent list`, if any.
    pub fn warning(&self) -> &str {
        self.warning.as_deref().unwrap_or_default()
    }

    /// Reads an auth file: the admin API's authority and the agents' own tokens (the cluster
    /// token is left empty for the caller to fill). Errors name the file and the entry.
    pub fn from_file(path: &Path) -> Result<(Self, AgentTokens), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read auth file {}: {e}", path.display()))?;
        let file: AuthFile = serde_norway::from_str(&text)
            .map_err(|e| format!("auth file {}: {e}", path.display()))?;
        let in_file = |message: String| format!("auth file {}: {message}", path.display());
        let mut tokens = HashMap::new();
        for (index, entry) in file.tokens.into_iter().enumerate() {
            let hash = sha256_hex(&entry.sha256)
                .map_err(|e| in_file(format!("tokens[{index}].sha256 {e}")))?;
            if entry.name.trim().is_empty() {
                return Err(in_file(format!("tokens[{index}].name must not be empty")));
            }
            tokens.insert(hash, (entry.name, entry.role));
        }
        if tokens.is_empty() {
            return Err(format!("auth file {} lists no tokens", path.display()));
        }
        let mut agents = AgentTokens::default();
        for (index, entry) in file.agents.into_iter().enumerate() {
            let hash = sha256_hex(&entry.sha256)
                .map_err(|e| in_file(format!("agents[{index}].sha256 {e}")))?;
            if entry.id.trim().is_empty() {
                return Err(in_file(format!("agents[{index}].id must not be empty")));
            }
            if agents.per_agent.insert(entry.id.clone(), hash).is_some() {
                return Err(in_file(format!(
                    "agents[{index}].id {:?} is listed twice",
                    entry.id
                )));
            }
        }
        let authority = Self {
            tokens: Some(tokens),
            warning: None,
        };
        Ok((authority, agents))
    }

    /// Whether calls need a token.
    pub fn is_open(&self) -> bool {
        self.tokens.is_none()
    }

    /// Checks the bearer token of a call that needs `access` to `rpc`.
    pub fn check<T>(
        &self,
        request: &Request<T>,
        access: Access,
        rpc: &str,
    ) -> Result<Caller, Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.check_header(header, peer, access, rpc)
    }

    /// Checks an `authorization` header value (gRPC or HTTP) of a call from `peer`.
    pub fn check_header(
        &self,
        header: Option<&str>,
        peer: String,
        access: Access,
        rpc: &str,
    ) -> Result<Caller, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller {
                name: "anonymous".into(),
                peer,
            });
        };
        let header = header.ok_or_else(|| {
            Status::unauthenticated(
                "this master needs a token: pass --token, set BATON_TOKEN, or write it to ~/.config/baton/token",
            )
        })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            Status::unauthenticated("the authorization header must be `Bearer TOKEN`")
        })?;
        let hash = hex(&Sha256::digest(token.trim().as_bytes()));
        let (name, role) = tokens
            .get(&hash)
            .ok_or_else(|| Status::unauthenticated("the token is not known to this master"))?;
        if access == Access::Mutate && *role == Role::Viewer {
            return Err(Status::permission_denied(format!(
                "token {name:?} is a viewer; {rpc} needs an admin token"
            )));
        }
        Ok(Caller {
            name: name.clone(),
            peer,
        })
    }
}

/// A SHA-256 written in hex, lowercased; the error says what is expected.
fn sha256_hex(text: &str) -> Result<String, String> {
    let hash = text.to_ascii_lowercase();
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("must be 64 hex digits (the SHA-256 of the token, e.g. from `printf %s TOKEN | sha256sum`)".into());
    }
    Ok(hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(dir: &tempfile::TempDir, text: &str) -> Result<Authority, String> {
        let path = dir.path().join("auth.yaml");
        std::fs::write(&path, text).unwrap();
        Authority::from_file(&path).map(|(authority, _)| authority)
    }

    fn call(token: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    #[test]
    fn roles_decide_and_unknown_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let admin = hex(&Sha256::digest(b"admin-token"));
        let viewer = hex(&Sha256::digest(b"viewer-token"));
        let auth = authority(
            &dir,
            &format!(
                "tokens:\n  - {{name: alice, role: admin, sha256: {admin}}}\n  - {{name: bob, role: viewer, sha256: {viewer}}}\n"
            ),
        )
        .unwrap();
        let code = |token, access| {
            auth.check(&call(token), access, "KillExperiment")
                .map_err(|s| s.code())
        };
        assert_eq!(
            code(Some("admin-token"), Access::Mutate).unwrap().name,
            "alice"
        );
        assert_eq!(
            code(Some("viewer-token"), Access::Read).unwrap().name,
            "bob"
        );
        assert_eq!(
            code(Some("viewer-token"), Access::Mutate),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            code(Some("guess"), Access::Read),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(code(None, Access::Read), Err(tonic::Code::Unauthenticated));
        assert!(
            Authority::open()
                .check(&call(None), Access::Mutate, "x")
                .is_ok()
        );
    }

    #[test]
    fn bad_auth_files_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let error =
            authority(&dir, "tokens:\n  - {name: a, role: admin, sha256: abc}\n").unwrap_err();
        assert!(
            error.contains("tokens[0].sha256 must be 64 hex digits"),
            "{error}"
        );
        let error =
            authority(&dir, "tokens:\n  - {name: a, role: root, sha256: abc}\n").unwrap_err();
        assert!(error.contains("unknown variant `root`"), "{error}");
        let error = authority(&dir, "tokens: []\n").unwrap_err();
        assert!(error.contains("lists no tokens"), "{error}");
        let admin = hex(&Sha256::digest(b"t"));
        let twice = format!(
            "tokens: [{{name: a, role: admin, sha256: {admin}}}]\nagents:\n  - {{id: a1, sha256: {admin}}}\n  - {{id: a1, sha256: {admin}}}\n"
        );
        let error = authority(&dir, &twice).unwrap_err();
        assert!(
            error.contains("agents[1].id \"a1\" is listed twice"),
            "{error}"
        );
    }

    #[test]
    fn agents_with_their_own_token_cannot_use_another() {
        let tokens = AgentTokens {
            cluster_token: "shared".into(),
            per_agent: HashMap::from([("gpu-1".into(), hex(&Sha256::digest(b"gpu-1-secret")))]),
        };
        assert!(tokens.check("gpu-1", "gpu-1-secret").is_ok());
        assert!(tokens.check("gpu-2", "shared").is_ok());
        let error = tokens.check("gpu-1", "shared").unwrap_err();
        assert!(error.contains("not its own"), "{error}");
        assert!(tokens.check("gpu-2", "gpu-1-secret").is_err());
    }
}
