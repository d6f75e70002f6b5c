//! Forward-only schema migrations, tracked by SQLite's `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema one version forward.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    config_yaml TEXT NOT NULL,
    context BLOB NOT NULL,
    gc_policy_json TEXT,
    created_ms INTEGER NOT NULL
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    state TEXT NOT NULL,
    hparams_json TEXT NOT NULL,
    steps_completed INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    latest_checkpoint_uuid TEXT,
    latest_checkpoint_step INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX trials_by_experiment ON trials(experiment_id);
CREATE TABLE allocations (
    id TEXT PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    agent_id TEXT NOT NULL,
    slot_ids TEXT NOT NULL,
    start_step INTEGER NOT NULL,
    end_step INTEGER NOT NULL,
    exit_reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX allocations_by_trial ON allocations(trial_id);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    allocation_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    state TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    metadata_json TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);
CREATE INDEX checkpoints_by_experiment ON checkpoints(experiment_id);
CREATE TABLE validations (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    PRIMARY KEY (trial_id, step)
);
CREATE TABLE training_metrics (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    PRIMARY KEY (trial_id, step)
);
CREATE TABLE logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    allocation_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL
);
CREATE INDEX logs_by_trial ON logs(trial_id, id);
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE allocations ADD COLUMN desired TEXT NOT NULL DEFAULT 'run';
"#,
    r#"
ALTER TABLE allocations ADD COLUMN gang TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN part_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allocations ADD COLUMN part_count INTEGER NOT NULL DEFAULT 1;
"#,
];

/// Applies every migration newer than the database's version.
pub fn run(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }
}
