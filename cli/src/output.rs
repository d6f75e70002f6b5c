//! Shared output: tables, CSV, key/value blocks, JSON and value formatting.

use std::io::Write;

pub use baton_common::json_shapes::parse_json_field;
use comfy_table::{Table, presets};
use serde_json::Value;

/// Writes `text` to stdout, adding a final newline when it lacks one.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Pretty-prints a JSON value to stdout.
pub fn print_json(value: &Value) -> std::io::Result<()> {
    print(&serde_json::to_string_pretty(value).expect("JSON values serialize"))
}

/// Renders rows under upper-case headers as aligned, borderless columns.
pub fn table<R: IntoIterator<Item = String>>(
    headers: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row.into_iter().collect::<Vec<_>>());
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut text = String::new();
    for line in table.to_string().lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Renders `label: value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    pairs
        .iter()
        .map(|(label, value)| format!("{:<width$} {value}\n", format!("{label}:")))
        .collect()
}

/// `-` for an empty string, the string otherwise.
pub fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

/// A JSON value on one line, for table cells.
pub fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// A metric for a table cell, `-` when absent.
pub fn metric(metric: Option<f64>) -> String {
    metric.map_or_else(
        || "-".to_string(),
        |m| {
            format!("{m:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        },
    )
}

/// A size in bytes in binary units (`512 B`, `1.5 MiB`).
pub fn bytes(size: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A size in MiB with one decimal, as used in confirmations.
pub fn mib(size: u64) -> String {
    format!("{:.1} MiB", size as f64 / (1024.0 * 1024.0))
}

/// Renders rows under a header row as CSV, quoted where needed (RFC 4180).
pub fn csv<R: IntoIterator<Item = String>>(
    headers: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(headers)
        .expect("CSV is written to memory");
    for row in rows {
        writer
            .write_record(row.into_iter().collect::<Vec<_>>())
            .expect("every CSV row has a cell per header");
    }
    let bytes = writer.into_inner().expect("CSV is written to memory");
    String::from_utf8(bytes).expect("CSV of strings is UTF-8")
}

/// A metric as CSV shows it: every digit, empty when absent.
pub fn raw_metric(metric: Option<f64>) -> String {
    metric.map(|m| m.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_without_trailing_space() {
        let text = table(
            &["ID", "NAME"],
            [
                vec!["1".to_string(), "a".to_string()],
                vec!["22".into(), "bb".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["ID  NAME", "1   a", "22  bb"]);
    }

    #[test]
    fn fields_align_values() {
        assert_eq!(
            fields(&[("ID", "1".into()), ("State", "ACTIVE".into())]),
            "ID:    1\nState: ACTIVE\n"
        );
    }

    #[test]
    fn formats_sizes_metrics_and_times() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(mib(1024 * 1024 / 2), "0.5 MiB");
        assert_eq!(metric(Some(0.25)), "0.25");
        assert_eq!(metric(Some(3.0)), "3");
        assert_eq!(metric(None), "-");
        assert_eq!(raw_metric(Some(0.123_456_789)), "0.123456789");
        assert_eq!(raw_metric(None), "");
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_it() {
        let text = csv(
            &["id", "hparams", "note"],
            [vec![
                "1".to_string(),
                r#"{"lr":0.1,"m":0.9}"#.to_string(),
                "two\nlines".to_string(),
            ]],
        );
        assert_eq!(
            text,
            "id,hparams,note\n1,\"{\"\"lr\"\":0.1,\"\"m\"\":0.9}\",\"two\nlines\"\n"
        );
        assert_eq!(csv(&["a", "b"], Vec::<Vec<String>>::new()), "a,b\n");
    }
}
