//! Starting a placed trial: its allocation, on one agent or as parts on several (a distributed
//! trial, whose ranks are numbered across the parts in order, the chief's first).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use baton_common::proto::{Context, MasterMessage, StartAllocation, StepPolicy, master_message};
use prost::Message;

use super::desired::Desired;
use super::gangs::Gang;
use super::search;
use super::state::{Cluster, LiveAllocation};
use crate::scheduler::Placement;
use crate::states::TrialState;
use crate::store::{AllocationRow, now_ms};

/// Experiment contexts read in one scheduling pass, by experiment id.
type Contexts = HashMap<u64, Context>;

/// One agent's share of a new allocation: its record and its start request.
struct NewPart {
    row: AllocationRow,
    start: StartAllocation,
}

impl Cluster {
    /// Records the allocations of placed trials in one store commit, then sends their starts.
    pub(super) fn start_allocations(&mut self, placements: &[Placement]) {
        if placements.is_empty() {
            return;
        }
        let batch = self.store.begin_batch();
        let mut contexts = HashMap::new();
        let starts: Vec<(String, StartAllocation)> = placements
            .iter()
            .flat_map(|placement| self.record_allocation(placement, &mut contexts))
            .collect();
        if let Err(e) = batch.and_then(|()| self.store.end_batch()) {
            tracing::error!(error = %e, "cannot commit new allocations");
        }
        for (agent_id, start) in starts {
            let Some(agent) = self.agents.get_mut(&agent_id) else {
                continue;
            };
            let allocation_id = start.allocation_id.clone();
            let sent = agent.send(MasterMessage {
                body: Some(master_message::Body::Start(start)),
            });
            if let Some(live) = self.allocations.get_mut(&allocation_id) {
                live.start_sent = sent;
            }
        }
    }

    /// Records a placed trial's allocation; returns the start to send now (the chief part's).
    /// The other parts of a distributed trial start once the chief's agent chose the rendezvous
    /// ports.
    fn record_allocation(
        &mut self,
        placement: &Placement,
        contexts: &mut Contexts,
    ) -> Option<(String, StartAllocation)> {
        let parts = self.new_parts(placement, contexts)?;
        let allocation_id = parts[0].row.id.clone();
        let distributed = !parts[0].row.gang.is_empty();
        let trial = self.trials.get_mut(&placement.trial_id)?;
        trial.row.state = TrialState::Starting;
        trial.row.steps_completed = trial.row.latest_checkpoint_step;
        trial.allocation = Some(allocation_id.clone());
        trial.target_agent = None;
        trial.avoid_agent = None;
        let trial_row = trial.row.clone();
        let stored = self.store.transaction(|store| {
            for part in &parts {
                store.insert_allocation(&part.row)?;
            }
            store.update_trial(&trial_row)
        });
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot record allocation");
            return None;
        }
        let agents: Vec<&str> = parts.iter().map(|p| p.row.agent_id.as_str()).collect();
        tracing::info!(trial = trial_row.id, agents = %agents.join("+"), allocation = %allocation_id, start_step = trial_row.latest_checkpoint_step, "starting allocation");
        let mut gang = Gang::default();
        let mut chief_start = None;
        for NewPart { row, start } in parts {
            let agent_id = row.agent_id.clone();
            let mut live =
                LiveAllocation::new(row, false, self.now()).expect("a new allocation wants to run");
            gang.parts.push(live.row.id.clone());
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.allocations.insert(live.row.id.clone());
                if live.row.part_index == 0 {
                    chief_start = Some((agent_id, start));
                } else {
                    live.held = true;
                    gang.waiting_starts.push((agent_id, start));
                }
            }
            self.allocations.insert(live.row.id.clone(), live);
        }
        if distributed {
            self.gangs.insert(allocation_id, gang);
        }
        chief_start
    }

    /// The records and start requests of a placement's parts; None when its trial cannot start.
    fn new_parts(&self, placement: &Placement, contexts: &mut Contexts) -> Option<Vec<NewPart>> {
        let trial = self.trials.get(&placement.trial_id)?;
        let experiment = self.experiments.get(&trial.row.experiment_id)?;
        let context = match contexts.entry(experiment.row.id) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(entry) => match self.store.experiment_context(experiment.row.id) {
                Ok(bytes) => entry
                    .insert(Context::decode(bytes.as_slice()).unwrap_or_default())
                    .clone(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read experiment context");
                    return None;
                }
            },
        };
        let latest_checkpoint_metadata_json = match &trial.row.latest_checkpoint_uuid {
            None => String::new(),
            Some(uuid) => match self.store.checkpoint_by_uuid(uuid) {
                Ok(Some(checkpoint)) => checkpoint.metadata_json,
                Ok(None) => {
                    tracing::error!(%uuid, "no record of the trial's latest checkpoint");
                    return None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the trial's latest checkpoint");
                    return None;
                }
            },
        };
        let config = &experiment.config;
        let ranks: Vec<u32> = placement
            .parts
            .iter()
            .map(|p| config.resources.processes_on(p.slot_ids.len() as u32))
            .collect();
        let world_size: u32 = ranks.iter().sum();
        let distributed = world_size > 1;
        let allocation_id = uuid::Uuid::new_v4().to_string();
        let chief_address = self
            .agents
            .get(&placement.parts[0].agent_id)
            .map(|a| a.address.clone())
            .unwrap_or_default();
        let part_count = placement.parts.len() as u32;
        let common = StartAllocation {
            trial_id: trial.row.id,
            experiment_id: experiment.row.id,
            entrypoint: config.entrypoint.clone(),
            hparams_json: trial.row.hparams_json.clone(),
            context: Some(context),
            latest_checkpoint_uuid: trial.row.latest_checkpoint_uuid.clone().unwrap_or_default(),
            latest_checkpoint_step: trial.row.latest_checkpoint_step,
            storage_json: serde_json::to_string(&config.checkpoint_storage)
                .expect("storage config serializes"),
            policy: Some(StepPolicy {
                max_length: search::target_length(experiment, &trial.row),
                min_validation_period: config.min_validation_period,
                min_checkpoint_period: config.min_checkpoint_period,
                preemption_timeout_ms: config.preemption_timeout * 1000,
            }),
            latest_checkpoint_metadata_json,
            world_size: if distributed { world_size } else { 0 },
            part_count,
            chief_address: if distributed {
                chief_address
            } else {
                String::new()
            },
            ..StartAllocation::default()
        };
        let mut rank_offset = 0;
        let mut parts = Vec::new();
        for (index, (part, local_ranks)) in placement.parts.iter().zip(&ranks).enumerate() {
            let id = if index == 0 {
                allocation_id.clone()
            } else {
                format!("{allocation_id}.{index}")
            };
            let row = AllocationRow {
                id: id.clone(),
                trial_id: trial.row.id,
                agent_id: part.agent_id.clone(),
                slot_ids: part.slot_ids.clone(),
                start_step: trial.row.latest_checkpoint_step,
                end_step: trial.row.latest_checkpoint_step,
                exit_reason: None,
                message: String::new(),
                started_ms: now_ms(),
                ended_ms: 0,
                desired: Desired::Run.stored(),
                gang: if distributed {
                    allocation_id.clone()
                } else {
                    String::new()
                },
                part_index: index as u32,
                part_count,
            };
            let start = StartAllocation {
                allocation_id: id,
                slot_ids: part.slot_ids.clone(),
                rank_offset,
                local_world_size: if distributed { *local_ranks } else { 0 },
                part_index: index as u32,
                ..common.clone()
            };
            rank_offset += local_ranks;
            parts.push(NewPart { row, start });
        }
        Some(parts)
    }
}
