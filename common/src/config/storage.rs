//! Checkpoint storage: the backends, the GC settings beside them, and their flat map form.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Check, ConfigError, deserialize_tagged, non_empty, require};

/// Checkpoint storage and GC policy; one flat map in YAML and JSON (`type`, backend fields, `save_*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointStorageConfig {
    /// Where checkpoints are stored.
    #[serde(flatten)]
    pub backend: StorageBackend,
    /// Which checkpoints garbage collection keeps.
    #[serde(flatten)]
    pub gc: GcSettings,
}

/// A checkpoint storage backend, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageBackend {
    /// A filesystem mounted on every host; root = `host_path[/storage_path]`.
    SharedFs {
        /// Absolute path of the mount on each host.
        host_path: String,
        /// Relative directory under `host_path`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_path: Option<String>,
    },
    /// Amazon S3 or an S3-compatible server.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Endpoint of an S3-compatible server (http or https).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
        /// Region of the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Access key id; without it the standard AWS environment is used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key: Option<String>,
        /// Secret access key, given together with `access_key`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_key: Option<String>,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object prefix inside the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Service account key file; without it the environment's credentials are used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_account_path: Option<String>,
        /// Base URL of a GCS-compatible server (http or https), such as an emulator; requests to an
        /// `http://` one carry no credential, so none is looked up or sent in clear text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
    },
    /// Azure Blob Storage.
    Azure {
        /// Container name.
        container: String,
        /// Blob prefix inside the container.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Blob service URL of the account (http or https): `https://<account>.blob.core.windows.net`,
        /// or a path-style one ending in the account name, such as an emulator's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_url: Option<String>,
        /// Connection string holding the account and its key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_string: Option<String>,
        /// Storage account name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Access key of the account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key: Option<String>,
    },
}

/// Checkpoint retention: the union of the best and latest checkpoints these counts select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSettings {
    /// Keep this many best checkpoints of the whole experiment.
    #[serde(default)]
    pub save_experiment_best: u64,
    /// Keep this many best checkpoints of each trial.
    #[serde(default = "default_one")]
    pub save_trial_best: u64,
    /// Keep this many latest checkpoints of each trial.
    #[serde(default = "default_one")]
    pub save_trial_latest: u64,
    /// Delete, while the experiment runs, every checkpoint the policy can no longer keep.
    #[serde(default)]
    pub gc_while_running: bool,
}

fn default_one() -> u64 {
    1
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings {
            save_experiment_best: 0,
            save_trial_best: 1,
            save_trial_latest: 1,
            gc_while_running: false,
        }
    }
}

/// The storage `type` names, in the order of [`StorageBackend`]'s variants.
const STORAGE_TYPES: &[&str] = &["shared_fs", "s3", "gcs", "azure"];

/// The fields of [`StorageBackend`] again, read externally tagged so that field paths survive.
#[derive(Deserialize)]
#[serde(
    remote = "StorageBackend",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum StorageBackendDef {
    SharedFs {
        host_path: String,
        #[serde(default)]
        storage_path: Option<String>,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        endpoint_url: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        access_key: Option<String>,
        #[serde(default)]
        secret_key: Option<String>,
    },
    Gcs {
        bucket: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        service_account_path: Option<String>,
        #[serde(default)]
        endpoint_url: Option<String>,
    },
    Azure {
        container: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        account_url: Option<String>,
        #[serde(default)]
        connection_string: Option<String>,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        access_key: Option<String>,
    },
}

/// Wrapper giving [`StorageBackendDef`] a `Deserialize` impl.
#[derive(Deserialize)]
struct ExternalStorageBackend(#[serde(with = "StorageBackendDef")] StorageBackend);

impl<'de> Deserialize<'de> for CheckpointStorageConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CheckpointStorageVisitor)
    }
}

/// Splits the flat map into GC fields (read in place, keeping their paths) and backend fields.
struct CheckpointStorageVisitor;

impl<'de> Visitor<'de> for CheckpointStorageVisitor {
    type Value = CheckpointStorageConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let types = STORAGE_TYPES.join(", ");
        write!(
            f,
            "a map with `type` ({types}) and the fields of that storage"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut gc = GcSettings::default();
        let mut seen = BTreeSet::new();
        let mut backend = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            match key.as_str() {
                "save_experiment_best" => gc.save_experiment_best = map.next_value()?,
                "save_trial_best" => gc.save_trial_best = map.next_value()?,
                "save_trial_latest" => gc.save_trial_latest = map.next_value()?,
                "gc_while_running" => gc.gc_while_running = map.next_value()?,
                _ => {
                    backend.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        let ExternalStorageBackend(backend) = deserialize_tagged(backend, STORAGE_TYPES)?;
        Ok(CheckpointStorageConfig { backend, gc })
    }
}

impl CheckpointStorageConfig {
    /// Checks the backend's fields; paths are under `checkpoint_storage`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backend.validate()
    }
}

const STORAGE: &str = "checkpoint_storage";

fn check_prefix(prefix: &Option<String>) -> Check {
    let Some(prefix) = prefix else { return Ok(()) };
    require(
        !prefix.split('/').any(|part| part == ".."),
        &format!("{STORAGE}.prefix"),
        || format!("must not contain \"..\" segments (got {prefix:?})"),
    )
}

fn check_url(field: &str, value: &Option<String>) -> Check {
    let Some(value) = value else { return Ok(()) };
    let ok = url::Url::parse(value)
        .map(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .unwrap_or(false);
    require(ok, &format!("{STORAGE}.{field}"), || {
        format!("must be an http or https URL such as \"https://host:9000\" (got {value:?})")
    })
}

impl StorageBackend {
    /// Checks required fields, paths, URLs and credential pairs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            StorageBackend::SharedFs {
                host_path,
                storage_path,
            } => {
                require(
                    Path::new(host_path).is_absolute(),
                    &format!("{STORAGE}.host_path"),
                    || format!("must be an absolute path (got {host_path:?})"),
                )?;
                if let Some(sp) = storage_path {
                    let relative = Path::new(sp)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                    require(relative, &format!("{STORAGE}.storage_path"), || {
                        format!("must be a relative path without \"..\" (got {sp:?})")
                    })?;
                }
                Ok(())
            }
            StorageBackend::S3 {
                bucket,
                prefix,
                endpoint_url,
                access_key,
                secret_key,
                ..
            } => {
                non_empty(&format!("{STORAGE}.bucket"), bucket)?;
                check_prefix(prefix)?;
                check_url("endpoint_url", endpoint_url)?;
                match (access_key, secret_key) {
                    (Some(_), None) => Err(ConfigError::invalid(
                        format!("{STORAGE}.secret_key"),
                        "required when access_key is set (give both, or neither to use the AWS environment)",
                    )),
                    (None, Some(_)) => Err(ConfigError::invalid(
                        format!("{STORAGE}.access_key"),
                        "required when secret_key is set (give both, or neither to use the AWS environment)",
                    )),
                    _ => Ok(()),
                }
            }
            StorageBackend::Gcs {
                bucket,
                prefix,
                endpoint_url,
                ..
            } => {
                non_empty(&format!("{STORAGE}.bucket"), bucket)?;
                check_prefix(prefix)?;
                check_url("endpoint_url", endpoint_url)
            }
            StorageBackend::Azure {
                container,
                prefix,
                account_url,
                connection_string,
                account,
                ..
            } => {
                non_empty(&format!("{STORAGE}.container"), container)?;
                check_prefix(prefix)?;
                check_url("account_url", account_url)?;
                require(
                    account_url.is_some() || connection_string.is_some() || account.is_some(),
                    STORAGE,
                    || {
                        "azure storage needs one of account_url, connection_string or account"
                            .to_string()
                    },
                )
            }
        }
    }

    /// The backend's `type` name: `shared_fs`, `s3`, `gcs` or `azure`.
    pub fn type_name(&self) -> &'static str {
        match self {
            StorageBackend::SharedFs { .. } => "shared_fs",
            StorageBackend::S3 { .. } => "s3",
            StorageBackend::Gcs { .. } => "gcs",
            StorageBackend::Azure { .. } => "azure",
        }
    }

    /// A copy without secrets (`secret_key`, `access_key`, and a connection string's `AccountKey`
    /// and `SharedAccessSignature`), safe to show users; what remains of a connection string
    /// (account, endpoints) still lets a client that has the key find the storage.
    pub fn redacted(&self) -> StorageBackend {
        let hide = |_: &Option<String>| None;
        let mut copy = self.clone();
        match &mut copy {
            StorageBackend::S3 {
                access_key,
                secret_key,
                ..
            } => {
                *access_key = hide(access_key);
                *secret_key = hide(secret_key);
            }
            StorageBackend::Azure {
                connection_string,
                access_key,
                ..
            } => {
                *connection_string = connection_string.as_deref().and_then(without_secrets);
                *access_key = hide(access_key);
            }
            StorageBackend::SharedFs { .. } | StorageBackend::Gcs { .. } => {}
        }
        copy
    }
}

/// An Azure connection string without its `AccountKey` and `SharedAccessSignature` pairs; None
/// when nothing else is left.
fn without_secrets(connection: &str) -> Option<String> {
    let kept: Vec<&str> = connection
        .split(';')
        .filter(|pair| !pair.trim().is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default().trim();
            !key.eq_ignore_ascii_case("AccountKey")
                && !key.eq_ignore_ascii_case("SharedAccessSignature")
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_experiment_config;
    use crate::config::test_support::storage;

    #[test]
    fn s3_config_parses_and_redacts() {
        let cfg = parse_experiment_config(&storage(
            "{type: s3, bucket: ckpts, prefix: team/a, endpoint_url: 'http://127.0.0.1:9000', \
             region: us-east-1, access_key: AKIA, secret_key: s3cr3t, save_trial_best: 2}",
        ))
        .unwrap();
        let backend = StorageBackend::S3 {
            bucket: "ckpts".into(),
            prefix: Some("team/a".into()),
            endpoint_url: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            access_key: Some("AKIA".into()),
            secret_key: Some("s3cr3t".into()),
        };
        assert_eq!(cfg.checkpoint_storage.backend, backend);
        assert_eq!(
            cfg.checkpoint_storage.gc,
            GcSettings {
                save_experiment_best: 0,
                save_trial_best: 2,
                save_trial_latest: 1,
                gc_while_running: false,
            }
        );
        let shown = format!("{:?}", backend.redacted());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKIA"),
            "{shown}"
        );
        assert!(shown.contains("ckpts"));
        // Only credentials are removed; everything else stays.
        let bare = StorageBackend::S3 {
            bucket: "b".into(),
            prefix: None,
            endpoint_url: None,
            region: None,
            access_key: None,
            secret_key: None,
        };
        assert_eq!(bare.redacted(), bare);
    }

    #[test]
    fn gcs_and_azure_parse_and_redact() {
        let gcs = parse_experiment_config(&storage(
            "{type: gcs, bucket: b, service_account_path: /k.json}",
        ))
        .unwrap();
        assert_eq!(
            gcs.checkpoint_storage.backend,
            StorageBackend::Gcs {
                bucket: "b".into(),
                prefix: None,
                service_account_path: Some("/k.json".into()),
                endpoint_url: None,
            }
        );
        let azure = parse_experiment_config(&storage(
            "{type: azure, container: c, connection_string: 'AccountKey=xyz', access_key: k}",
        ))
        .unwrap();
        match azure.checkpoint_storage.backend.redacted() {
            StorageBackend::Azure {
                container,
                connection_string,
                access_key,
                ..
            } => {
                assert_eq!(container, "c");
                assert_eq!(connection_string, None);
                assert_eq!(access_key, None);
            }
            other => panic!("not azure: {other:?}"),
        }
    }

    #[test]
    fn checkpoint_storage_round_trips_through_flat_json() {
        for spec in [
            "{type: shared_fs, host_path: /m, storage_path: a/b, save_experiment_best: 4}",
            "{type: s3, bucket: b, endpoint_url: 'https://s3.local', access_key: a, secret_key: s}",
            "{type: gcs, bucket: b, prefix: p, endpoint_url: 'http://127.0.0.1:4443'}",
            "{type: azure, container: c, account: acct, save_trial_latest: 0}",
        ] {
            let cfg = parse_experiment_config(&storage(spec))
                .unwrap()
                .checkpoint_storage;
            let text = serde_json::to_string(&cfg).unwrap();
            let flat: Value = serde_json::from_str(&text).unwrap();
            assert!(
                flat.get("type").is_some() && flat.get("save_trial_best").is_some(),
                "{text}"
            );
            assert!(
                flat.get("backend").is_none() && flat.get("gc").is_none(),
                "{text}"
            );
            assert_eq!(
                serde_json::from_str::<CheckpointStorageConfig>(&text).unwrap(),
                cfg,
                "{text}"
            );
        }
        let err = serde_json::from_str::<CheckpointStorageConfig>(
            r#"{"type":"shared_fs","host_path":"/m","x":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn a_redacted_connection_string_keeps_the_account_and_endpoint_only() {
        let backend = StorageBackend::Azure {
            container: "ckpts".into(),
            prefix: None,
            account: None,
            account_url: None,
            access_key: None,
            connection_string: Some(
                "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=s3cr3t==;\
                 BlobEndpoint=http://127.0.0.1:10000/dev;SharedAccessSignature=sv=1&sig=x"
                    .into(),
            ),
        };
        let StorageBackend::Azure {
            connection_string, ..
        } = backend.redacted()
        else {
            unreachable!()
        };
        assert_eq!(
            connection_string.as_deref(),
            Some(
                "DefaultEndpointsProtocol=http;AccountName=dev;BlobEndpoint=http://127.0.0.1:10000/dev"
            )
        );
        assert_eq!(
            without_secrets("AccountKey=k;SharedAccessSignature=s"),
            None
        );
    }
}
