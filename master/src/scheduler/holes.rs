//! The free slots a placement pass may still use, kept up to date as trials take them, with an
//! index by size for the tightest single-agent fit.

use std::collections::{BTreeMap, BTreeSet};

use super::PendingTrial;
use super::choice::{Hole, choose};

/// Free slots per agent: (free slot ids, total slots), by agent id.
pub(super) type FreeSlots<'a> = BTreeMap<&'a str, (Vec<String>, usize)>;

/// The holes of the agents a pass may use, by agent id, and their (free, agent) in order.
pub(super) struct Holes<'a> {
    list: Vec<Hole<'a>>,
    by_size: BTreeSet<(usize, &'a str)>,
}

impl<'a> Holes<'a> {
    /// The holes of the agents of `free` that `usable` accepts.
    pub(super) fn new(free: &FreeSlots<'a>, usable: impl Fn(&str) -> bool) -> Self {
        let list: Vec<Hole<'a>> = free
            .iter()
            .filter(|(agent, _)| usable(agent))
            .map(|(agent, (slots, total))| hole(agent, slots.len(), *total))
            .collect();
        let by_size = list.iter().map(|h| (h.free, h.agent)).collect();
        Self { list, by_size }
    }

    /// What [`choose`] decides for `trial` on these holes; a trial with no agent to go to or to
    /// avoid takes the smallest hole that fits it (ties by agent id) from the index.
    pub(super) fn choose(&self, trial: &PendingTrial) -> Option<Vec<(&'a str, usize)>> {
        if trial.target_agent.is_none() && trial.avoid_agent.is_none() {
            let needed = trial.slots as usize;
            if let Some((_, agent)) = self.by_size.range((needed, "")..).next() {
                return Some(vec![(*agent, needed)]);
            }
        }
        choose(trial, &self.list)
    }

    /// Notes that `agent` has `free` of its `total` slots left.
    pub(super) fn update(&mut self, agent: &'a str, free: usize, total: usize) {
        let Ok(index) = self.list.binary_search_by(|h| h.agent.cmp(agent)) else {
            return;
        };
        self.by_size.remove(&(self.list[index].free, agent));
        self.by_size.insert((free, agent));
        self.list[index] = hole(agent, free, total);
    }
}

fn hole(agent: &str, free: usize, total: usize) -> Hole<'_> {
    Hole {
        agent,
        free,
        whole: free >= total,
    }
}
