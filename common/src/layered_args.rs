//! Daemon settings in layers: defaults, then a YAML file, then `BATON_*` environment, then flags.

use std::ffi::OsString;
use std::path::Path;

use clap::Parser;
use clap::parser::ValueSource;

/// Parses `T` from the process arguments, filling settings that neither a flag nor the
/// environment gave from the YAML file named by `--config` (or `default_file` when it exists).
pub fn parse_layered<T: Parser>(default_file: &str) -> T {
    let args: Vec<OsString> = std::env::args_os().collect();
    match parse_layered_from(args, default_file) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    }
}

/// [`parse_layered`] over explicit arguments.
pub fn parse_layered_from<T: Parser>(
    args: Vec<OsString>,
    default_file: &str,
) -> Result<T, clap::Error> {
    let command = T::command();
    let first = command.clone().try_get_matches_from(&args)?;
    let explicit = first.get_one::<std::path::PathBuf>("config").cloned();
    let path = match explicit {
        Some(path) => path,
        None if Path::new(default_file).is_file() => default_file.into(),
        None => return T::from_arg_matches(&first),
    };
    let file_args = file_arguments(&command, &path, |id| {
        matches!(
            first.value_source(id),
            None | Some(ValueSource::DefaultValue)
        )
    })?;
    let mut layered = vec![args[0].clone()];
    layered.extend(file_args);
    layered.extend(args.into_iter().skip(1));
    let matches = command.try_get_matches_from(layered)?;
    T::from_arg_matches(&matches)
}

/// `--flag value` pairs for the file's settings that `unset` says no flag or variable gave.
fn file_arguments(
    command: &clap::Command,
    path: &Path,
    unset: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, clap::Error> {
    let invalid = |message: String| {
        command
            .clone()
            .error(clap::error::ErrorKind::InvalidValue, message)
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read config file {}: {e}", path.display())))?;
    let settings: serde_norway::Mapping = serde_norway::from_str(&text).map_err(|e| {
        invalid(format!(
            "config file {} is not a YAML map: {e}",
            path.display()
        ))
    })?;
    let known: Vec<&str> = command
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "config")
        .map(|a| a.get_id().as_str())
        .collect();
    let mut arguments = Vec::new();
    for (key, value) in settings {
        let key = key
            .as_str()
            .map(|k| k.replace('-', "_"))
            .unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(invalid(format!(
                "config file {}: unknown setting {key:?} (expected one of: {})",
                path.display(),
                known.join(", ")
            )));
        }
        let value = match value {
            serde_norway::Value::String(s) => s,
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::Bool(b) => b.to_string(),
            other => {
                return Err(invalid(format!(
                    "config file {}: {key} must be a single value (got {other:?})",
                    path.display()
                )));
            }
        };
        if unset(&key) {
            arguments.push(format!("--{}", key.replace('_', "-")).into());
            arguments.push(value.into());
        }
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[derive(Debug, Parser)]
    struct Settings {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "BATON_LAYERED_TEST_LISTEN", default_value = "127.0.0.1:1")]
        listen: String,
        #[arg(long, default_value_t = 5)]
        agent_timeout: u64,
        #[arg(long, default_value = "text")]
        log_format: String,
    }

    fn parse(file: &str, flags: &[&str]) -> Result<Settings, clap::Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.yaml");
        std::fs::write(&path, file).unwrap();
        let mut args: Vec<OsString> = vec!["prog".into(), "--config".into(), path.into_os_string()];
        args.extend(flags.iter().map(OsString::from));
        parse_layered_from(args, "/nonexistent")
    }

    #[test]
    fn file_fills_defaults_and_flags_win() {
        let settings = parse(
            "listen: 0.0.0.0:9\nagent-timeout: 30\n",
            &["--agent-timeout", "7"],
        )
        .unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9");
        assert_eq!(settings.agent_timeout, 7);
        assert_eq!(settings.log_format, "text");
    }

    #[test]
    fn unknown_settings_and_bad_values_are_named() {
        let err = parse("listen_on: x\n", &[]).unwrap_err().to_string();
        assert!(err.contains("unknown setting \"listen_on\""), "{err}");
        let err = parse("agent_timeout: soon\n", &[]).unwrap_err().to_string();
        assert!(err.contains("soon"), "{err}");
        let err = parse("listen: [a, b]\n", &[]).unwrap_err().to_string();
        assert!(err.contains("listen must be a single value"), "{err}");
    }

    #[test]
    fn without_a_file_defaults_apply() {
        let settings: Settings = parse_layered_from(vec!["prog".into()], "/nonexistent").unwrap();
        assert_eq!(settings.agent_timeout, 5);
    }
}
