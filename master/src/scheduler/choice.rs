//! Which agents take one trial, from free slot counts alone.

use super::PendingTrial;

/// An agent's free slots as a choice sees them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hole<'a> {
    /// Agent id.
    pub agent: &'a str,
    /// Free slots.
    pub free: usize,
    /// Whether every slot of the agent is free.
    pub whole: bool,
}

/// The agents `trial` takes and how many slots on each, chief first; `None` when it does not fit.
pub(super) fn choose<'a>(
    trial: &PendingTrial,
    holes: &[Hole<'a>],
) -> Option<Vec<(&'a str, usize)>> {
    let needed = trial.slots as usize;
    let usable: Vec<Hole<'a>> = holes
        .iter()
        .copied()
        .filter(|h| trial.avoid_agent.as_deref() != Some(h.agent))
        .collect();
    let Some(target) = trial.target_agent.as_deref() else {
        if let Some(best) = usable
            .iter()
            .filter(|h| h.free >= needed)
            .min_by_key(|h| (h.free, h.agent))
        {
            return Some(vec![(best.agent, needed)]);
        }
        return gang(needed, &usable).map(largest_first);
    };
    let chief = *usable.iter().find(|h| h.agent == target)?;
    if chief.free >= needed {
        return Some(vec![(chief.agent, needed)]);
    }
    if chief.free == 0 {
        return None;
    }
    let others: Vec<Hole<'a>> = usable.into_iter().filter(|h| h.agent != target).collect();
    let mut parts = largest_first(gang(needed - chief.free, &others)?);
    parts.insert(0, (chief.agent, chief.free));
    Some(parts)
}

/// Parts with the most slots first, then by agent id.
fn largest_first(mut parts: Vec<(&str, usize)>) -> Vec<(&str, usize)> {
    parts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    parts
}

/// `needed` slots over the fewest of `holes`: whole agents, largest first, while the rest can
/// still be covered, then the smallest hole that covers what remains (whole agents on ties).
fn gang<'a>(needed: usize, holes: &[Hole<'a>]) -> Option<Vec<(&'a str, usize)>> {
    let mut left: Vec<Hole<'a>> = holes.iter().copied().filter(|h| h.free > 0).collect();
    left.sort_by(|a, b| b.free.cmp(&a.free).then(a.agent.cmp(b.agent)));
    let mut covered = 0;
    let count = left.iter().position(|h| {
        covered += h.free;
        covered >= needed
    })? + 1;
    let mut parts = Vec::with_capacity(count);
    let mut remaining = needed;
    for picks_left in (1..=count).rev() {
        let index = if picks_left == 1 {
            left.iter()
                .enumerate()
                .filter(|(_, h)| h.free >= remaining)
                .min_by_key(|(_, h)| (h.free, !h.whole, h.agent))
                .map(|(i, _)| i)
                .expect("the largest hole covers the last part")
        } else {
            (0..left.len())
                .find(|&i| {
                    let rest: usize = left
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .take(picks_left - 1)
                        .map(|(_, o)| o.free)
                        .sum();
                    left[i].whole && left[i].free + rest >= remaining
                })
                .unwrap_or(0)
        };
        let hole = left.remove(index);
        // With the fewest agents, only the last pick may take less than all of its hole.
        let take = hole.free.min(remaining);
        parts.push((hole.agent, take));
        remaining -= take;
    }
    Some(parts)
}
