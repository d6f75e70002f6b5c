use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const DEADLINES: Deadlines = Deadlines {
    resend_interval: Duration::from_secs(2),
    stop_grace: Duration::from_secs(30),
    start_timeout: Duration::from_secs(600),
};

fn view(desired: Desired, t0: Instant) -> TickView {
    TickView {
        desired,
        desired_since: t0,
        last_sent: Some(t0),
        connected: true,
        started: true,
        created: t0,
        preemption_timeout: Duration::from_secs(60),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_running_allocation_needs_nothing() {
    let t0 = Instant::now();
    let v = view(Desired::Run, t0);
    assert_eq!(on_tick(&v, t0 + secs(3600), &DEADLINES), TickAction::Wait);
}

#[test]
fn a_suspend_is_resent_each_interval_while_connected() {
    let t0 = Instant::now();
    let mut v = view(Desired::Suspend(StopReason::Moved), t0);
    assert_eq!(on_tick(&v, t0 + secs(1), &DEADLINES), TickAction::Wait);
    assert_eq!(on_tick(&v, t0 + secs(2), &DEADLINES), TickAction::Resend);
    v.connected = false;
    assert_eq!(on_tick(&v, t0 + secs(5), &DEADLINES), TickAction::Wait);
    v.connected = true;
    v.last_sent = None;
    assert_eq!(on_tick(&v, t0, &DEADLINES), TickAction::Resend);
}

#[test]
fn a_suspend_past_its_timeout_and_grace_escalates_to_a_kill_even_when_disconnected() {
    let t0 = Instant::now();
    let mut v = view(Desired::Suspend(StopReason::Preempted), t0);
    v.connected = false;
    assert_eq!(on_tick(&v, t0 + secs(90), &DEADLINES), TickAction::Wait);
    assert_eq!(
        on_tick(&v, t0 + secs(91), &DEADLINES),
        TickAction::Escalate(KillReason::SuspendTimeout(StopReason::Preempted))
    );
}

#[test]
fn an_allocation_that_never_starts_is_killed_after_the_start_timeout() {
    let t0 = Instant::now();
    let mut v = view(Desired::Run, t0);
    v.started = false;
    assert_eq!(on_tick(&v, t0 + secs(600), &DEADLINES), TickAction::Wait);
    assert_eq!(
        on_tick(&v, t0 + secs(601), &DEADLINES),
        TickAction::Escalate(KillReason::StartTimeout)
    );
}

#[test]
fn a_kill_is_resent_until_done_and_never_escalates() {
    let t0 = Instant::now();
    let v = view(Desired::Kill(KillReason::Canceled), t0);
    assert_eq!(on_tick(&v, t0 + secs(7200), &DEADLINES), TickAction::Resend);
}

#[test]
fn a_kill_overrides_a_suspend_and_nothing_overrides_a_kill() {
    let moved = Desired::Suspend(StopReason::Moved);
    let paused = Desired::Suspend(StopReason::Paused);
    let cancel = Desired::Kill(KillReason::Canceled);
    assert_eq!(Desired::Run.then(moved), Some(moved));
    assert_eq!(Desired::Run.then(cancel), Some(cancel));
    assert_eq!(moved.then(paused), None, "the first suspend's reason stays");
    assert_eq!(moved.then(cancel), Some(cancel));
    assert_eq!(cancel.then(moved), None);
    assert_eq!(cancel.then(Desired::Kill(KillReason::StartTimeout)), None);
    assert_eq!(
        moved.then(Desired::Run),
        None,
        "nothing goes back to running"
    );
}

#[test]
fn stored_desired_states_round_trip_and_unknown_ones_are_errors() {
    let all = [
        Desired::Run,
        Desired::Suspend(StopReason::Disabled),
        Desired::Suspend(StopReason::Preempted),
        Desired::Suspend(StopReason::Paused),
        Desired::Suspend(StopReason::Moved),
        Desired::Kill(KillReason::Canceled),
        Desired::Kill(KillReason::StartTimeout),
        Desired::Kill(KillReason::SuspendTimeout(StopReason::Moved)),
    ];
    for desired in all {
        assert_eq!(Desired::parse_stored(&desired.stored()), Ok(desired));
    }
    for bad in [
        "",
        "Run",
        "suspend:",
        "suspend:bored",
        "kill:",
        "kill:suspend-timeout:x",
    ] {
        let error = Desired::parse_stored(bad).unwrap_err();
        assert!(error.contains(&format!("{bad:?}")), "{error}");
    }
}

fn sent(session: u64, seq: u64) -> Option<SentAt> {
    Some(SentAt { session, seq })
}

#[test]
fn a_hello_fences_the_unexpected_and_loses_the_missing() {
    let expected = [
        Expected {
            id: "a",
            start: sent(1, 3),
        },
        Expected {
            id: "b",
            start: None,
        },
        Expected {
            id: "c",
            start: sent(1, 4),
        },
    ];
    let heal = compare(&expected, &["a", "z"], 2, None);
    assert_eq!(heal.fence, vec!["z"]);
    assert_eq!(heal.lost, vec!["b", "c"]);
}

#[test]
fn a_heartbeat_does_not_lose_a_start_the_agent_has_not_handled_yet() {
    let expected = [Expected {
        id: "a",
        start: sent(5, 7),
    }];
    assert_eq!(compare(&expected, &[], 5, Some(6)), Heal::default());
    assert_eq!(compare(&expected, &[], 5, Some(7)).lost, vec!["a"]);
    assert_eq!(compare(&expected, &["a"], 5, Some(9)), Heal::default());
}

proptest! {
    #[test]
    fn compare_partitions_the_difference(
        expected in proptest::collection::btree_map(0u8..12, (0u64..3, 0u64..20, any::<bool>()), 0..8),
        reported in proptest::collection::btree_set(0u8..12, 0..8),
        session in 0u64..3,
        received in proptest::option::of(0u64..20),
    ) {
        let ids: Vec<String> = (0..12).map(|i| format!("alloc-{i}")).collect();
        let expected: Vec<Expected<'_>> = expected
            .iter()
            .map(|(i, (s, q, some))| Expected {
                id: &ids[*i as usize],
                start: some.then_some(SentAt { session: *s, seq: *q }),
            })
            .collect();
        let reported: Vec<&str> = reported.iter().map(|i| ids[*i as usize].as_str()).collect();
        let heal = compare(&expected, &reported, session, received);
        for id in &heal.fence {
            prop_assert!(reported.contains(&id.as_str()));
            prop_assert!(!expected.iter().any(|e| e.id == id));
        }
        for id in &heal.lost {
            prop_assert!(!reported.contains(&id.as_str()));
            prop_assert!(expected.iter().any(|e| e.id == id));
        }
        // Everything reported and unexpected is fenced.
        let unexpected = reported.iter().filter(|r| !expected.iter().any(|e| e.id == **r)).count();
        prop_assert_eq!(heal.fence.len(), unexpected);
        // A hello (nothing of its session handled yet) loses every missing allocation started
        // in an earlier session.
        if received.is_none() {
            let missing = expected
                .iter()
                .filter(|e| !reported.contains(&e.id))
                .filter(|e| e.start.is_none_or(|s| s.session != session))
                .count();
            prop_assert_eq!(heal.lost.len(), missing);
        }
    }
}
