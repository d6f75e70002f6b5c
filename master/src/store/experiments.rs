//! Experiment and agent records.

use super::value::params;
use super::{Store, StoreError, StoreResult};
use crate::states::ExperimentState;

/// One experiment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    /// Experiment id.
    pub id: u64,
    /// Name from the config.
    pub name: String,
    /// Lifecycle state.
    pub state: ExperimentState,
    /// The config as submitted.
    pub config_yaml: String,
    /// A GC policy set after creation, as JSON.
    pub gc_policy_json: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// The most bytes of checkpoints it has held in storage at once, as last recorded.
    pub storage_peak_bytes: u64,
}

impl Store {
    /// Inserts an experiment and returns its id.
    pub fn insert_experiment(
        &self,
        name: &str,
        config_yaml: &str,
        context: &[u8],
        created_ms: i64,
    ) -> StoreResult<u64> {
        self.insert_returning_id(
            "INSERT INTO experiments (name, state, config_yaml, context, created_ms) VALUES (?1, 'ACTIVE', ?2, ?3, ?4)",
            params![name, config_yaml, context, created_ms],
        )
    }

    /// Every experiment, by id.
    pub fn list_experiments(&self) -> StoreResult<Vec<ExperimentRow>> {
        self.query(
            "SELECT id, name, state, config_yaml, gc_policy_json, created_ms, storage_peak_bytes FROM experiments ORDER BY id",
            params![],
            |row| {
                Ok(ExperimentRow {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    state: row.parsed(2)?,
                    config_yaml: row.get(3)?,
                    gc_policy_json: row.get(4)?,
                    created_ms: row.get(5)?,
                    storage_peak_bytes: row.get(6)?,
                })
            },
        )
    }

    /// The encoded context directory of an experiment.
    pub fn experiment_context(&self, id: u64) -> StoreResult<Vec<u8>> {
        self.query_first(
            "SELECT context FROM experiments WHERE id = ?1",
            params![id],
            |row| row.get(0),
        )?
        .ok_or_else(|| StoreError::NotFound(format!("experiment {id}")))
    }

    /// Removes an experiment and every record of its trials (logs, metrics, allocations,
    /// checkpoints, searcher events) in one transaction.
    pub fn delete_experiment_records(&mut self, id: u64) -> StoreResult<()> {
        self.transaction(|store| {
            let trials = "SELECT id FROM trials WHERE experiment_id = ?1";
            for table in ["logs", "validations", "training_metrics", "allocations"] {
                store.execute(
                    &format!("DELETE FROM {table} WHERE trial_id IN ({trials})"),
                    params![id],
                )?;
            }
            store.execute(
                "DELETE FROM checkpoints WHERE experiment_id = ?1",
                params![id],
            )?;
            store.execute(
                "DELETE FROM searcher_events WHERE experiment_id = ?1",
                params![id],
            )?;
            store.execute("DELETE FROM trials WHERE experiment_id = ?1", params![id])?;
            store.execute("DELETE FROM experiments WHERE id = ?1", params![id])?;
            Ok(())
        })
    }

    /// Records an experiment's state.
    pub fn set_experiment_state(&self, id: u64, state: ExperimentState) -> StoreResult<()> {
        self.execute(
            "UPDATE experiments SET state = ?2 WHERE id = ?1",
            params![id, state.as_str()],
        )?;
        Ok(())
    }

    /// Records a GC policy set after creation.
    pub fn set_gc_policy(&self, id: u64, policy_json: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE experiments SET gc_policy_json = ?2 WHERE id = ?1",
            params![id, policy_json],
        )?;
        Ok(())
    }

    /// Raises an experiment's recorded storage peak to `bytes` (never lowers it).
    pub fn raise_storage_peak(&self, id: u64, bytes: u64) -> StoreResult<()> {
        self.execute(
            "UPDATE experiments SET storage_peak_bytes = ?2 WHERE id = ?1 AND storage_peak_bytes < ?2",
            params![id, bytes],
        )?;
        Ok(())
    }

    /// Operator-set states of agents (enabled, disabled, draining).
    pub fn agent_states(&self) -> StoreResult<Vec<(String, String)>> {
        self.query(
            "SELECT id, state FROM agents ORDER BY id",
            params![],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    }

    /// Records an agent's operator-set state.
    pub fn set_agent_state(&self, id: &str, state: &str) -> StoreResult<()> {
        self.execute(
            "INSERT INTO agents (id, state) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            params![id, state],
        )?;
        Ok(())
    }

    /// The state recorded for one agent, if any.
    pub fn agent_state(&self, id: &str) -> StoreResult<Option<String>> {
        self.query_first(
            "SELECT state FROM agents WHERE id = ?1",
            params![id],
            |row| row.get(0),
        )
    }
}
