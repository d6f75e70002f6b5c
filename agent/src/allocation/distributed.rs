//! One part of a distributed trial (a start with `world_size` > 1): the ranks this agent runs, the
//! chief's rendezvous, and the environment the supervisor gives those ranks.
//!
//! The chief's agent (part 0, started with `rendezvous_port` 0) picks two free ports, records
//! them in its start request and reports them in `RendezvousReady` before it restores the
//! checkpoint, so that the other parts restore meanwhile; they arrive with both ports set.

use std::net::{Ipv4Addr, TcpListener};

use baton_common::proto::{AgentMessage, RendezvousReady, StartAllocation, agent_message::Body};
use tokio::sync::mpsc;

use super::logs::agent_line;
use crate::supervisor::RANK_OFFSET_VAR;

/// Whether the start runs one part of a distributed trial.
pub fn is_distributed(start: &StartAllocation) -> bool {
    start.world_size > 1
}

/// Rank processes this agent runs for the start.
pub fn local_ranks(start: &StartAllocation) -> u32 {
    start.local_world_size.max(1)
}

/// Picks the rendezvous and sync ports when this is the chief's part and none are set yet.
pub fn choose_ports(start: &mut StartAllocation) -> Result<(), String> {
    if !is_distributed(start) || start.part_index != 0 || start.rendezvous_port != 0 {
        return Ok(());
    }
    let [rendezvous, sync] = free_ports()
        .map_err(|e| format!("cannot find free ports for the trial's rendezvous: {e}"))?;
    start.rendezvous_port = rendezvous.into();
    start.sync_port = sync.into();
    Ok(())
}

/// Two distinct free TCP ports: bound on all interfaces, read, released (a small race, as with
/// torchrun).
fn free_ports() -> std::io::Result<[u16; 2]> {
    let first = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let second = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    Ok([first.local_addr()?.port(), second.local_addr()?.port()])
}

/// The chief's report of its ports, once they are chosen (None on other parts).
pub fn rendezvous_ready(start: &StartAllocation) -> Option<AgentMessage> {
    (is_distributed(start) && start.part_index == 0 && start.rendezvous_port != 0).then(|| {
        AgentMessage {
            body: Some(Body::RendezvousReady(RendezvousReady {
                allocation_id: start.allocation_id.clone(),
                rendezvous_port: start.rendezvous_port,
                sync_port: start.sync_port,
            })),
        }
    })
}

/// Reports the chief's ports to the master and tells the trial's log which part runs here.
pub fn announce(start: &StartAllocation, outbox: &mpsc::UnboundedSender<AgentMessage>) {
    if !is_distributed(start) {
        return;
    }
    if let Some(ready) = rendezvous_ready(start) {
        let _ = outbox.send(ready);
    }
    let line = describe(start);
    tracing::info!(allocation = %start.allocation_id, "{line}");
    let _ = outbox.send(agent_line(&start.allocation_id, &line));
}

/// The chief's host as the ranks reach it (the loopback address when the master names none).
fn chief_host(start: &StartAllocation) -> &str {
    match start.chief_address.as_str() {
        "" => "127.0.0.1",
        address => address,
    }
}

/// Which part and ranks run here, e.g. "part 1 of 2: ranks 1..2 of 2, rendezvous 10.0.0.5:29500".
pub fn describe(start: &StartAllocation) -> String {
    format!(
        "part {} of {}: ranks {}..{} of {}, rendezvous {}:{}",
        start.part_index,
        start.part_count,
        start.rank_offset,
        start.rank_offset + local_ranks(start),
        start.world_size,
        chief_host(start),
        start.rendezvous_port
    )
}

/// The supervisor's environment for a distributed start: what every rank shares, and the part's
/// first rank in [`RANK_OFFSET_VAR`] (empty for a one-process trial).
pub fn supervisor_env(start: &StartAllocation) -> Vec<(&'static str, String)> {
    if !is_distributed(start) {
        return Vec::new();
    }
    let host = chief_host(start).to_string();
    vec![
        (RANK_OFFSET_VAR, start.rank_offset.to_string()),
        ("WORLD_SIZE", start.world_size.to_string()),
        ("BATON_WORLD_SIZE", start.world_size.to_string()),
        ("LOCAL_WORLD_SIZE", local_ranks(start).to_string()),
        ("BATON_LOCAL_WORLD_SIZE", local_ranks(start).to_string()),
        ("MASTER_ADDR", host.clone()),
        ("MASTER_PORT", start.rendezvous_port.to_string()),
        ("BATON_SYNC_ADDR", host),
        ("BATON_SYNC_PORT", start.sync_port.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(part_index: u32, rendezvous_port: u32) -> StartAllocation {
        StartAllocation {
            allocation_id: "a".into(),
            world_size: 2,
            rank_offset: part_index,
            local_world_size: 1,
            part_index,
            part_count: 2,
            chief_address: "10.0.0.5".into(),
            rendezvous_port,
            sync_port: rendezvous_port + 1,
            ..Default::default()
        }
    }

    #[test]
    fn the_chief_picks_two_ports_and_reports_them() {
        let mut chief = part(0, 0);
        chief.sync_port = 0;
        choose_ports(&mut chief).unwrap();
        assert_ne!(chief.rendezvous_port, 0);
        assert_ne!(chief.rendezvous_port, chief.sync_port);
        let Some(Body::RendezvousReady(ready)) = rendezvous_ready(&chief).unwrap().body else {
            panic!("a rendezvous report");
        };
        assert_eq!(
            (ready.rendezvous_port, ready.sync_port),
            (chief.rendezvous_port, chief.sync_port)
        );
        let mut worker = part(1, 29500);
        choose_ports(&mut worker).unwrap();
        assert_eq!(worker.rendezvous_port, 29500);
        assert!(rendezvous_ready(&worker).is_none());
        assert_eq!(
            describe(&worker),
            "part 1 of 2: ranks 1..2 of 2, rendezvous 10.0.0.5:29500"
        );
    }

    #[test]
    fn a_one_process_trial_gets_no_distributed_environment() {
        let mut single = StartAllocation::default();
        choose_ports(&mut single).unwrap();
        assert_eq!(single.rendezvous_port, 0);
        assert!(rendezvous_ready(&single).is_none());
        assert!(supervisor_env(&single).is_empty());
        let env = supervisor_env(&part(1, 29500));
        assert!(env.contains(&(RANK_OFFSET_VAR, "1".into())));
        assert!(env.contains(&("MASTER_ADDR", "10.0.0.5".into())));
        assert!(env.contains(&("BATON_SYNC_PORT", "29501".into())));
    }
}
