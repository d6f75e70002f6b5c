//! Secrets removed from an experiment config before it leaves the master.

use serde_norway::Value;

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Whether a config key names a secret (credentials, tokens, connection strings, SAS): one of
/// its `_`/`-` separated words is a secret word, or it contains a credential's name.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let words = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "credentials",
        "sas",
        "signature",
        "apikey",
    ];
    let names = [
        "access_key",
        "account_key",
        "private_key",
        "connection_string",
        "api_key",
    ];
    key.split(['_', '-']).any(|word| words.contains(&word))
        || names.iter().any(|name| key.contains(name))
}

/// The config with every value under a secret-looking key replaced by `<redacted>`, at any depth.
/// Comments and formatting are not kept; a config that does not parse is withheld entirely.
pub fn redact_config_yaml(yaml: &str) -> String {
    match serde_norway::from_str::<Value>(yaml) {
        Ok(mut value) => {
            redact(&mut value);
            serde_norway::to_string(&value).unwrap_or_else(|_| REDACTED.to_string())
        }
        Err(_) => REDACTED.to_string(),
    }
}

fn redact(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            for (key, inner) in map.iter_mut() {
                if key.as_str().is_some_and(is_secret_key) && !inner.is_null() {
                    *inner = Value::String(REDACTED.to_string());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(redact),
        Value::Tagged(tagged) => redact(&mut tagged.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_s_secrets_are_redacted_at_any_depth() {
        let yaml = "\
name: exp
hyperparameters:
  api_token: {type: const, val: hp-s3cr3t-1}
checkpoint_storage:
  type: s3
  bucket: b
  access_key: AKIA-s3cr3t-2
  secret_key: s3cr3t-3
other:
  - {connection_string: 'DefaultEndpointsProtocol=https;AccountKey=s3cr3t-4'}
  - {sas_token: s3cr3t-5, account_key: s3cr3t-6, password: s3cr3t-7}
";
        let redacted = redact_config_yaml(yaml);
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert_eq!(redacted.matches(REDACTED).count(), 7, "{redacted}");
        assert!(redacted.contains("bucket: b"), "{redacted}");
        let value: Value = serde_norway::from_str(&redacted).unwrap();
        assert_eq!(value["checkpoint_storage"]["type"], Value::from("s3"));
    }

    #[test]
    fn keys_are_secret_by_their_words_not_by_substrings() {
        for key in [
            "secret_key",
            "sas_token",
            "api-token",
            "PASSWORD",
            "db_credentials",
            "aws_access_key_id",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "max_tokens",
            "tokenizer",
            "bucket",
            "passage_length",
            "sassy",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn an_unparsable_config_is_withheld() {
        assert_eq!(redact_config_yaml("secret_key: [unclosed"), REDACTED);
    }
}
