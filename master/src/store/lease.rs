//! The lease masters sharing one PostgreSQL database take turns through: one row
//! (`master_lease`) naming the leader, its URL, its epoch and when the lease expires. Taking the
//! lease increments the epoch; the store's writes are fenced by it (see [`super::Store::open`]).
//! Every time is the database's clock (`clock_timestamp()`), never a master's.
//!
//! Taking the lease waits for a write of the previous holder in flight (the fencing trigger keeps
//! the lease row share-locked until the writing transaction ends).

use std::time::Duration;

use super::pg::PgClient;
use super::value::params;
use super::{StoreResult, migrations};

/// The master that took the lease last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The lease's epoch (1 for the first master to take it).
    pub epoch: u64,
    /// Who took it (the name passed to [`LeaseClient::acquire`]).
    pub holder: String,
    /// Where agents and the CLI reach it.
    pub url: String,
    /// Whether the lease is still unexpired by the database's clock.
    pub live: bool,
}

/// A connection of its own to the lease, apart from the store's.
pub struct LeaseClient {
    client: PgClient,
}

impl LeaseClient {
    /// Connects to the PostgreSQL database at `url` and runs migrations (creating the lease).
    pub fn connect(url: &str) -> StoreResult<Self> {
        let mut client = PgClient::connect(url)?;
        migrations::run_postgres(&mut client)?;
        Ok(Self { client })
    }

    /// Takes the lease for `ttl` if it is free, expired, or held under the same `holder` name (the
    /// same master, restarted: its earlier run is fenced by the new epoch): returns the new epoch,
    /// or None while another master holds it.
    pub fn acquire(&mut self, holder: &str, url: &str, ttl: Duration) -> StoreResult<Option<u64>> {
        let rows = self.client.query(
            "UPDATE master_lease SET epoch = epoch + 1, holder = ?1, url = ?2, \
             expires_at = clock_timestamp() + ?3::BIGINT * INTERVAL '1 millisecond' \
             WHERE expires_at <= clock_timestamp() OR holder = ?1 RETURNING epoch",
            params![holder, url, millis(ttl)],
        )?;
        rows.first()
            .map(|row| epoch_of(row.try_get(0)?))
            .transpose()
    }

    /// Extends the lease of `epoch` to `ttl` from now. False: the lease is lost (another master
    /// took it, or it was released). A lease that expired but that nobody took since is renewed:
    /// no other master can have written meanwhile.
    pub fn renew(&mut self, epoch: u64, ttl: Duration) -> StoreResult<bool> {
        let changed = self.client.execute(
            "UPDATE master_lease \
             SET expires_at = clock_timestamp() + ?2::BIGINT * INTERVAL '1 millisecond' \
             WHERE epoch = ?1 AND expires_at > '-infinity'",
            params![epoch, millis(ttl)],
        )?;
        Ok(changed == 1)
    }

    /// Gives up the lease of `epoch` so that another master can take it at once (nothing when it
    /// is no longer this epoch's); the store opened with `epoch` is fenced once one does.
    pub fn release(&mut self, epoch: u64) -> StoreResult<()> {
        self.client.execute(
            "UPDATE master_lease SET expires_at = '-infinity' WHERE epoch = ?1",
            params![epoch],
        )?;
        Ok(())
    }

    /// The master that took the lease last, live or not; None before any master took it.
    pub fn current(&mut self) -> StoreResult<Option<Leader>> {
        let rows = self.client.query(
            "SELECT epoch, holder, url, expires_at > clock_timestamp() FROM master_lease \
             WHERE epoch > 0",
            params![],
        )?;
        rows.first()
            .map(|row| {
                Ok(Leader {
                    epoch: epoch_of(row.try_get(0)?)?,
                    holder: row.try_get(1)?,
                    url: row.try_get(2)?,
                    live: row.try_get(3)?,
                })
            })
            .transpose()
    }
}

/// `ttl` in whole milliseconds, as bound.
fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

fn epoch_of(stored: i64) -> StoreResult<u64> {
    u64::try_from(stored).map_err(|e| super::StoreError::Invalid {
        column: 0,
        message: format!("lease epoch {stored}: {e}"),
    })
}

#[cfg(test)]
mod tests;
