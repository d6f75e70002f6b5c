//! Migrations: idempotent, concurrent on PostgreSQL, and an SQLite file of the previous version
//! opens with its records and their order intact.

use super::*;
use crate::store::testing::TestDatabase;
use crate::store::{Database, Store};

#[test]
fn sqlite_migrations_are_idempotent() {
    let mut conn = Connection::open_in_memory().unwrap();
    run_sqlite(&mut conn).unwrap();
    run_sqlite(&mut conn).unwrap();
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len());
}

#[test]
fn a_version_3_sqlite_database_opens_with_its_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let conn = Connection::open(&path).unwrap();
    for migration in &MIGRATIONS[..3] {
        conn.execute_batch(migration.sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    conn.execute_batch(
        "INSERT INTO experiments (name, state, config_yaml, context, created_ms) VALUES ('e', 'ACTIVE', 'yaml', x'00', 1);
         INSERT INTO trials (experiment_id, state, hparams_json) VALUES (1, 'RUNNING', '{}');
         INSERT INTO allocations (id, trial_id, agent_id, slot_ids, start_step, end_step, started_ms, gang, part_index, part_count)
             VALUES ('z', 1, 'a1', '[]', 0, 0, 7, 'z', 0, 2), ('z.1', 1, 'a2', '[]', 0, 0, 7, 'z', 1, 2),
                    ('b', 1, 'a1', '[]', 0, 0, 7, '', 0, 1);",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&Database::Sqlite(path), None).unwrap();
    let ids: Vec<String> = store
        .allocations_of_trial(1)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["z", "z.1", "b"]);
    assert_eq!(store.list_trials().unwrap().len(), 1);
}

#[test]
fn postgres_migrations_are_idempotent_and_fence_every_cluster_table() {
    let test = TestDatabase::create();
    let mut client = PgClient::connect(&test.url).unwrap();
    run_postgres(&mut client).unwrap();
    run_postgres(&mut client).unwrap();
    let versions = client
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap();
    let versions: Vec<i64> = versions.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
    assert_eq!(versions, expected);

    let unfenced = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables t
             WHERE table_schema = 'public' AND table_name NOT IN ('master_lease', 'schema_version')
               AND NOT EXISTS (SELECT 1 FROM pg_trigger
                               WHERE tgrelid = ('public.' || t.table_name)::regclass AND tgname = 'fence')",
            &[],
        )
        .unwrap();
    let unfenced: Vec<String> = unfenced.iter().map(|r| r.get(0)).collect();
    assert!(
        unfenced.is_empty(),
        "tables without a fencing trigger: {unfenced:?}"
    );
    let tables = client
        .query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap();
    assert_eq!(
        tables[0].get::<_, i64>(0),
        11,
        "9 cluster tables, the lease, the version"
    );
}

#[test]
fn postgres_migrations_from_two_threads_at_once_apply_once() {
    let test = TestDatabase::create();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut client = PgClient::connect(&test.url).unwrap();
                    barrier.wait();
                    run_postgres(&mut client)
                })
            })
            .collect();
        for run in runs {
            run.join().unwrap().unwrap();
        }
    });
    let mut client = PgClient::connect(&test.url).unwrap();
    let rows = client
        .query("SELECT count(*), max(version) FROM schema_version", &[])
        .unwrap();
    let (count, max): (i64, i64) = (rows[0].get(0), rows[0].get(1));
    assert_eq!(
        (count, max),
        (MIGRATIONS.len() as i64, MIGRATIONS.len() as i64)
    );
}
