//! Leadership among masters on one PostgreSQL database: the lease holder leads; the others stand
//! by, refusing calls with the leader's address, and take over once it stops renewing.

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::server::ServerTls;
use crate::standby::serve_standby;
use crate::store::LeaseClient;

/// Exit status of a master that can no longer prove it holds the lease.
pub const LOST_LEASE_EXIT: i32 = 75;

/// How often a standby tries to take the lease and refreshes the leader's address.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// How often the leader checks that its lease is still current.
const WATCHDOG_POLL: Duration = Duration::from_millis(100);

/// How long a standby's open connections may take to close once it leads.
const STANDBY_DRAIN: Duration = Duration::from_secs(1);

/// Who this master is and how long its lease lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease length; the leader renews every third of it.
    pub ttl: Duration,
    /// This master's name in the lease (host and process).
    pub holder: String,
    /// The URL agents and the CLI reach this master at.
    pub url: String,
}

impl LeaseSettings {
    /// Local time left before the database would let the lease go: the leader stops acting then.
    fn safety_margin(&self) -> Duration {
        (self.ttl / 4).min(Duration::from_secs(1))
    }
}

/// The lease this master holds, renewed in the background; the process exits if it is lost.
pub struct Leadership {
    epoch: u64,
    stop: Sender<()>,
    renewer: JoinHandle<()>,
}

impl Leadership {
    /// The lease's epoch: the store's writes are fenced by it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Gives the lease up so that a standby takes over at once.
    pub fn release(self) {
        let _ = self.stop.send(());
        let _ = self.renewer.join();
    }
}

/// Stands by on `listener` until this master holds the lease, then renews it in the background;
/// None when `shutdown` resolves first.
pub async fn lead(
    lease: LeaseClient,
    settings: LeaseSettings,
    listener: &TcpListener,
    tls: Option<&ServerTls>,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<Leadership>> {
    let (leader_tx, leader_rx) = watch::channel(None);
    let (acquired_tx, mut acquired_rx) = oneshot::channel();
    let (stop, stop_rx) = std::sync::mpsc::channel();
    let renewer = std::thread::Builder::new()
        .name("baton-lease".into())
        .spawn(move || keep_lease(lease, settings, leader_tx, acquired_tx, stop_rx))?;
    let (end_standby, standby_ended) = oneshot::channel::<()>();
    let standby = serve_standby(duplicate(listener)?, tls, leader_rx, async {
        let _ = standby_ended.await;
    });
    tokio::pin!(standby);
    let epoch = tokio::select! {
        epoch = &mut acquired_rx => epoch.map_err(|_| anyhow::anyhow!("the lease keeper stopped"))?,
        () = shutdown => {
            drop(stop);
            let _ = renewer.join();
            return Ok(None);
        }
        served = &mut standby => {
            served?;
            anyhow::bail!("the standby listener stopped");
        }
    };
    let _ = end_standby.send(());
    if let Ok(Err(e)) = tokio::time::timeout(STANDBY_DRAIN, standby).await {
        tracing::warn!(error = %e, "the standby listener ended with an error");
    }
    tracing::info!(epoch, "this master holds the lease and leads");
    Ok(Some(Leadership {
        epoch,
        stop,
        renewer,
    }))
}

/// A second handle on the listening socket, for the standby's server.
fn duplicate(listener: &TcpListener) -> std::io::Result<TcpListener> {
    let socket = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}

/// The lease thread: tries to take the lease until it holds it (publishing the leader's URL
/// meanwhile), then renews it until told to stop, and releases it.
fn keep_lease(
    mut lease: LeaseClient,
    settings: LeaseSettings,
    leader: watch::Sender<Option<String>>,
    acquired: oneshot::Sender<u64>,
    stop: Receiver<()>,
) {
    let (epoch, taken_at) = loop {
        let attempt = Instant::now();
        match lease.acquire(&settings.holder, &settings.url, settings.ttl) {
            Ok(Some(epoch)) => break (epoch, attempt),
            Ok(None) => match lease.current() {
                Ok(current) => {
                    leader.send_replace(current.filter(|l| l.live).map(|l| l.url));
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the lease"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot take the lease"),
        }
        if !matches!(
            stop.recv_timeout(STANDBY_POLL),
            Err(RecvTimeoutError::Timeout)
        ) {
            return;
        }
    };
    leader.send_replace(Some(settings.url.clone()));
    let valid_until = Arc::new(Mutex::new(Some(taken_at + settings.ttl)));
    watch_deadline(valid_until.clone(), settings.safety_margin());
    let give_up = |lease: &mut LeaseClient| {
        *valid_until.lock().expect("lease deadline") = None;
        release(lease, epoch);
    };
    if acquired.send(epoch).is_err() {
        return give_up(&mut lease);
    }
    loop {
        match stop.recv_timeout(settings.ttl / 3) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return give_up(&mut lease),
        }
        let attempt = Instant::now();
        match lease.renew(epoch, settings.ttl) {
            Ok(true) => {
                let mut deadline = valid_until.lock().expect("lease deadline");
                if deadline.is_some() {
                    *deadline = Some(attempt + settings.ttl);
                }
            }
            Ok(false) => stop_leading("another master holds the lease now"),
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
        }
    }
}

/// Ends the process when the lease may have lapsed (renewals failing or hanging), before the
/// database could give it to another master; stops watching once the lease is released (None).
fn watch_deadline(valid_until: Arc<Mutex<Option<Instant>>>, margin: Duration) {
    std::thread::Builder::new()
        .name("baton-lease-watchdog".into())
        .spawn(move || {
            loop {
                let Some(until) = *valid_until.lock().expect("lease deadline") else {
                    return;
                };
                if Instant::now() + margin >= until {
                    stop_leading("the lease could not be renewed in time");
                }
                std::thread::sleep(WATCHDOG_POLL);
            }
        })
        .expect("the lease watchdog thread starts");
}

/// Gives the lease up, logging a failure (the lease then simply expires).
fn release(lease: &mut LeaseClient, epoch: u64) {
    match lease.release(epoch) {
        Ok(()) => tracing::info!(epoch, "lease released"),
        Err(e) => tracing::warn!(error = %e, "cannot release the lease; it will expire"),
    }
}

/// Stops this master at once: it may no longer act as the leader.
pub fn stop_leading(reason: &str) -> ! {
    tracing::error!(reason, "this master no longer leads; exiting");
    std::process::exit(LOST_LEASE_EXIT)
}
