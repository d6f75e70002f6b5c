//! A simulated cluster: it answers the searcher's `Train` actions in a random order with
//! validations or failures, kills paused trials, sends stale and repeated events, and keeps
//! [`Books`] of everything.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::{Action, AdaptiveAsha, Event, RequestId};
use super::books::Books;
use super::reference;
use baton_common::config::ExperimentConfig;

/// Where metrics come from.
#[derive(Debug, Clone, Copy)]
pub enum Metrics {
    /// Random values with frequent ties and an occasional NaN.
    Random,
    /// Each result at a rung is worse than every earlier one there.
    ArrivalOrdered,
}

/// How the simulated cluster behaves, in percent per answer.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub metrics: Metrics,
    /// A training trial fails instead of validating.
    pub fail: u32,
    /// A paused trial is killed before the next answer.
    pub kill_paused: u32,
    /// A stale or repeated event is sent before the next answer.
    pub noise: u32,
}

/// Everything a simulated search did.
pub struct Run {
    /// Every event fed, noise included.
    pub events: Vec<Event>,
    /// The actions of `new`, then of each event.
    pub batches: Vec<Vec<Action>>,
    pub state: AdaptiveAsha,
    pub books: Books,
}

/// Runs a search to its end, answering every `Train`, checking every action as it comes.
pub fn run(
    config: &ExperimentConfig,
    behaviour: Behaviour,
    seed: u64,
) -> Result<Run, TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (state, first) = AdaptiveAsha::new(config).unwrap();
    let mut books = reference::books(config);
    books.actions(&first)?;
    let mut run = Run {
        events: Vec::new(),
        batches: vec![first],
        state,
        books,
    };
    loop {
        let outstanding = run.books.outstanding();
        if outstanding.is_empty() {
            break;
        }
        if rng.random_range(0..100) < behaviour.noise {
            let event = noise(&run.books, &trained(&run.batches), &mut rng);
            run.feed(event, false)?;
        }
        let paused = run.books.paused();
        if !paused.is_empty() && rng.random_range(0..100) < behaviour.kill_paused {
            let trial = paused[rng.random_range(0..paused.len())];
            run.feed(Event::TrialExited { trial }, true)?;
        }
        let trial = outstanding[rng.random_range(0..outstanding.len())];
        let event = if rng.random_range(0..100) < behaviour.fail {
            Event::TrialExited { trial }
        } else {
            let length = *run.books.trials[trial.0 as usize].trained.last().unwrap();
            let metric = metric(&run.books, trial, behaviour.metrics, &mut rng);
            Event::ValidationReported {
                trial,
                length,
                metric,
            }
        };
        run.feed(event, true)?;
    }
    prop_assert!(run.books.shut_down, "every Train answered but no Shutdown");
    // Nothing moves after shutdown.
    let late = noise(&run.books, &trained(&run.batches), &mut rng);
    run.feed(late, false)?;
    Ok(run)
}

impl Run {
    /// Feeds one event; `real` ones answer the searcher, the others must change nothing.
    fn feed(&mut self, event: Event, real: bool) -> Result<(), TestCaseError> {
        if real {
            self.books.event(&event);
        }
        let before = (!real || self.books.shut_down).then(|| self.state.clone());
        let actions = self.state.on_event(event.clone());
        self.events.push(event);
        self.batches.push(actions.clone());
        match before {
            Some(before) => {
                prop_assert!(actions.is_empty(), "an ignored event gave {:?}", actions);
                prop_assert!(self.state == before, "an ignored event changed the state");
                Ok(())
            }
            None => self.books.actions(&actions),
        }
    }
}

/// Every `Train` so far as (trial, length), to aim stale events at.
fn trained(batches: &[Vec<Action>]) -> Vec<(RequestId, u64)> {
    batches
        .iter()
        .flatten()
        .filter_map(|a| match a {
            Action::Train {
                trial,
                until_length,
            } => Some((*trial, *until_length)),
            _ => None,
        })
        .collect()
}

/// An event the searcher must ignore: an old validation again, an exit of a closed trial, an
/// unknown trial, a length that was not asked for.
fn noise(books: &Books, trained: &[(RequestId, u64)], rng: &mut ChaCha8Rng) -> Event {
    let unknown = RequestId(books.trials.len() as u32 + rng.random_range(0..3));
    let closed: Vec<RequestId> = (0..books.trials.len() as u32)
        .map(RequestId)
        .filter(|id| {
            let t = &books.trials[id.0 as usize];
            t.stopped || t.exited
        })
        .collect();
    match rng.random_range(0..4) {
        0 if !trained.is_empty() => {
            // A validation at a length already reported (or, when outstanding, a wrong one).
            let (trial, length) = trained[rng.random_range(0..trained.len())];
            let outstanding = books.trials[trial.0 as usize].outstanding;
            let last = *books.trials[trial.0 as usize].trained.last().unwrap();
            let length = if outstanding && length == last {
                length + 1
            } else {
                length
            };
            Event::ValidationReported {
                trial,
                length,
                metric: -1e9,
            }
        }
        1 if !closed.is_empty() => Event::TrialExited {
            trial: closed[rng.random_range(0..closed.len())],
        },
        2 => Event::TrialExited { trial: unknown },
        _ => Event::ValidationReported {
            trial: unknown,
            length: 1,
            metric: 0.0,
        },
    }
}

/// The metric a trial reports at the rung it trains for.
fn metric(books: &Books, trial: RequestId, metrics: Metrics, rng: &mut ChaCha8Rng) -> f64 {
    match metrics {
        Metrics::Random => match rng.random_range(0..20) {
            0 => f64::NAN,
            1..10 => f64::from(rng.random_range(0..6u32)) * 0.25,
            _ => rng.random::<f64>() * 10.0 - 5.0,
        },
        Metrics::ArrivalOrdered => {
            let at = books.position(trial);
            let worse = books.arrivals.get(&at).map_or(0, Vec::len) as f64;
            if books.smaller_is_better {
                worse
            } else {
                -worse
            }
        }
    }
}
