//! `adaptive_asha`: asynchronous successive halving (ASHA) over several brackets, as a pure state
//! machine: events in ([`AdaptiveAsha::on_event`]), actions out; no I/O, no clock.
//!
//! **Plan** (as Determined plans it). `R` is `max_rungs`, lowered until `divisor^(R-1)` is at
//! most `max_length` (the shortest rung is then at least one step and all rung lengths differ)
//! and at most `max_trials` (the most aggressive bracket can fill its top rung). Brackets by
//! `mode`, most aggressive first, bracket `b` having `R - b` rungs: `aggressive` has one bracket,
//! `standard` has `R/2 + 1` rounded down (3 with the default `max_rungs` of 5), `conservative`
//! has `R`. Rung `k` of a bracket of `r` rungs is `max_length / divisor^(r-1-k)` steps, rounded
//! half up, so the top rung is `max_length`. Trials are shared among brackets in proportion to
//! `divisor^(r-1) / r`, floored, at least one each, the rest to the first bracket: a bracket of
//! `r` rungs and `n` trials that halves like synchronous SH trains about
//! `r · n · max_length / divisor^(r-1)` steps, so every bracket gets about the same budget.
//! Trial `i` (request id `i`, in creation order) gets the `i`-th sample of the `random` searcher
//! with the same seed.
//!
//! **Promotions.** A trial trains to its bracket's first rung, validates, checkpoints and
//! pauses. At any moment the top ⌊n / divisor⌋ results of a rung are eligible (n: results so
//! far; a failure counts in n and ranks last; ties go to the earlier result); an eligible paused
//! trial not yet promoted from that rung is promoted: it resumes from its checkpoint and trains
//! to the next rung's length. A trial that exits while training (an error past its restarts, a
//! kill) adds a failure at the rung it was training for; one that exits while paused keeps its
//! result but is never promoted; a NaN metric is a failure, and its trial is stopped at once. A
//! paused trial is stopped as soon as it can never be eligible: its rank is at least
//! ⌊(n + m) / divisor⌋, where `m` bounds the results still to come at its rung (trials not
//! created yet, training for that rung or below, paused below), so at the latest when its rung
//! is complete. A trial that reports at the top rung is stopped there.
//!
//! **Concurrency.** Trials with a `Train` outstanding are active. While fewer than
//! `max_concurrent_trials` are active (any number when it is 0), a free slot goes to a promotion
//! first (the longest rung first, then the first bracket, then the best rank), otherwise to a
//! new trial of the bracket that has created the smallest share of its trials (the first on
//! ties). Unlike Determined, the limit is one for the whole searcher, never rounded up to the
//! number of brackets. When every trial is created and none is active, the experiment is shut
//! down.
//!
//! **Persistence: deterministic replay.** The state is a function of the config and the events
//! fed so far. The master keeps the events in order and, after a restart, rebuilds the searcher
//! with [`AdaptiveAsha::new`] and feeds them again: it gets the same actions again (request ids
//! are stable) and applies them idempotently. An event that does not fit the state (unknown
//! trial, a length other than the one asked for, a repeat, anything after shutdown) changes
//! nothing and gives no actions. Each event costs time linear in the number of trials.

mod plan;
mod rung;
mod view;

use std::collections::VecDeque;

use baton_common::config::ExperimentConfig;

use super::{SearcherError, TrialHparams, random, validate};
use plan::{BracketPlan, plan};
use rung::Rung;
pub use view::{BracketView, RungResult, RungView, Stage, TrialStatus};

/// The searcher's name for a trial: 0, 1, 2… in creation order; the master maps it to its trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u32);

/// What happened to a trial, as the master tells the searcher.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The trial validated after `length` steps; `metric` is its searcher metric.
    ValidationReported {
        /// The trial.
        trial: RequestId,
        /// Steps trained.
        length: u64,
        /// Value of `searcher.metric`.
        metric: f64,
    },
    /// The trial ended for good (errored past its restarts, killed): it can never train again.
    TrialExited {
        /// The trial.
        trial: RequestId,
    },
}

/// What the searcher asks of the master, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a trial with these hyperparameters; a `Train` for it follows.
    Create {
        /// The searcher's name for the new trial.
        request_id: RequestId,
        /// Its hyperparameters.
        hparams: TrialHparams,
    },
    /// Run or resume the trial until `until_length` steps, then validate, checkpoint and pause.
    Train {
        /// The trial.
        trial: RequestId,
        /// Steps it has trained when it validates.
        until_length: u64,
    },
    /// Close the paused trial: it trains no more (one at `max_length` is complete).
    Stop {
        /// The trial.
        trial: RequestId,
    },
    /// Every trial is done: the experiment is complete.
    Shutdown,
}

/// The state of an `adaptive_asha` search.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveAsha {
    smaller_is_better: bool,
    divisor: usize,
    /// Most active trials; `None` for no limit.
    limit: Option<u32>,
    brackets: Vec<Bracket>,
    /// Every trial created, by request id.
    trials: Vec<Trial>,
    /// Hyperparameters of the trials still to create, in order.
    samples: VecDeque<TrialHparams>,
    /// Trials with a `Train` outstanding.
    active: u32,
    shut_down: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Bracket {
    /// Rung lengths, ascending; the last is `max_length`.
    lengths: Vec<u64>,
    /// Trials this bracket creates.
    quota: u32,
    created: u32,
    rungs: Vec<Rung>,
    /// Trials training for each rung.
    training: Vec<u32>,
    /// Trials paused at each rung, not promoted from it.
    paused: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trial {
    bracket: usize,
    /// The rung it trains for, or has reported at.
    rung: usize,
    state: TrialState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrialState {
    Training,
    Paused,
    Closed,
}

impl Bracket {
    fn new(plan: BracketPlan) -> Self {
        let rungs = plan.lengths.len();
        Bracket {
            lengths: plan.lengths,
            quota: plan.trials,
            created: 0,
            rungs: vec![Rung::default(); rungs],
            training: vec![0; rungs],
            paused: vec![0; rungs],
        }
    }
}

impl AdaptiveAsha {
    /// A search for `config`, its `searcher` section read as `adaptive_asha`'s, and its first
    /// actions.
    pub fn new(config: &ExperimentConfig) -> Result<(Self, Vec<Action>), SearcherError> {
        validate(config)?;
        let samples = random(config)?;
        let searcher = &config.searcher;
        let plan = plan(
            searcher.mode(),
            searcher.max_rungs(),
            searcher.divisor(),
            searcher.max_length,
            samples.len() as u32,
        );
        let mut asha = AdaptiveAsha {
            smaller_is_better: searcher.smaller_is_better,
            divisor: searcher.divisor() as usize,
            limit: searcher.concurrency_limit(),
            brackets: plan.into_iter().map(Bracket::new).collect(),
            trials: Vec::new(),
            samples: samples.into(),
            active: 0,
            shut_down: false,
        };
        let mut actions = Vec::new();
        asha.fill(&mut actions);
        Ok((asha, actions))
    }

    /// Applies one event and returns what to do next.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.shut_down {
            return actions;
        }
        let bracket = match event {
            Event::ValidationReported {
                trial,
                length,
                metric,
            } => self.reported(trial, length, metric, &mut actions),
            Event::TrialExited { trial } => self.exited(trial),
        };
        let Some(bracket) = bracket else {
            return actions;
        };
        self.stop_hopeless(bracket, &mut actions);
        self.fill(&mut actions);
        if self.active == 0 && self.brackets.iter().all(|b| b.created == b.quota) {
            self.shut_down = true;
            actions.push(Action::Shutdown);
        }
        actions
    }

    /// Records a result at the rung the trial trains for; returns its bracket if it fit.
    fn reported(
        &mut self,
        id: RequestId,
        length: u64,
        metric: f64,
        actions: &mut Vec<Action>,
    ) -> Option<usize> {
        let trial = self.trials.get_mut(id.0 as usize)?;
        let bracket = &mut self.brackets[trial.bracket];
        if trial.state != TrialState::Training || bracket.lengths[trial.rung] != length {
            return None;
        }
        let score = match metric {
            m if m.is_nan() => None,
            m if self.smaller_is_better => Some(m),
            m => Some(-m),
        };
        bracket.rungs[trial.rung].record(id, score);
        bracket.training[trial.rung] -= 1;
        self.active -= 1;
        // A trial at the top rung is done; one with a NaN metric can never be promoted.
        if trial.rung + 1 == bracket.lengths.len() || score.is_none() {
            trial.state = TrialState::Closed;
            actions.push(Action::Stop { trial: id });
        } else {
            trial.state = TrialState::Paused;
            bracket.paused[trial.rung] += 1;
        }
        Some(trial.bracket)
    }

    /// Closes a trial that ended by itself; returns its bracket if it was not closed already.
    fn exited(&mut self, id: RequestId) -> Option<usize> {
        let trial = self.trials.get_mut(id.0 as usize)?;
        let bracket = &mut self.brackets[trial.bracket];
        match trial.state {
            TrialState::Training => {
                bracket.rungs[trial.rung].record(id, None);
                bracket.training[trial.rung] -= 1;
                self.active -= 1;
            }
            TrialState::Paused => bracket.paused[trial.rung] -= 1,
            TrialState::Closed => return None,
        }
        trial.state = TrialState::Closed;
        Some(trial.bracket)
    }

    /// Stops the paused trials of bracket `b` that can never be eligible, lowest rung first.
    fn stop_hopeless(&mut self, b: usize, actions: &mut Vec<Action>) {
        let bracket = &mut self.brackets[b];
        // Results that may still come to the current rung from below it.
        let mut below = (bracket.quota - bracket.created) as usize;
        for r in 0..bracket.lengths.len() - 1 {
            let to_come = below + bracket.training[r] as usize;
            let ranked = bracket.rungs[r].ranked();
            let cutoff = ((ranked.len() + to_come) / self.divisor).min(ranked.len());
            for entry in &ranked[cutoff..] {
                let trial = &mut self.trials[entry.trial.0 as usize];
                if trial.state == TrialState::Paused && trial.rung == r {
                    trial.state = TrialState::Closed;
                    bracket.paused[r] -= 1;
                    actions.push(Action::Stop { trial: entry.trial });
                }
            }
            below += (bracket.training[r] + bracket.paused[r]) as usize;
        }
    }

    /// Gives free slots to promotions first, then to new trials.
    fn fill(&mut self, actions: &mut Vec<Action>) {
        while self.limit.is_none_or(|limit| self.active < limit) {
            if let Some((b, r, rank)) = self.next_promotion() {
                self.promote(b, r, rank, actions);
            } else if let Some(b) = self.next_creation() {
                self.create(b, actions);
            } else {
                break;
            }
        }
    }

    /// The eligible paused result to promote next as (bracket, rung, rank): the longest rung
    /// first, then the first bracket, then the best rank.
    fn next_promotion(&self) -> Option<(usize, usize, usize)> {
        let mut best: Option<(u64, usize, usize, usize)> = None;
        for (b, bracket) in self.brackets.iter().enumerate() {
            for r in (0..bracket.lengths.len() - 1).rev() {
                if bracket.paused[r] == 0 {
                    continue;
                }
                let ranked = bracket.rungs[r].ranked();
                let eligible = &ranked[..ranked.len() / self.divisor];
                // A paused trial still at this rung has a result there, never a failure.
                let found = eligible.iter().position(|e| {
                    let trial = self.trials[e.trial.0 as usize];
                    trial.state == TrialState::Paused && trial.rung == r
                });
                if let Some(rank) = found {
                    let length = bracket.lengths[r];
                    if best.is_none_or(|(longest, ..)| length > longest) {
                        best = Some((length, b, r, rank));
                    }
                    break;
                }
            }
        }
        best.map(|(_, b, r, rank)| (b, r, rank))
    }

    fn promote(&mut self, b: usize, r: usize, rank: usize, actions: &mut Vec<Action>) {
        let bracket = &mut self.brackets[b];
        let id = bracket.rungs[r].ranked()[rank].trial;
        bracket.paused[r] -= 1;
        bracket.training[r + 1] += 1;
        self.trials[id.0 as usize] = Trial {
            bracket: b,
            rung: r + 1,
            state: TrialState::Training,
        };
        self.active += 1;
        actions.push(Action::Train {
            trial: id,
            until_length: bracket.lengths[r + 1],
        });
    }

    /// The bracket that creates the next trial: the smallest share of its trials created so
    /// far, the first on ties.
    fn next_creation(&self) -> Option<usize> {
        let share = |b: &Bracket| (u64::from(b.created), u64::from(b.quota));
        self.brackets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.created < b.quota)
            .min_by(|(_, x), (_, y)| {
                let ((xc, xq), (yc, yq)) = (share(x), share(y));
                (xc * yq).cmp(&(yc * xq))
            })
            .map(|(b, _)| b)
    }

    fn create(&mut self, b: usize, actions: &mut Vec<Action>) {
        let request_id = RequestId(self.trials.len() as u32);
        let hparams = self
            .samples
            .pop_front()
            .expect("the brackets' trials add up to max_trials samples");
        let bracket = &mut self.brackets[b];
        bracket.created += 1;
        bracket.training[0] += 1;
        self.trials.push(Trial {
            bracket: b,
            rung: 0,
            state: TrialState::Training,
        });
        self.active += 1;
        actions.push(Action::Create {
            request_id,
            hparams,
        });
        actions.push(Action::Train {
            trial: request_id,
            until_length: bracket.lengths[0],
        });
    }
}

#[cfg(test)]
mod tests;
