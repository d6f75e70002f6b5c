//! The events an adaptive search (`adaptive_asha`) was fed, in order: a restarted master rebuilds
//! the search by feeding them again.

use super::value::params;
use super::{Store, StoreError, StoreResult};
use crate::searcher::adaptive_asha::{Event, RequestId};

impl Store {
    /// Records event number `seq` (0, 1, 2…) of an experiment's search.
    pub fn insert_searcher_event(
        &self,
        experiment_id: u64,
        seq: u64,
        event: &Event,
    ) -> StoreResult<()> {
        let (kind, trial, length, metric) = match event {
            Event::ValidationReported {
                trial,
                length,
                metric,
            } => ("validation", trial, *length, metric.to_string()),
            Event::TrialExited { trial } => ("exited", trial, 0, String::new()),
        };
        self.execute(
            "INSERT INTO searcher_events (experiment_id, seq, kind, request_id, length, metric) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![experiment_id, seq, kind, trial.0, length, metric.as_str()],
        )?;
        Ok(())
    }

    /// The events of an experiment's search, in the order they were fed.
    pub fn searcher_events(&self, experiment_id: u64) -> StoreResult<Vec<Event>> {
        self.query(
            "SELECT kind, request_id, length, metric FROM searcher_events WHERE experiment_id = ?1 ORDER BY seq",
            params![experiment_id],
            |row| {
                let kind: String = row.get(0)?;
                let trial = RequestId(row.get(1)?);
                match kind.as_str() {
                    "validation" => {
                        let text: String = row.get(3)?;
                        // Rust prints and parses every f64 exactly, NaN included.
                        let metric = text.parse().map_err(|e| StoreError::Invalid {
                            column: 3,
                            message: format!("metric {text:?}: {e}"),
                        })?;
                        Ok(Event::ValidationReported {
                            trial,
                            length: row.get(2)?,
                            metric,
                        })
                    }
                    "exited" => Ok(Event::TrialExited { trial }),
                    other => Err(StoreError::Invalid {
                        column: 0,
                        message: format!(
                            "unknown searcher event kind {other:?} (expected validation or exited)"
                        ),
                    }),
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_both_backends;

    on_both_backends! {
        fn searcher_events_come_back_in_order_with_exact_metrics(store, database) {
            let experiment = store.insert_experiment("e", "yaml", b"", 0).unwrap();
            let events = [
                Event::ValidationReported { trial: RequestId(3), length: 4, metric: 0.1 + 0.2 },
                Event::TrialExited { trial: RequestId(0) },
                Event::ValidationReported { trial: RequestId(1), length: 16, metric: f64::NAN },
                Event::ValidationReported { trial: RequestId(2), length: 4, metric: -1e-300 },
            ];
            for (seq, event) in events.iter().enumerate() {
                store.insert_searcher_event(experiment, seq as u64, event).unwrap();
            }
            let read = store.searcher_events(experiment).unwrap();
            assert_eq!(read.len(), 4);
            assert_eq!(read[0], events[0]);
            assert_eq!(read[1], events[1]);
            assert!(matches!(read[2], Event::ValidationReported { length: 16, metric, .. } if metric.is_nan()));
            assert_eq!(read[3], events[3]);
            assert!(store.insert_searcher_event(experiment, 1, &events[1]).is_err(), "a sequence number is used once");
            assert!(store.searcher_events(experiment + 1).unwrap().is_empty());
        }
    }
}
