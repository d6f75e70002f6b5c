//! The master's stop signal as its long-lived streams see it: agent sessions and log followers
//! end when the master stops, so that its shutdown never waits on them.

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::Status;

use crate::error::MasterError;

/// Fires the stop signal.
#[derive(Debug)]
pub struct Stop(watch::Sender<bool>);

impl Stop {
    /// Tells every stream watching the signal to end.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// Resolves once the master stops (or once its [`Stop`] is gone); cheap to clone.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

/// A stop signal and its first watcher.
pub fn channel() -> (Stop, Stopping) {
    let (sender, receiver) = watch::channel(false);
    (Stop(sender), Stopping(receiver))
}

impl Stopping {
    /// Waits until the master stops.
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// `stream` until it ends or the master stops, whichever is first; in the second case it
    /// ends with `unavailable: the master is shutting down`.
    pub fn cut<T: Send + 'static>(
        mut self,
        stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    ) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
        async_stream::stream! {
            let mut stream = Box::pin(stream);
            loop {
                tokio::select! {
                    biased;
                    () = self.stopped() => {
                        yield Err(Status::from(MasterError::ShuttingDown));
                        break;
                    }
                    item = stream.next() => match item {
                        Some(item) => yield item,
                        None => break,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_cut_by_the_stop_ends_with_unavailable() {
        let (stop, stopping) = channel();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Result<u32, Status>>();
        let mut cut = Box::pin(
            stopping.cut(tokio_stream::wrappers::UnboundedReceiverStream::new(
                receiver,
            )),
        );
        sender.send(Ok(1)).unwrap();
        assert_eq!(cut.next().await.unwrap().unwrap(), 1);
        stop.fire();
        let ended = cut.next().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        assert!(cut.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_ends_first_ends_cleanly() {
        let (_stop, stopping) = channel();
        let mut cut = Box::pin(stopping.cut(futures::stream::iter([Ok::<_, Status>(7)])));
        assert_eq!(cut.next().await.unwrap().unwrap(), 7);
        assert!(cut.next().await.is_none());
    }
}
