//! Forward-only schema migrations, one list for both backends: SQLite tracks its version in
//! `user_version`, PostgreSQL in the `schema_version` table, under an advisory lock so that masters
//! starting together migrate once.

use rusqlite::Connection;

use super::StoreResult;
use super::pg::PgClient;
use super::value::params;

/// One step forward of the schema.
struct Migration {
    /// Both backends: SQLite runs it as written, PostgreSQL as [`for_postgres`] translates it.
    sql: &'static str,
    /// PostgreSQL only, after `sql`: what SQLite has built in or does without.
    postgres_only: &'static str,
}

/// Each entry moves the schema one version forward. A later migration that writes cluster tables
/// on PostgreSQL runs into their fencing triggers (version 4).
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: r#"
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
        postgres_only: "",
    },
    Migration {
        sql: r#"
ALTER TABLE allocations ADD COLUMN desired TEXT NOT NULL DEFAULT 'run';
"#,
        postgres_only: "",
    },
    Migration {
        sql: r#"
ALTER TABLE allocations ADD COLUMN gang TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN part_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allocations ADD COLUMN part_count INTEGER NOT NULL DEFAULT 1;
"#,
        postgres_only: "",
    },
    Migration {
        sql: "",
        postgres_only: r#"
-- SQLite's implicit rowid orders the allocations of a trial started in the same millisecond (the
-- parts of one, inserted in part order); PostgreSQL gets a column of that name doing the same.
ALTER TABLE allocations ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;

-- The lease masters take turns through: one row, epoch 0 and expired until a master takes it.
CREATE TABLE master_lease (
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    url TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO master_lease (epoch, holder, url, expires_at) VALUES (0, '', '', '-infinity');

-- Every write to a cluster table first checks that the writing session's epoch (baton.epoch) is
-- the lease's, keeping the lease row share-locked until its transaction ends: a master taking the
-- lease waits for a write in flight, and every later write of the previous holder fails.
CREATE FUNCTION baton_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine BIGINT := NULLIF(current_setting('baton.epoch', true), '')::BIGINT;
BEGIN
    PERFORM 1 FROM master_lease WHERE epoch = mine FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'write refused: this master''s lease (epoch %) has been taken by another master', COALESCE(mine::TEXT, 'none')
            USING ERRCODE = 'BF001';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON experiments FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON trials FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON allocations FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON checkpoints FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON validations FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON training_metrics FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON logs FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON agents FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
"#,
    },
    Migration {
        sql: r#"
-- Pins keep a checkpoint from every GC policy and from experiment deletion.
ALTER TABLE checkpoints ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN pin_note TEXT NOT NULL DEFAULT '';
-- The most bytes of checkpoints an experiment has held at once (0 until its next commit).
ALTER TABLE experiments ADD COLUMN storage_peak_bytes INTEGER NOT NULL DEFAULT 0;
"#,
        postgres_only: "",
    },
    Migration {
        sql: r#"
-- The searcher's name for a trial of an adaptive search (adaptive_asha): 0, 1, 2… in creation
-- order; NULL for the trials of other searchers.
ALTER TABLE trials ADD COLUMN request_id INTEGER;

-- What an adaptive search was told, in order, so that a restarted master replays it: a trial's
-- validation at the length it trained to (kind 'validation', metric as text, 'NaN' for none), or
-- its end (kind 'exited').
CREATE TABLE searcher_events (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    request_id INTEGER NOT NULL,
    length INTEGER NOT NULL,
    metric TEXT NOT NULL,
    PRIMARY KEY (experiment_id, seq)
);
"#,
        postgres_only: r#"
CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE ON searcher_events FOR EACH STATEMENT EXECUTE FUNCTION baton_fence();
"#,
    },
    Migration {
        sql: r#"
-- Numbered log lines ('' and 0: unnumbered), so that a line an agent replays is stored once.
ALTER TABLE logs ADD COLUMN stream_id TEXT NOT NULL DEFAULT '';
ALTER TABLE logs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX logs_by_stream ON logs(allocation_id, stream_id, seq);
"#,
        postgres_only: "",
    },
];

/// Key of the advisory lock held while migrating a PostgreSQL database ("baton").
const MIGRATION_LOCK: i64 = 0x0062_6174_6f6e;

/// Applies every migration newer than the SQLite database's version.
pub(super) fn run_sqlite(conn: &mut Connection) -> StoreResult<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Applies every migration newer than the PostgreSQL database's version, in one transaction.
pub(crate) fn run_postgres(client: &mut PgClient) -> StoreResult<()> {
    client.batch("BEGIN")?;
    let migrated = migrate_postgres(client);
    match migrated {
        Ok(()) => client.batch("COMMIT"),
        Err(e) => {
            let _ = client.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn migrate_postgres(client: &mut PgClient) -> StoreResult<()> {
    client.query("SELECT pg_advisory_xact_lock(?1)", params![MIGRATION_LOCK])?;
    client.batch(
        "SET LOCAL client_min_messages = warning;
         CREATE TABLE IF NOT EXISTS schema_version (
             version BIGINT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
         )",
    )?;
    let rows = client.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?;
    let current: i64 = rows[0].try_get(0)?;
    let current = usize::try_from(current).unwrap_or_default();
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        client.batch(&for_postgres(migration.sql))?;
        client.batch(migration.postgres_only)?;
        let version = i64::try_from(index + 1).expect("few migrations");
        client.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![version],
        )?;
    }
    Ok(())
}

/// SQLite DDL as PostgreSQL's: integers are BIGINT, an integer primary key is an identity column,
/// bytes are BYTEA.
fn for_postgres(sql: &str) -> String {
    const IDENTITY: &str = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
    sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", IDENTITY)
        .replace("INTEGER PRIMARY KEY", IDENTITY)
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
}

#[cfg(test)]
mod tests;
