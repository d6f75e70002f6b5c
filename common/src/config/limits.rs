//! Limits checked on a config's text before any YAML parser sees it, so that a hostile config
//! is refused at once: its size, and how deeply its collections nest.

use super::error::ConfigError;

/// Largest experiment config accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Deepest nesting of collections accepted.
pub const MAX_NESTING: usize = 64;

/// Refuses a config that is too large or nests too deeply (flow `[`/`{`, block `- ` runs and
/// indentation all count), naming the limit.
pub fn check_config_text(yaml: &str) -> Result<(), ConfigError> {
    if yaml.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::invalid(
            "experiment config",
            format!(
                "is {} bytes; the limit is {MAX_CONFIG_BYTES} bytes (1 MiB)",
                yaml.len()
            ),
        ));
    }
    let (depth, line) = deepest_nesting(yaml);
    if depth > MAX_NESTING {
        return Err(ConfigError::invalid(
            "experiment config",
            format!("nests collections {depth} deep at line {line}; the limit is {MAX_NESTING}"),
        ));
    }
    Ok(())
}

/// The deepest nesting found and the line where it is reached. Quoted strings and comments do
/// not count; block nesting is counted as indentation steps plus leading `- ` markers.
fn deepest_nesting(yaml: &str) -> (usize, usize) {
    let mut deepest = (0, 0);
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (index, line) in yaml.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            while indents.last().is_some_and(|&i| i > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
        }
        let mut dashes = 0;
        let mut rest = trimmed;
        while let Some(after) = rest.strip_prefix("- ") {
            dashes += 1;
            rest = after.trim_start_matches(' ');
        }
        let block = indents.len() + dashes;
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        let mut escaped = false;
        for c in rest.chars() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if previous.is_whitespace() => break,
                    '[' | '{' => {
                        flow += 1;
                        if block + flow > deepest.0 {
                            deepest = (block + flow, index + 1);
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
        if block + flow > deepest.0 {
            deepest = (block + flow, index + 1);
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_huge_configs_are_refused_before_parsing() {
        let flow = format!("a: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
        let error = check_config_text(&flow).unwrap_err().to_string();
        assert!(
            error.contains("nests collections") && error.contains("limit is 64"),
            "{error}"
        );
        let dashes = format!("a:\n  {}x\n", "- ".repeat(200));
        assert!(check_config_text(&dashes).is_err());
        let indented: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(check_config_text(&indented).is_err());
        let huge = format!("name: {}\n", "x".repeat(MAX_CONFIG_BYTES));
        let error = check_config_text(&huge).unwrap_err().to_string();
        assert!(
            error.contains("the limit is 1048576 bytes (1 MiB)"),
            "{error}"
        );
    }

    #[test]
    fn ordinary_configs_pass_and_quotes_and_comments_do_not_count() {
        let config = "name: 'a [[[[ b'\nsearcher: {name: grid, metric: \"x{{{\", max_length: 1} # [[[[\n\
                      hyperparameters:\n  lr: {type: categorical, vals: [[1, 2], [3]]}\n";
        assert_eq!(check_config_text(config), Ok(()));
        assert!(deepest_nesting(config).0 < 6);
    }
}
