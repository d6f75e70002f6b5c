//! The cluster task's loop and the handle through which everything else talks to it.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::{Cluster, ClusterSettings};
use crate::error::{MasterError, MasterResult};
use crate::store::Store;

/// A unit of work run inside the cluster task, with exclusive access to the state.
pub(super) type Job = Box<dyn FnOnce(&mut Cluster) + Send>;

/// A cheap, cloneable way to run operations on the cluster state.
#[derive(Clone)]
pub struct ClusterHandle {
    jobs: mpsc::Sender<Job>,
}

impl ClusterHandle {
    /// A handle whose jobs go to the returned receiver, for a cluster driven by hand in tests.
    #[cfg(test)]
    pub(super) fn detached() -> (Self, mpsc::Receiver<Job>) {
        let (jobs, inbox) = mpsc::channel(1024);
        (Self { jobs }, inbox)
    }

    /// Runs `f` on the cluster state and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Cluster) -> R + Send + 'static,
    ) -> MasterResult<R> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |cluster| {
            let _ = reply.send(f(cluster));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| MasterError::ShuttingDown)?;
        result.await.map_err(|_| MasterError::ShuttingDown)
    }

    /// Runs a fallible operation on the cluster state.
    pub async fn try_call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Cluster) -> MasterResult<R> + Send + 'static,
    ) -> MasterResult<R> {
        self.call(f).await?
    }
}

/// Loads the cluster state from `store` and runs its loop until `shutdown` resolves.
pub fn run_cluster(
    store: Store,
    settings: ClusterSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> MasterResult<(ClusterHandle, tokio::task::JoinHandle<()>)> {
    let (jobs, mut inbox) = mpsc::channel::<Job>(1024);
    let handle = ClusterHandle { jobs };
    let mut cluster = Cluster::load(store, settings.clone(), handle.clone())?;
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.tick);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                job = inbox.recv() => match job {
                    Some(job) => job(&mut cluster),
                    None => break,
                },
                _ = tick.tick() => cluster.reconcile(),
                _ = &mut shutdown => break,
            }
            cluster.schedule_if_needed();
        }
        tracing::info!("cluster task stopped");
    });
    Ok((handle, task))
}
