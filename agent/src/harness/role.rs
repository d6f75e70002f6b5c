//! Which ranks of a trial an allocation runs, and what that allows on its harness socket.

use baton_common::proto::StartAllocation;

/// The ranks an allocation runs: all of a one-rank trial, or one agent's share of a distributed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRole {
    /// Rank of the allocation's first process (0 on the chief's agent).
    pub rank_offset: u32,
    /// Ranks in the whole trial (1: a one-rank trial).
    pub world_size: u32,
    /// Rank processes of this allocation.
    pub local_world_size: u32,
}

impl Default for RankRole {
    /// A one-rank trial.
    fn default() -> Self {
        Self {
            rank_offset: 0,
            world_size: 1,
            local_world_size: 1,
        }
    }
}

impl RankRole {
    /// The role a start request gives (a size of 0 counts as 1).
    pub fn of(start: &StartAllocation) -> Self {
        Self {
            rank_offset: start.rank_offset,
            world_size: start.world_size.max(1),
            local_world_size: start.local_world_size.max(1),
        }
    }

    /// Whether the trial has more than one rank.
    fn distributed(&self) -> bool {
        self.world_size > 1
    }

    /// The allocation's ranks, e.g. "ranks 2 to 3 of 4".
    fn ranks(&self) -> String {
        let last = self.rank_offset + self.local_world_size - 1;
        match self.local_world_size {
            1 => format!("rank {} of {}", self.rank_offset, self.world_size),
            _ => format!(
                "ranks {} to {last} of {}",
                self.rank_offset, self.world_size
            ),
        }
    }

    /// Refuses step reports where rank 0 does not run: rank 0 reports for the whole trial.
    pub(super) fn check_reports(&self, op: &str) -> Result<(), String> {
        if self.rank_offset == 0 {
            return Ok(());
        }
        Err(format!(
            "{op} refused: this allocation runs {} and only rank 0 reports steps (its harness relays the answers to the other ranks)",
            self.ranks()
        ))
    }

    /// Refuses a `checkpoint_start` without a uuid where rank 0 does not run.
    pub(super) fn check_agent_chooses(&self) -> Result<(), String> {
        if self.rank_offset == 0 {
            return Ok(());
        }
        Err(format!(
            "checkpoint_start needs \"uuid\": this allocation runs {}, which write their part of the checkpoint rank 0 opened, under its uuid",
            self.ranks()
        ))
    }

    /// Refuses a `checkpoint_start` with a uuid in a one-rank trial.
    pub(super) fn check_named_uuid(&self) -> Result<(), String> {
        if self.distributed() {
            return Ok(());
        }
        Err("checkpoint_start takes no \"uuid\" in a one-rank trial: the agent chooses it".into())
    }

    /// Refuses to open checkpoint `uuid` under a name given by the trial on the chief's agent,
    /// where only rank 0's own checkpoints (already open) may be named.
    pub(super) fn check_opens_named(&self, uuid: &str) -> Result<(), String> {
        if self.rank_offset > 0 {
            return Ok(());
        }
        Err(format!(
            "checkpoint {uuid} is not open in this allocation: rank 0's checkpoint_start takes no \"uuid\" (the agent chooses it), the other ranks pass the one rank 0 got"
        ))
    }

    /// The local rank of the trial's `rank` that ends a checkpoint (0 in a one-rank trial).
    pub(super) fn local_rank(&self, rank: Option<u32>) -> Result<u32, String> {
        if !self.distributed() {
            return Ok(0);
        }
        let Some(rank) = rank else {
            return Err(
                "checkpoint_end needs \"rank\" (the sender's BATON_RANK) in a distributed trial"
                    .into(),
            );
        };
        match rank.checked_sub(self.rank_offset) {
            Some(local) if local < self.local_world_size => Ok(local),
            _ => Err(format!(
                "rank {rank} does not run in this allocation, which runs {}",
                self.ranks()
            )),
        }
    }

    /// How many ranks end each checkpoint of this allocation.
    pub(super) fn part_ranks(&self) -> u32 {
        if self.distributed() {
            self.local_world_size
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(rank_offset: u32, world_size: u32, local_world_size: u32) -> RankRole {
        RankRole::of(&StartAllocation {
            rank_offset,
            world_size,
            local_world_size,
            ..Default::default()
        })
    }

    #[test]
    fn a_start_without_ranks_is_a_one_rank_trial() {
        assert_eq!(role(0, 0, 0), RankRole::default());
        assert_eq!(role(0, 1, 1), RankRole::default());
        assert_eq!(RankRole::default().local_rank(Some(7)), Ok(0));
        assert_eq!(RankRole::default().part_ranks(), 1);
    }

    #[test]
    fn only_rank_0_reports_and_chooses_uuids() {
        let chief = role(0, 4, 2);
        let worker = role(2, 4, 2);
        assert!(chief.check_reports("report_training").is_ok());
        assert!(chief.check_agent_chooses().is_ok());
        let error = worker.check_reports("report_validation").unwrap_err();
        assert!(
            error.starts_with("report_validation refused: this allocation runs ranks 2 to 3 of 4"),
            "{error}"
        );
        let error = role(1, 2, 1).check_agent_chooses().unwrap_err();
        assert!(error.contains("needs \"uuid\": this allocation runs rank 1 of 2"));
        assert!(worker.check_opens_named("u").is_ok());
        assert!(
            chief
                .check_opens_named("u")
                .unwrap_err()
                .contains("not open")
        );
        assert!(
            RankRole::default()
                .check_named_uuid()
                .unwrap_err()
                .contains("one-rank trial")
        );
    }

    #[test]
    fn ranks_that_end_a_checkpoint_must_run_here() {
        let worker = role(2, 4, 2);
        assert_eq!(worker.part_ranks(), 2);
        assert_eq!(worker.local_rank(Some(3)), Ok(1));
        for rank in [Some(1), Some(4)] {
            let error = worker.local_rank(rank).unwrap_err();
            assert!(error.contains("does not run in this allocation"), "{error}");
        }
        assert!(
            worker
                .local_rank(None)
                .unwrap_err()
                .contains("needs \"rank\"")
        );
    }
}
