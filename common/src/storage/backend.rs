//! Builds an `object_store` client from a `checkpoint_storage` section.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, StaticCredentialProvider};

use super::StorageError;
use crate::config::StorageBackend;

/// An object store rooted at the checkpoint storage root, and that root on local disk for `shared_fs`.
pub fn build_object_store(
    backend: &StorageBackend,
) -> Result<(Arc<dyn ObjectStore>, Option<PathBuf>), StorageError> {
    match backend {
        StorageBackend::SharedFs {
            host_path,
            storage_path,
        } => {
            let mut root = PathBuf::from(host_path);
            if let Some(sub) = storage_path {
                root.push(sub);
            }
            std::fs::create_dir_all(&root).map_err(|e| StorageError::io(&root, e))?;
            let store = LocalFileSystem::new_with_prefix(&root)
                .map_err(|e| StorageError::object(root.display(), e))?;
            Ok((Arc::new(store), Some(root)))
        }
        StorageBackend::S3 {
            bucket,
            prefix,
            endpoint_url,
            region,
            access_key,
            secret_key,
        } => {
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(endpoint) = endpoint_url {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(region) = region {
                builder = builder.with_region(region);
            } else if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                builder = builder.with_region("us-east-1");
            }
            if let (Some(key), Some(secret)) = (access_key, secret_key) {
                builder = builder
                    .with_access_key_id(key)
                    .with_secret_access_key(secret);
            }
            let store = builder.build().map_err(|e| config_error("s3", e))?;
            Ok((with_prefix(store, prefix.as_deref()), None))
        }
        StorageBackend::Gcs {
            bucket,
            prefix,
            service_account_path,
            endpoint_url,
        } => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
            if let Some(path) = service_account_path {
                builder = builder.with_service_account_path(path);
            }
            if let Some(endpoint) = endpoint_url {
                builder = builder.with_base_url(endpoint.trim_end_matches('/'));
                if endpoint.starts_with("http://") {
                    // No token is looked up (nor sent in clear text): an empty bearer, as for an
                    // emulator. Skipping signatures alone would still fetch one for writes.
                    builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(
                        GcpCredential {
                            bearer: String::new(),
                        },
                    )));
                }
            }
            let store = builder.build().map_err(|e| config_error("gcs", e))?;
            Ok((with_prefix(store, prefix.as_deref()), None))
        }
        StorageBackend::Azure {
            container,
            prefix,
            account_url,
            connection_string,
            account,
            access_key,
        } => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(container);
            if let Some(connection) = connection_string {
                for (key, value) in parse_connection_string(connection) {
                    builder = match key.as_str() {
                        "AccountName" => builder.with_account(value),
                        "AccountKey" => builder.with_access_key(value),
                        "BlobEndpoint" => builder.with_endpoint(value).with_allow_http(true),
                        _ => builder,
                    };
                }
            }
            if let Some(url) = account_url {
                let url = url.trim_end_matches('/');
                builder = builder.with_endpoint(url.to_string());
                if url.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                if let Some(name) = account_in_url(url) {
                    builder = builder.with_account(name);
                }
            }
            if let Some(account) = account {
                builder = builder.with_account(account);
            }
            if let Some(key) = access_key {
                builder = builder.with_access_key(key);
            }
            let store = builder.build().map_err(|e| config_error("azure", e))?;
            Ok((with_prefix(store, prefix.as_deref()), None))
        }
    }
}

fn with_prefix<T: ObjectStore>(store: T, prefix: Option<&str>) -> Arc<dyn ObjectStore> {
    match prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(prefix) => Arc::new(PrefixStore::new(store, prefix)),
        None => Arc::new(store),
    }
}

/// The account an Azure account URL names: `<account>` of `<account>.blob.<domain>`, else the last
/// segment of a path-style URL such as an emulator's `http://127.0.0.1:10000/<account>`.
fn account_in_url(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if let Some((account, _)) = url.host_str()?.split_once(".blob.") {
        return Some(account.to_string());
    }
    url.path_segments()?
        .rfind(|segment| !segment.is_empty())
        .map(str::to_string)
}

/// Splits an Azure connection string (`Key=Value;Key=Value`) into its pairs.
fn parse_connection_string(connection: &str) -> Vec<(String, String)> {
    connection
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn config_error(kind: &str, error: object_store::Error) -> StorageError {
    StorageError::Config(format!("cannot use {kind} storage: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_pairs() {
        let pairs = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5==;BlobEndpoint=http://127.0.0.1:10000/dev;",
        );
        assert!(pairs.contains(&("AccountName".into(), "dev".into())));
        assert!(pairs.contains(&("AccountKey".into(), "a2V5==".into())));
        assert!(pairs.contains(&("BlobEndpoint".into(), "http://127.0.0.1:10000/dev".into())));
    }

    #[test]
    fn account_urls_name_their_account() {
        for (url, account) in [
            ("https://acct.blob.core.windows.net", Some("acct")),
            ("https://acct.blob.core.windows.net/", Some("acct")),
            (
                "http://127.0.0.1:10000/devstoreaccount1",
                Some("devstoreaccount1"),
            ),
            ("https://blob.example.com", None),
        ] {
            assert_eq!(account_in_url(url).as_deref(), account, "{url}");
        }
    }

    #[test]
    fn shared_fs_creates_root() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StorageBackend::SharedFs {
            host_path: dir.path().display().to_string(),
            storage_path: Some("ckpts".into()),
        };
        let (_, root) = build_object_store(&backend).unwrap();
        assert_eq!(root.unwrap(), dir.path().join("ckpts"));
        assert!(dir.path().join("ckpts").is_dir());
    }

    #[test]
    fn gcs_and_azure_clients_build_from_their_configs() {
        let gcs = StorageBackend::Gcs {
            bucket: "ckpts".into(),
            prefix: Some("team".into()),
            service_account_path: None,
            endpoint_url: None,
        };
        let (_, root) = build_object_store(&gcs).unwrap();
        assert!(root.is_none());
        let azure = StorageBackend::Azure {
            container: "ckpts".into(),
            prefix: None,
            account_url: None,
            connection_string: Some(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1".into(),
            ),
            account: None,
            access_key: None,
        };
        build_object_store(&azure).unwrap();
        let emulators = [
            StorageBackend::Azure {
                container: "ckpts".into(),
                prefix: None,
                account_url: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
                connection_string: None,
                account: None,
                access_key: Some("a2V5".into()),
            },
            StorageBackend::Gcs {
                bucket: "ckpts".into(),
                prefix: None,
                service_account_path: None,
                endpoint_url: Some("http://127.0.0.1:4443/".into()),
            },
        ];
        for backend in emulators {
            build_object_store(&backend).unwrap();
        }
        let missing_key = StorageBackend::Gcs {
            bucket: "ckpts".into(),
            prefix: None,
            service_account_path: Some("/nonexistent/key.json".into()),
            endpoint_url: None,
        };
        let err = build_object_store(&missing_key).unwrap_err().to_string();
        assert!(
            err.starts_with("checkpoint_storage: cannot use gcs storage"),
            "{err}"
        );
    }
}
