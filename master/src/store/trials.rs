//! Trial, allocation and metric records.

use super::value::{Row, params};
use super::{Store, StoreResult};
use crate::states::TrialState;

/// One trial as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// Trial id.
    pub id: u64,
    /// Owning experiment.
    pub experiment_id: u64,
    /// Lifecycle state.
    pub state: TrialState,
    /// Hyperparameters as a JSON object.
    pub hparams_json: String,
    /// Highest step reported.
    pub steps_completed: u64,
    /// Failures counted against `max_restarts`.
    pub restarts: u32,
    /// Checkpoint to resume from.
    pub latest_checkpoint_uuid: Option<String>,
    /// Step of that checkpoint.
    pub latest_checkpoint_step: u64,
    /// Why the trial errored.
    pub error: String,
    /// The searcher's name for it in an adaptive search (`adaptive_asha`); None otherwise.
    pub request_id: Option<u32>,
}

impl TrialRow {
    /// A new QUEUED trial, as [`Store::insert_trial`] records it.
    pub fn queued(
        id: u64,
        experiment_id: u64,
        hparams_json: String,
        request_id: Option<u32>,
    ) -> Self {
        Self {
            id,
            experiment_id,
            state: TrialState::Queued,
            hparams_json,
            steps_completed: 0,
            restarts: 0,
            latest_checkpoint_uuid: None,
            latest_checkpoint_step: 0,
            error: String::new(),
            request_id,
        }
    }
}

/// One run of a trial on one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRow {
    /// Allocation id (uuid).
    pub id: String,
    /// The trial it runs.
    pub trial_id: u64,
    /// The agent it runs on.
    pub agent_id: String,
    /// Slots it holds.
    pub slot_ids: Vec<String>,
    /// Step it started from.
    pub start_step: u64,
    /// Last step it reported.
    pub end_step: u64,
    /// Why it ended; None while current.
    pub exit_reason: Option<String>,
    /// Details of the end.
    pub message: String,
    /// Start time, Unix milliseconds.
    pub started_ms: i64,
    /// End time, Unix milliseconds (0 while current).
    pub ended_ms: i64,
    /// What the master wants of it, as stored (`run`, `suspend:REASON`, `kill:REASON`).
    pub desired: String,
    /// For a part of an allocation spanning several agents, that allocation's id (its chief
    /// part's id); "" for an allocation on one agent.
    pub gang: String,
    /// This part's index (0: the chief, where rank 0 runs).
    pub part_index: u32,
    /// Parts of the allocation (1 on one agent).
    pub part_count: u32,
}

/// Validation metrics at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRow {
    /// Step of the validation.
    pub step: u64,
    /// Metrics as a JSON object.
    pub metrics_json: String,
}

const TRIAL_COLUMNS: &str = "id, experiment_id, state, hparams_json, steps_completed, restarts, latest_checkpoint_uuid, latest_checkpoint_step, error, request_id";
const ALLOCATION_COLUMNS: &str = "id, trial_id, agent_id, slot_ids, start_step, end_step, exit_reason, message, started_ms, ended_ms, desired, gang, part_index, part_count";

impl Store {
    /// Inserts a QUEUED trial (with its request id in an adaptive search) and returns its id.
    pub fn insert_trial(
        &self,
        experiment_id: u64,
        hparams_json: &str,
        request_id: Option<u32>,
    ) -> StoreResult<u64> {
        self.insert_returning_id(
            "INSERT INTO trials (experiment_id, state, hparams_json, request_id) VALUES (?1, 'QUEUED', ?2, ?3)",
            params![experiment_id, hparams_json, request_id],
        )
    }

    /// Every trial, by id.
    pub fn list_trials(&self) -> StoreResult<Vec<TrialRow>> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials ORDER BY id");
        self.query(&sql, params![], trial_from_row)
    }

    /// Writes every mutable field of a trial.
    pub fn update_trial(&self, trial: &TrialRow) -> StoreResult<()> {
        self.execute(
            "UPDATE trials SET state = ?2, steps_completed = ?3, restarts = ?4, latest_checkpoint_uuid = ?5, latest_checkpoint_step = ?6, error = ?7 WHERE id = ?1",
            params![
                trial.id,
                trial.state.as_str(),
                trial.steps_completed,
                trial.restarts,
                &trial.latest_checkpoint_uuid,
                trial.latest_checkpoint_step,
                &trial.error
            ],
        )?;
        Ok(())
    }

    /// Inserts a new allocation.
    pub fn insert_allocation(&self, allocation: &AllocationRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO allocations (id, trial_id, agent_id, slot_ids, start_step, end_step, started_ms, desired, gang, part_index, part_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                &allocation.id,
                allocation.trial_id,
                &allocation.agent_id,
                &serde_json::to_string(&allocation.slot_ids).expect("slot ids serialize"),
                allocation.start_step,
                allocation.end_step,
                allocation.started_ms,
                &allocation.desired,
                &allocation.gang,
                allocation.part_index,
                allocation.part_count
            ],
        )?;
        Ok(())
    }

    /// Records what the master now wants of an allocation.
    pub fn set_allocation_desired(&self, allocation_id: &str, desired: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE allocations SET desired = ?2 WHERE id = ?1",
            params![allocation_id, desired],
        )?;
        Ok(())
    }

    /// Records the end of an allocation.
    pub fn end_allocation(&self, allocation: &AllocationRow) -> StoreResult<()> {
        self.execute(
            "UPDATE allocations SET end_step = ?2, exit_reason = ?3, message = ?4, ended_ms = ?5 WHERE id = ?1",
            params![
                &allocation.id,
                allocation.end_step,
                &allocation.exit_reason,
                &allocation.message,
                allocation.ended_ms
            ],
        )?;
        Ok(())
    }

    /// Allocations that have not ended.
    pub fn open_allocations(&self) -> StoreResult<Vec<AllocationRow>> {
        let sql = format!("SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE exit_reason IS NULL");
        self.query(&sql, params![], allocation_from_row)
    }

    /// One allocation, current or ended.
    pub fn allocation_by_id(&self, allocation_id: &str) -> StoreResult<Option<AllocationRow>> {
        let sql = format!("SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE id = ?1");
        self.query_first(&sql, params![allocation_id], allocation_from_row)
    }

    /// Every allocation of a trial, oldest first (in insertion order within a millisecond: a
    /// distributed allocation's parts in part order).
    pub fn allocations_of_trial(&self, trial_id: u64) -> StoreResult<Vec<AllocationRow>> {
        let sql = format!(
            "SELECT {ALLOCATION_COLUMNS} FROM allocations WHERE trial_id = ?1 ORDER BY started_ms, rowid"
        );
        self.query(&sql, params![trial_id], allocation_from_row)
    }

    /// Records (or replaces) the validation of a trial at a step.
    pub fn upsert_validation(
        &self,
        trial_id: u64,
        step: u64,
        metrics_json: &str,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO validations (trial_id, step, metrics_json) VALUES (?1, ?2, ?3) ON CONFLICT (trial_id, step) DO UPDATE SET metrics_json = excluded.metrics_json",
            params![trial_id, step, metrics_json],
        )?;
        Ok(())
    }

    /// Records (or replaces) the training metrics of a trial at a step.
    pub fn upsert_training_metrics(
        &self,
        trial_id: u64,
        step: u64,
        metrics_json: &str,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO training_metrics (trial_id, step, metrics_json) VALUES (?1, ?2, ?3) ON CONFLICT (trial_id, step) DO UPDATE SET metrics_json = excluded.metrics_json",
            params![trial_id, step, metrics_json],
        )?;
        Ok(())
    }

    /// The metrics of a trial's validation at `step`, if it validated there.
    pub fn validation_at(&self, trial_id: u64, step: u64) -> StoreResult<Option<String>> {
        self.query_first(
            "SELECT metrics_json FROM validations WHERE trial_id = ?1 AND step = ?2",
            params![trial_id, step],
            |row| row.get(0),
        )
    }

    /// Training metrics of a trial, by step.
    pub fn training_metrics_of_trial(&self, trial_id: u64) -> StoreResult<Vec<ValidationRow>> {
        self.query(
            "SELECT step, metrics_json FROM training_metrics WHERE trial_id = ?1 ORDER BY step",
            params![trial_id],
            |row| {
                Ok(ValidationRow {
                    step: row.get(0)?,
                    metrics_json: row.get(1)?,
                })
            },
        )
    }

    /// Every stored validation with its trial, by trial and step.
    pub fn all_validations(&self) -> StoreResult<Vec<(u64, ValidationRow)>> {
        self.query(
            "SELECT trial_id, step, metrics_json FROM validations ORDER BY trial_id, step",
            params![],
            |row| {
                Ok((
                    row.get(0)?,
                    ValidationRow {
                        step: row.get(1)?,
                        metrics_json: row.get(2)?,
                    },
                ))
            },
        )
    }

    /// The training metrics (or validations when `training` is false) of every trial of an
    /// experiment, by trial and step.
    pub fn metrics_of_experiment(
        &self,
        experiment_id: u64,
        training: bool,
    ) -> StoreResult<Vec<(u64, ValidationRow)>> {
        let sql = if training {
            "SELECT m.trial_id, m.step, m.metrics_json FROM training_metrics m JOIN trials t ON t.id = m.trial_id WHERE t.experiment_id = ?1 ORDER BY m.trial_id, m.step"
        } else {
            "SELECT m.trial_id, m.step, m.metrics_json FROM validations m JOIN trials t ON t.id = m.trial_id WHERE t.experiment_id = ?1 ORDER BY m.trial_id, m.step"
        };
        self.query(sql, params![experiment_id], |row| {
            Ok((
                row.get(0)?,
                ValidationRow {
                    step: row.get(1)?,
                    metrics_json: row.get(2)?,
                },
            ))
        })
    }

    /// Validations of a trial, by step.
    pub fn validations_of_trial(&self, trial_id: u64) -> StoreResult<Vec<ValidationRow>> {
        self.query(
            "SELECT step, metrics_json FROM validations WHERE trial_id = ?1 ORDER BY step",
            params![trial_id],
            |row| {
                Ok(ValidationRow {
                    step: row.get(0)?,
                    metrics_json: row.get(1)?,
                })
            },
        )
    }
}

fn trial_from_row(row: &Row<'_>) -> StoreResult<TrialRow> {
    Ok(TrialRow {
        id: row.get(0)?,
        experiment_id: row.get(1)?,
        state: row.parsed(2)?,
        hparams_json: row.get(3)?,
        steps_completed: row.get(4)?,
        restarts: row.get(5)?,
        latest_checkpoint_uuid: row.get(6)?,
        latest_checkpoint_step: row.get(7)?,
        error: row.get(8)?,
        request_id: row.get(9)?,
    })
}

fn allocation_from_row(row: &Row<'_>) -> StoreResult<AllocationRow> {
    let slot_ids: String = row.get(3)?;
    Ok(AllocationRow {
        id: row.get(0)?,
        trial_id: row.get(1)?,
        agent_id: row.get(2)?,
        slot_ids: serde_json::from_str(&slot_ids).unwrap_or_default(),
        start_step: row.get(4)?,
        end_step: row.get(5)?,
        exit_reason: row.get(6)?,
        message: row.get(7)?,
        started_ms: row.get(8)?,
        ended_ms: row.get(9)?,
        desired: row.get(10)?,
        gang: row.get(11)?,
        part_index: row.get(12)?,
        part_count: row.get(13)?,
    })
}
