//! The lease and the fencing of writes, against a real PostgreSQL server.

use std::sync::Barrier;
use std::thread;

use super::*;
use crate::store::testing::TestDatabase;
use crate::store::{Store, StoreError};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(3600);

fn clients(test: &TestDatabase) -> (LeaseClient, LeaseClient) {
    (
        LeaseClient::connect(&test.url).unwrap(),
        LeaseClient::connect(&test.url).unwrap(),
    )
}

#[test]
fn clients_and_stores_move_between_threads() {
    fn sendable<T: Send>() {}
    sendable::<LeaseClient>();
    sendable::<Store>();
}

#[test]
fn the_lease_is_taken_renewed_expired_and_released_by_the_database_clock() {
    let test = TestDatabase::create();
    let (mut a, mut b) = clients(&test);
    assert_eq!(a.current().unwrap(), None, "nobody took it yet");

    assert_eq!(a.acquire("a", "http://a:8090", SHORT).unwrap(), Some(1));
    assert_eq!(b.acquire("b", "http://b:8090", SHORT).unwrap(), None);
    let leader = Leader {
        epoch: 1,
        holder: "a".into(),
        url: "http://a:8090".into(),
        live: true,
    };
    assert_eq!(b.current().unwrap(), Some(leader.clone()));
    assert!(a.renew(1, SHORT).unwrap());
    assert!(!a.renew(2, SHORT).unwrap(), "not an epoch it holds");

    thread::sleep(SHORT + Duration::from_millis(200));
    let expired = Leader {
        live: false,
        ..leader
    };
    assert_eq!(b.current().unwrap(), Some(expired));
    assert_eq!(b.acquire("b", "http://b:8090", LONG).unwrap(), Some(2));
    assert!(!a.renew(1, SHORT).unwrap(), "taken over: lost");
    assert_eq!(a.acquire("a", "http://a:8090", SHORT).unwrap(), None);

    a.release(1).unwrap();
    assert!(
        b.current().unwrap().unwrap().live,
        "an old epoch releases nothing"
    );
    b.release(2).unwrap();
    let released = b.current().unwrap().unwrap();
    assert_eq!((released.epoch, released.live), (2, false));
    assert!(
        !b.renew(2, LONG).unwrap(),
        "a released lease stays released"
    );
    assert_eq!(a.acquire("a", "http://a:8090", SHORT).unwrap(), Some(3));

    thread::sleep(SHORT + Duration::from_millis(200));
    assert!(!a.current().unwrap().unwrap().live);
    assert!(
        a.renew(3, LONG).unwrap(),
        "expired, but nobody took it since"
    );
    assert!(b.current().unwrap().unwrap().live);
    assert_eq!(b.acquire("b", "http://b:8090", LONG).unwrap(), None);
}

#[test]
fn a_restarted_master_takes_its_own_live_lease_back_and_fences_its_earlier_run() {
    let test = TestDatabase::create();
    let (mut a, mut b) = clients(&test);
    let first = a.acquire("a", "http://a:8090", LONG).unwrap().unwrap();
    let earlier_run = Store::open(&test.database(), Some(first)).unwrap();
    assert_eq!(b.acquire("b", "http://b:8090", LONG).unwrap(), None);
    let again = b.acquire("a", "http://a:8090", LONG).unwrap().unwrap();
    assert_eq!(again, first + 1, "the same holder, restarted, at once");
    assert!(!a.renew(first, LONG).unwrap(), "the earlier run lost it");
    let write = earlier_run.insert_experiment("late", "yaml", b"", 0);
    assert!(
        matches!(write, Err(StoreError::Fenced(_))),
        "the earlier run is fenced: {write:?}"
    );
}

#[test]
fn of_two_clients_racing_for_a_free_lease_exactly_one_wins() {
    let test = TestDatabase::create();
    let barrier = Barrier::new(2);
    let rounds = 20;
    let wins: Vec<Vec<u64>> = thread::scope(|scope| {
        let racers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (barrier, url) = (&barrier, &test.url);
                scope.spawn(move || {
                    let mut lease = LeaseClient::connect(url).unwrap();
                    let mut won = Vec::new();
                    for _ in 0..rounds {
                        barrier.wait();
                        let epoch = lease.acquire(name, name, LONG).unwrap();
                        barrier.wait();
                        if let Some(epoch) = epoch {
                            lease.release(epoch).unwrap();
                            won.push(epoch);
                        }
                        barrier.wait();
                    }
                    won
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut epochs: Vec<u64> = wins.concat();
    epochs.sort();
    assert_eq!(
        epochs,
        (1..=rounds).collect::<Vec<_>>(),
        "one winner a round: {wins:?}"
    );
}

#[test]
fn a_store_whose_lease_was_taken_writes_nothing_more() {
    let test = TestDatabase::create();
    let (mut a, mut b) = clients(&test);
    let old_epoch = a.acquire("a", "http://a", SHORT).unwrap().unwrap();
    let old = Store::open(&test.database(), Some(old_epoch)).unwrap();
    let experiment = old.insert_experiment("before", "yaml", b"", 0).unwrap();

    thread::sleep(SHORT + Duration::from_millis(200));
    let new_epoch = b.acquire("b", "http://b", LONG).unwrap().unwrap();
    let new = Store::open(&test.database(), Some(new_epoch)).unwrap();

    let refused = old.insert_experiment("after", "yaml", b"", 0).unwrap_err();
    assert!(matches!(refused, StoreError::Fenced(_)), "{refused:?}");
    let message = refused.to_string();
    assert!(
        message.contains(&format!("lease (epoch {old_epoch}) has been taken")),
        "{message}"
    );
    assert!(matches!(
        old.set_experiment_state(experiment, crate::states::ExperimentState::Paused),
        Err(StoreError::Fenced(_))
    ));
    old.begin_batch().unwrap();
    assert!(matches!(
        old.set_agent_state("a1", "disabled"),
        Err(StoreError::Fenced(_))
    ));
    assert!(matches!(old.end_batch(), Err(StoreError::RolledBack)));

    let experiments = new.list_experiments().unwrap();
    assert_eq!(experiments.len(), 1);
    assert_eq!(experiments[0].state, crate::states::ExperimentState::Active);
    assert_eq!(new.agent_states().unwrap(), []);
    new.insert_experiment("new leader", "yaml", b"", 0).unwrap();
    assert_eq!(
        old.list_experiments().unwrap().len(),
        2,
        "reads are not fenced"
    );
}

#[test]
fn taking_the_lease_waits_for_the_previous_holder_s_write_in_flight() {
    let test = TestDatabase::create();
    let (mut a, mut b) = clients(&test);
    let epoch = a.acquire("a", "http://a", SHORT).unwrap().unwrap();
    let old = Store::open(&test.database(), Some(epoch)).unwrap();
    old.begin_batch().unwrap();
    old.insert_experiment("in flight", "yaml", b"", 0).unwrap();
    thread::sleep(SHORT + Duration::from_millis(200));

    let taker = thread::spawn(move || b.acquire("b", "http://b", LONG).unwrap());
    thread::sleep(Duration::from_millis(500));
    assert!(
        !taker.is_finished(),
        "the lease was taken under a write in flight"
    );
    old.end_batch().unwrap();
    assert_eq!(taker.join().unwrap(), Some(epoch + 1));

    assert!(matches!(
        old.insert_experiment("late", "yaml", b"", 0),
        Err(StoreError::Fenced(_))
    ));
    let new = Store::open(&test.database(), Some(epoch + 1)).unwrap();
    let names: Vec<String> = new
        .list_experiments()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["in flight"]);
}
