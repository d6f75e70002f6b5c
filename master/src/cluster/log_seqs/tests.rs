use baton_common::proto::agent_message::Body;
use baton_common::proto::{AgentMessage, LogLine, LogLines};

use super::super::replay::AgentReplay;

/// Lines `first..=last` of `stream_id` from the first live allocation, each line its number.
fn numbered(stream_id: &str, first: u64, last: u64) -> AgentMessage {
    AgentMessage {
        body: Some(Body::Logs(LogLines {
            allocation_id: "#0".into(),
            lines: (first..=last)
                .map(|n| LogLine {
                    stream: "stdout".into(),
                    text: format!("{stream_id}:{n}"),
                    timestamp_ms: 1,
                })
                .collect(),
            stream_id: stream_id.into(),
            first_seq: first,
        })),
    }
}

/// The stored lines of the first live allocation's trial.
fn stored(replay: &mut AgentReplay) -> Vec<String> {
    let cluster = replay.cluster_mut();
    let mut ids: Vec<&String> = cluster.allocations.keys().collect();
    ids.sort();
    let trial_id = cluster.allocations[ids[0]].row.trial_id;
    let rows = cluster.store.logs_of_trial(trial_id).unwrap();
    rows.into_iter().map(|row| row.text).collect()
}

fn texts(stream_id: &str, first: u64, last: u64) -> Vec<String> {
    (first..=last).map(|n| format!("{stream_id}:{n}")).collect()
}

#[tokio::test]
async fn a_replayed_message_is_dropped_and_an_overlapping_one_stores_only_new_lines() {
    let mut replay = AgentReplay::new();
    replay.feed(numbered("s", 1, 3)).unwrap();
    replay.feed(numbered("s", 1, 3)).unwrap();
    assert_eq!(stored(&mut replay), texts("s", 1, 3));
    replay.feed(numbered("s", 2, 5)).unwrap();
    assert_eq!(stored(&mut replay), texts("s", 1, 5));
    replay.feed(numbered("s", 4, 5)).unwrap();
    assert_eq!(stored(&mut replay), texts("s", 1, 5));
}

#[tokio::test]
async fn a_new_stream_is_stored_from_its_first_line_and_unnumbered_lines_always() {
    let mut replay = AgentReplay::new();
    replay.feed(numbered("old", 1, 4)).unwrap();
    replay.feed(numbered("new", 1, 2)).unwrap();
    let unnumbered = numbered("", 0, 0);
    replay.feed(unnumbered.clone()).unwrap();
    replay.feed(unnumbered).unwrap();
    replay.feed(numbered("old", 3, 5)).unwrap();
    let mut expected = texts("old", 1, 4);
    expected.extend(texts("new", 1, 2));
    expected.extend([":0".to_string(), ":0".to_string(), "old:5".to_string()]);
    assert_eq!(stored(&mut replay), expected);
}

#[tokio::test]
async fn what_is_stored_is_read_back_after_a_master_start() {
    let mut replay = AgentReplay::new();
    replay.feed(numbered("s", 1, 3)).unwrap();
    // A master that loads the allocation starts without its numbers in memory.
    for live in replay.cluster_mut().allocations.values_mut() {
        live.log_seqs = None;
    }
    replay.feed(numbered("s", 1, 3)).unwrap();
    replay.feed(numbered("s", 3, 4)).unwrap();
    assert_eq!(stored(&mut replay), texts("s", 1, 4));
}
