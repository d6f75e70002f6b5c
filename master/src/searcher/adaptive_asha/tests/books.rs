//! The checker's own books of a search: every action is checked against the rules as it comes,
//! from what the simulated cluster saw, without reading the searcher's state.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::{Action, Event, RequestId};
use crate::searcher::TrialHparams;

/// One result at a rung, in arrival order.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub trial: RequestId,
    /// Oriented so that smaller is better; `None` for a failure.
    pub score: Option<f64>,
}

/// What the checker knows of one trial.
#[derive(Debug, Default)]
pub struct TrialBooks {
    /// Known from its first `Train`.
    pub bracket: Option<usize>,
    /// Lengths of its `Train` actions, in order.
    pub trained: Vec<u64>,
    pub outstanding: bool,
    pub stopped: bool,
    pub exited: bool,
}

/// Books of one search.
pub struct Books {
    pub divisor: usize,
    pub smaller_is_better: bool,
    pub limit: Option<u32>,
    /// Rung lengths and trials of each bracket, from the reference plan.
    pub plan: Vec<(Vec<u64>, u32)>,
    /// The random searcher's trials for the same config.
    pub expected: Vec<TrialHparams>,
    pub trials: Vec<TrialBooks>,
    /// Results of each (bracket, rung), in arrival order.
    pub arrivals: BTreeMap<(usize, usize), Vec<Arrival>>,
    /// Trials promoted from each (bracket, rung), in order.
    pub promoted: BTreeMap<(usize, usize), Vec<RequestId>>,
    /// Steps assigned by `Train` actions, per bracket.
    pub work: Vec<u64>,
    pub shut_down: bool,
}

impl Books {
    /// Books for a search of this plan, expecting these hyperparameters.
    pub fn new(
        divisor: usize,
        smaller_is_better: bool,
        limit: Option<u32>,
        plan: Vec<(Vec<u64>, u32)>,
        expected: Vec<TrialHparams>,
    ) -> Self {
        let brackets = plan.len();
        Books {
            divisor,
            smaller_is_better,
            limit,
            plan,
            expected,
            trials: Vec::new(),
            arrivals: BTreeMap::new(),
            promoted: BTreeMap::new(),
            work: vec![0; brackets],
            shut_down: false,
        }
    }

    /// The oriented score of a reported metric.
    pub fn score(&self, metric: f64) -> Option<f64> {
        match metric {
            m if m.is_nan() => None,
            m if self.smaller_is_better => Some(m),
            m => Some(-m),
        }
    }

    /// The (bracket, rung) a trial trains for or last reported at.
    pub fn position(&self, trial: RequestId) -> (usize, usize) {
        let books = &self.trials[trial.0 as usize];
        (books.bracket.unwrap(), books.trained.len() - 1)
    }

    /// Trials with a `Train` outstanding, by request id.
    pub fn outstanding(&self) -> Vec<RequestId> {
        self.ids(|t| t.outstanding)
    }

    /// Trials created, not training, not closed.
    pub fn paused(&self) -> Vec<RequestId> {
        self.ids(|t| !t.outstanding && !t.stopped && !t.exited)
    }

    fn ids(&self, keep: impl Fn(&TrialBooks) -> bool) -> Vec<RequestId> {
        (0..self.trials.len() as u32)
            .map(RequestId)
            .filter(|id| keep(&self.trials[id.0 as usize]))
            .collect()
    }

    /// Records an event that answers the searcher (a result or an exit of a live trial).
    pub fn event(&mut self, event: &Event) {
        let (trial, score) = match *event {
            Event::ValidationReported { trial, metric, .. } => (trial, self.score(metric)),
            Event::TrialExited { trial } => (trial, None),
        };
        let training = self.trials[trial.0 as usize].outstanding;
        if training {
            let at = self.position(trial);
            self.arrivals
                .entry(at)
                .or_default()
                .push(Arrival { trial, score });
        }
        let books = &mut self.trials[trial.0 as usize];
        books.outstanding = false;
        if matches!(event, Event::TrialExited { .. }) {
            books.exited = true;
        }
    }

    /// Checks one batch of actions against the rules and records it.
    pub fn actions(&mut self, actions: &[Action]) -> Result<(), TestCaseError> {
        prop_assert!(!self.shut_down, "actions after shutdown: {:?}", actions);
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::Create {
                    request_id,
                    hparams,
                } => {
                    let next = self.trials.len();
                    prop_assert_eq!(request_id.0 as usize, next);
                    prop_assert!(next < self.expected.len(), "more than max_trials");
                    prop_assert_eq!(hparams, &self.expected[next]);
                    let follows = actions.get(i + 1);
                    let train =
                        matches!(follows, Some(Action::Train { trial, .. }) if trial == request_id);
                    prop_assert!(train, "a Create without its Train: {:?}", actions);
                    self.trials.push(TrialBooks::default());
                }
                Action::Train {
                    trial,
                    until_length,
                } => self.train(*trial, *until_length)?,
                Action::Stop { trial } => {
                    let books = self.trials.get_mut(trial.0 as usize);
                    prop_assert!(books.is_some(), "stop of unknown {:?}", trial);
                    let books = books.unwrap();
                    prop_assert!(!books.outstanding && !books.stopped && !books.exited);
                    books.stopped = true;
                }
                Action::Shutdown => {
                    prop_assert_eq!(i + 1, actions.len(), "Shutdown is not last");
                    prop_assert_eq!(self.trials.len(), self.expected.len());
                    let open = self.ids(|t| t.outstanding || !(t.stopped || t.exited));
                    prop_assert!(open.is_empty(), "open at shutdown: {:?}", open);
                    self.shut_down = true;
                }
            }
        }
        let active = self.outstanding().len() as u32;
        prop_assert!(self.limit.is_none_or(|limit| active <= limit));
        Ok(())
    }

    fn train(&mut self, trial: RequestId, until: u64) -> Result<(), TestCaseError> {
        let books = self.trials.get(trial.0 as usize);
        prop_assert!(books.is_some(), "train of unknown {:?}", trial);
        let books = books.unwrap();
        prop_assert!(!books.outstanding && !books.stopped && !books.exited);
        let (bracket, from) = match books.trained.last() {
            None => {
                let bracket = self
                    .plan
                    .iter()
                    .position(|(lengths, _)| lengths[0] == until);
                prop_assert!(bracket.is_some(), "no bracket starts at {}", until);
                let bracket = bracket.unwrap();
                let created = self.ids(|t| t.bracket == Some(bracket)).len() as u32;
                prop_assert!(created < self.plan[bracket].1, "bracket {} over", bracket);
                (bracket, 0)
            }
            Some(&last) => {
                let (bracket, rung) = self.position(trial);
                let lengths = &self.plan[bracket].0;
                prop_assert_eq!(lengths.get(rung + 1), Some(&until), "not the next rung");
                self.check_promotion(trial, bracket, rung)?;
                (bracket, last)
            }
        };
        let books = &mut self.trials[trial.0 as usize];
        books.bracket = Some(bracket);
        books.trained.push(until);
        books.outstanding = true;
        self.work[bracket] += until - from;
        Ok(())
    }

    /// A promotion from a rung only for a trial with a result among its top ⌊n/divisor⌋ now.
    fn check_promotion(
        &mut self,
        trial: RequestId,
        bracket: usize,
        rung: usize,
    ) -> Result<(), TestCaseError> {
        let arrivals = self
            .arrivals
            .get(&(bracket, rung))
            .cloned()
            .unwrap_or_default();
        let mut ranked: Vec<(usize, Arrival)> = arrivals.into_iter().enumerate().collect();
        ranked.sort_by(|(i, a), (j, b)| match (a.score, b.score) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap().then(i.cmp(j)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => i.cmp(j),
        });
        let top = ranked.len() / self.divisor;
        let rank = ranked.iter().position(|(_, a)| a.trial == trial);
        prop_assert!(
            rank.is_some_and(|r| r < top),
            "{:?} not in the top {}",
            trial,
            top
        );
        let score = ranked[rank.unwrap()].1.score;
        prop_assert!(score.is_some(), "a failure was promoted");
        let promoted = self.promoted.entry((bracket, rung)).or_default();
        prop_assert!(!promoted.contains(&trial), "promoted twice");
        promoted.push(trial);
        Ok(())
    }
}
