//! The figures of one run and the table that sets runs side by side.

use std::time::Duration;

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Which store the master used.
    pub store: String,
    /// Seconds from the first connection to every agent's Welcome.
    pub register_s: f64,
    /// Seconds the CreateExperiment call took.
    pub create_call_s: f64,
    /// Trials placed (start requests received by agents) and how many could be.
    pub placed: (u64, u64),
    /// Seconds from the create call to the last placement.
    pub place_s: f64,
    /// Scheduling passes while placing: count, largest (bucket bound, s) and total seconds.
    pub placing_passes: (f64, Option<f64>, f64),
    /// Scheduling passes in the steady window: count, p99 and mean (s).
    pub steady_passes: (f64, Option<f64>, f64),
    /// Training, validation and checkpoint reports per second sent by the agents.
    pub offered_per_s: f64,
    /// Those the master's cluster task applied per second.
    pub accepted_per_s: f64,
    /// Every agent message applied per second (heartbeats and the rest included).
    pub messages_per_s: f64,
    /// p50 and p99 of the cluster task's time per agent report (s).
    pub report_cost: (Option<f64>, Option<f64>),
    /// Heartbeat round trips in the window: count, p50, p99, max.
    pub acks: (usize, Duration, Duration, Duration),
    /// Commands waiting for the cluster task at the window's end.
    pub queue_depth: f64,
    /// Master CPU in the window, in cores.
    pub master_cores: f64,
    /// Master CPU over the whole run, seconds.
    pub master_cpu_s: f64,
    /// Simulator CPU in the window, in cores.
    pub simulator_cores: f64,
    /// Master resident memory at the end and at its peak, bytes.
    pub rss: (u64, u64),
    /// Agents the master counts disconnected, and allocations it ended as agent-lost.
    pub lost: (f64, f64),
    /// Agent sessions that failed.
    pub sessions_failed: u64,
    /// Checkpoints the agents reported and those the master recorded, over the run.
    pub checkpoints: (u64, u64),
    /// Seconds from the pause call until every allocation exited, and until the master showed
    /// every trial stopped; None when the trials completed before the pause.
    pub pause_s: Option<(f64, f64)>,
    /// Size of the database files at the end, bytes.
    pub database_bytes: u64,
}

/// One line of the table: a label and, per run, the text shown and the number compared.
struct Row {
    label: &'static str,
    cells: Vec<(String, Option<f64>)>,
}

/// Prints the runs side by side, with the ratio of the first to the second where both have one.
pub fn print_table(runs: &[Figures]) {
    let rows = rows(runs);
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let mut header = format!("| {:width$} |", "");
    for run in runs {
        header.push_str(&format!(" {:>20} |", run.store));
    }
    if runs.len() == 2 {
        header.push_str(&format!(" {:>7} |", "ratio"));
    }
    println!("{header}");
    println!(
        "|{}|{}",
        "-".repeat(width + 2),
        "---------------------:|".repeat(runs.len())
            + if runs.len() == 2 { "--------:|" } else { "" }
    );
    for row in rows {
        let mut line = format!("| {:width$} |", row.label);
        for (text, _) in &row.cells {
            line.push_str(&format!(" {text:>20} |"));
        }
        if let [(_, Some(a)), (_, Some(b))] = row.cells.as_slice() {
            let ratio = if *b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".into()
            };
            line.push_str(&format!(" {ratio:>7} |"));
        } else if runs.len() == 2 {
            line.push_str(&format!(" {:>7} |", ""));
        }
        println!("{line}");
    }
}

fn rows(runs: &[Figures]) -> Vec<Row> {
    let row = |label, cell: &dyn Fn(&Figures) -> (String, Option<f64>)| Row {
        label,
        cells: runs.iter().map(cell).collect(),
    };
    vec![
        row("agents registered (s)", &|f| num(f.register_s, 2)),
        row("experiment create call (s)", &|f| num(f.create_call_s, 3)),
        row("create -> all placed (s)", &|f| num(f.place_s, 3)),
        row("trials placed / capacity", &|f| {
            (format!("{} / {}", f.placed.0, f.placed.1), None)
        }),
        row("scheduling passes while placing", &|f| {
            num(f.placing_passes.0, 0)
        }),
        row("  largest pass (ms, bucket <=)", &|f| {
            opt_ms(f.placing_passes.1)
        }),
        row("  all passes (ms, total)", &|f| {
            num(f.placing_passes.2 * 1e3, 1)
        }),
        row("steady passes: p99 (ms)", &|f| opt_ms(f.steady_passes.1)),
        row("steady passes: mean (ms)", &|f| {
            num(f.steady_passes.2 * 1e3, 2)
        }),
        row("reports/s offered", &|f| num(f.offered_per_s, 0)),
        row("reports/s accepted", &|f| num(f.accepted_per_s, 0)),
        row("agent messages/s accepted", &|f| num(f.messages_per_s, 0)),
        row("agent report apply p50 (us)", &|f| opt_us(f.report_cost.0)),
        row("agent report apply p99 (us)", &|f| opt_us(f.report_cost.1)),
        row("heartbeat acks measured", &|f| num(f.acks.0 as f64, 0)),
        row("heartbeat ack p50 (ms)", &|f| num(ms(f.acks.1), 1)),
        row("heartbeat ack p99 (ms)", &|f| num(ms(f.acks.2), 1)),
        row("heartbeat ack max (ms)", &|f| num(ms(f.acks.3), 1)),
        row("command queue at window end", &|f| num(f.queue_depth, 0)),
        row("master CPU in window (cores)", &|f| num(f.master_cores, 2)),
        row("master CPU per report (us)", &|f| {
            num(f.master_cores * 1e6 / f.accepted_per_s.max(1.0), 1)
        }),
        row("master CPU whole run (s)", &|f| num(f.master_cpu_s, 1)),
        row("simulator CPU in window (cores)", &|f| {
            num(f.simulator_cores, 2)
        }),
        row("master RSS end (MiB)", &|f| num(mib(f.rss.0), 0)),
        row("master RSS peak (MiB)", &|f| num(mib(f.rss.1), 0)),
        row("agents disconnected", &|f| num(f.lost.0, 0)),
        row("allocations ended agent-lost", &|f| num(f.lost.1, 0)),
        row("agent sessions failed", &|f| {
            num(f.sessions_failed as f64, 0)
        }),
        row("pause -> agents exited all (s)", &|f| {
            f.pause_s.map_or(("-".into(), None), |p| num(p.0, 2))
        }),
        row("pause -> master shows all stopped (s)", &|f| {
            f.pause_s.map_or(("-".into(), None), |p| num(p.1, 2))
        }),
        row("checkpoints reported / recorded", &|f| {
            (format!("{} / {}", f.checkpoints.0, f.checkpoints.1), None)
        }),
        row("database size (MiB)", &|f| num(mib(f.database_bytes), 1)),
    ]
}

fn num(value: f64, decimals: usize) -> (String, Option<f64>) {
    (format!("{value:.decimals$}"), Some(value))
}

fn opt_ms(seconds: Option<f64>) -> (String, Option<f64>) {
    seconds.map_or(("-".into(), None), |s| num(s * 1e3, 2))
}

fn opt_us(seconds: Option<f64>) -> (String, Option<f64>) {
    seconds.map_or(("-".into(), None), |s| num(s * 1e6, 0))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
