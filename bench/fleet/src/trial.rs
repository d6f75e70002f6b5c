//! One simulated trial: the reports a real trial's harness and agent would send, step by step,
//! under the step policy of its start request. Nothing is written anywhere.

use baton_common::proto::{
    AgentMessage, AllocationExited, AllocationPhase, AllocationStarted, AllocationStatus,
    CheckpointCompleted, ExitKind, StartAllocation, StepPolicy, TrainingReport, ValidationReport,
    agent_message::Body,
};
use baton_common::storage::{Manifest, ManifestFile};

/// Files of a simulated checkpoint: (path, size in bytes).
const CHECKPOINT_FILES: [(&str, u64); 2] = [
    ("model.safetensors", 268_435_456),
    ("optimizer.pt", 536_870_912),
];

/// A running allocation of a simulated trial.
pub struct SimTrial {
    allocation_id: String,
    trial_id: u64,
    experiment_id: u64,
    hparams: serde_json::Value,
    policy: StepPolicy,
    step: u64,
    last_validation: u64,
    last_checkpoint: u64,
    suspending: bool,
}

/// What one step boundary produced.
pub struct StepOutcome {
    /// Reports in the order the agent sends them.
    pub reports: Vec<AgentMessage>,
    /// Checkpoints among them.
    pub checkpoints: u64,
    /// Whether the allocation exited at this boundary (its exit report is the last one).
    pub exited: bool,
}

impl SimTrial {
    /// The allocation a start request asks for, resuming at its checkpoint's step.
    pub fn start(start: &StartAllocation) -> Self {
        let step = start.latest_checkpoint_step;
        Self {
            allocation_id: start.allocation_id.clone(),
            trial_id: start.trial_id,
            experiment_id: start.experiment_id,
            hparams: serde_json::from_str(&start.hparams_json).unwrap_or_default(),
            policy: start.policy.unwrap_or_default(),
            step,
            last_validation: step,
            last_checkpoint: step,
            suspending: false,
        }
    }

    /// How high this trial's losses run: from 1 up, by its `seed` hyperparameter, so that each
    /// trial draws its own curve.
    fn scale(&self) -> f64 {
        let seed = self.hparams.get("seed").and_then(|s| {
            s.as_f64()
                .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
        });
        1.0 + seed.unwrap_or(0.0) / 100.0
    }

    /// The report that the trial process started.
    pub fn started(&self) -> AgentMessage {
        wrap(Body::AllocationStarted(AllocationStarted {
            allocation_id: self.allocation_id.clone(),
            start_step: self.step,
        }))
    }

    /// Asks the trial to checkpoint and stop at its next step boundary.
    pub fn suspend(&mut self) {
        self.suspending = true;
    }

    /// The allocation as a heartbeat lists it.
    pub fn status(&self) -> AllocationStatus {
        let phase = if self.suspending {
            AllocationPhase::Suspending
        } else {
            AllocationPhase::Running
        };
        AllocationStatus {
            allocation_id: self.allocation_id.clone(),
            phase: phase as i32,
            last_step: self.step,
        }
    }

    /// Trains one step (or, when suspending, stops at this boundary) as the agent's step policy
    /// directs: training metrics, then a validation and a checkpoint when due, then the exit.
    pub fn advance(&mut self) -> StepOutcome {
        let mut outcome = StepOutcome {
            reports: Vec::with_capacity(1),
            checkpoints: 0,
            exited: false,
        };
        if self.suspending {
            if self.step > self.last_checkpoint {
                outcome.reports.push(self.checkpoint());
                outcome.checkpoints += 1;
            }
            outcome.reports.push(self.exit(ExitKind::Suspended));
            outcome.exited = true;
            return outcome;
        }
        self.step += 1;
        let step = self.step;
        outcome.reports.push(wrap(Body::Training(TrainingReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: format!("{{\"loss\":{:.6}}}", self.scale() / (step as f64 + 1.0)),
        })));
        let done = step >= self.policy.max_length;
        let due = |period: u64, last: u64| period > 0 && step - last >= period;
        if done || due(self.policy.min_validation_period, self.last_validation) {
            self.last_validation = step;
            outcome
                .reports
                .push(wrap(Body::Validation(ValidationReport {
                    allocation_id: self.allocation_id.clone(),
                    step,
                    metrics_json: format!(
                        "{{\"validation_loss\":{:.6}}}",
                        2.0 * self.scale() / (step as f64 + 1.0)
                    ),
                })));
        }
        if done || due(self.policy.min_checkpoint_period, self.last_checkpoint) {
            outcome.reports.push(self.checkpoint());
            outcome.checkpoints += 1;
        }
        if done {
            outcome.reports.push(self.exit(ExitKind::Completed));
            outcome.exited = true;
        }
        outcome
    }

    /// The report of a kill: the process is gone.
    pub fn killed(&self) -> AgentMessage {
        self.exit(ExitKind::Killed)
    }

    /// A committed checkpoint at the current step, with a manifest as the agent writes it.
    fn checkpoint(&mut self) -> AgentMessage {
        self.last_checkpoint = self.step;
        let uuid = uuid::Uuid::new_v4().to_string();
        let files: Vec<ManifestFile> = CHECKPOINT_FILES
            .iter()
            .map(|(path, size)| ManifestFile {
                path: (*path).to_string(),
                size: *size,
                blake3: blake3::hash(format!("{uuid}/{path}").as_bytes())
                    .to_hex()
                    .to_string(),
            })
            .collect();
        let manifest = Manifest {
            uuid: uuid.clone(),
            experiment_id: self.experiment_id,
            trial_id: self.trial_id,
            allocation_id: self.allocation_id.clone(),
            step: self.step,
            hparams: self.hparams.clone(),
            metadata: serde_json::json!({"framework": "torch", "format": "safetensors"}),
            files,
            committed_ms: now_ms(),
        };
        wrap(Body::CheckpointCompleted(CheckpointCompleted {
            allocation_id: self.allocation_id.clone(),
            uuid,
            step: self.step,
            size_bytes: manifest.size_bytes(),
            metadata_json: serde_json::to_string(&manifest).expect("a manifest serializes"),
        }))
    }

    fn exit(&self, kind: ExitKind) -> AgentMessage {
        wrap(Body::AllocationExited(AllocationExited {
            allocation_id: self.allocation_id.clone(),
            kind: kind as i32,
            exit_code: if kind == ExitKind::Killed { -15 } else { 0 },
            end_step: self.step,
            message: String::new(),
        }))
    }
}

/// An agent message around `body`.
pub fn wrap(body: Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
