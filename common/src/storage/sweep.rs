//! Finding upload leftovers: `<uuid>/` prefixes that never got their `metadata.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::ObjectStore;

use super::{CheckpointStore, MANIFEST_NAME, StorageError};

/// What the listing saw under one `<uuid>/` prefix.
#[derive(Debug, Default)]
struct Prefix {
    /// Whether `metadata.json` is there (the checkpoint is committed).
    committed: bool,
    /// Last modification of its newest object, Unix milliseconds.
    newest_ms: i64,
}

impl CheckpointStore {
    /// Uuids of uncommitted checkpoint directories (no `metadata.json`) unchanged for `older_than`.
    ///
    /// Only top-level prefixes named like a uuid count, so other files sharing the root are never
    /// reported. A directory is as old as its newest object; on a shared filesystem an empty
    /// directory (a trial that opened a checkpoint and wrote nothing) is as old as its mtime.
    pub async fn list_uncommitted(
        &self,
        older_than: Duration,
    ) -> Result<Vec<String>, StorageError> {
        let mut prefixes: BTreeMap<String, Prefix> = BTreeMap::new();
        let mut objects = self.store.list(None);
        while let Some(object) = objects
            .try_next()
            .await
            .map_err(|e| StorageError::object("the storage root", e))?
        {
            let mut parts = object.location.parts();
            let (Some(first), Some(second)) = (parts.next(), parts.next()) else {
                continue;
            };
            if uuid::Uuid::parse_str(first.as_ref()).is_err() {
                continue;
            }
            let prefix = prefixes.entry(first.as_ref().to_string()).or_default();
            let is_manifest = second.as_ref() == MANIFEST_NAME && parts.next().is_none();
            prefix.committed |= is_manifest;
            prefix.newest_ms = prefix
                .newest_ms
                .max(object.last_modified.timestamp_millis());
        }
        if self.writes_in_place() {
            // A shared filesystem also has directories holding no file, which the listing skips.
            let listed = self
                .store
                .list_with_delimiter(None)
                .await
                .map_err(|e| StorageError::object("the storage root", e))?;
            let dirs: Vec<(String, PathBuf)> = listed
                .common_prefixes
                .iter()
                .filter_map(|prefix| prefix.parts().next())
                .map(|part| part.as_ref().to_string())
                .filter(|name| !prefixes.contains_key(name) && uuid::Uuid::parse_str(name).is_ok())
                .map(|uuid| {
                    let dir = self.write_dir(&uuid, Path::new(""));
                    (uuid, dir)
                })
                .collect();
            let empty = tokio::task::spawn_blocking(move || empty_dirs(dirs))
                .await
                .expect("directory listing task panicked");
            for (uuid, modified_ms) in empty {
                prefixes.insert(
                    uuid,
                    Prefix {
                        committed: false,
                        newest_ms: modified_ms,
                    },
                );
            }
        }
        let cutoff = millis(SystemTime::now())
            .saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        Ok(prefixes
            .into_iter()
            .filter(|(_, prefix)| !prefix.committed && prefix.newest_ms < cutoff)
            .map(|(uuid, _)| uuid)
            .collect())
    }
}

/// The directories among `dirs` that hold no file at any depth, with their mtimes.
fn empty_dirs(dirs: Vec<(String, PathBuf)>) -> Vec<(String, i64)> {
    dirs.into_iter()
        .filter_map(|(uuid, dir)| {
            // Vanished or unreadable directories are skipped: the next sweep looks again.
            let metadata = std::fs::symlink_metadata(&dir).ok()?;
            (metadata.is_dir() && holds_no_file(&dir)).then(|| {
                let modified = metadata.modified().map(millis).unwrap_or(i64::MAX);
                (uuid, modified)
            })
        })
        .collect()
}

/// Whether a directory tree holds nothing but directories (false when it cannot be read).
fn holds_no_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.into_iter().all(|entry| {
        entry.is_ok_and(|entry| {
            entry
                .file_type()
                .is_ok_and(|kind| kind.is_dir() && holds_no_file(&entry.path()))
        })
    })
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageBackend;
    use crate::storage::CommitRequest;

    const OLD: &str = "0b0e9f6e-8d0a-4c55-9d7e-5e0a3f1c2b01";
    const FRESH: &str = "1c1f0a7f-9e1b-4d66-8e8f-6f1b4a2d3c02";
    const COMMITTED: &str = "2d2a1b80-af2c-4e77-9f90-7a2c5b3e4d03";
    const EMPTY: &str = "3e3b2c91-b03d-4f88-a0a1-8b3d6c4f5e04";

    fn shared_fs(dir: &Path) -> CheckpointStore {
        CheckpointStore::new(&StorageBackend::SharedFs {
            host_path: dir.display().to_string(),
            storage_path: None,
        })
        .unwrap()
    }

    fn age(path: &Path, by: Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    fn age_dir(path: &Path, by: Duration) {
        let dir = std::fs::File::open(path).unwrap();
        dir.set_modified(SystemTime::now() - by).unwrap();
    }

    #[tokio::test]
    async fn reports_only_old_uncommitted_uuid_directories() {
        let root = tempfile::tempdir().unwrap();
        let store = shared_fs(root.path());
        let hour = Duration::from_secs(3600);

        // An abandoned upload: two files, the newest two hours old.
        std::fs::create_dir_all(root.path().join(OLD).join("sub")).unwrap();
        std::fs::write(root.path().join(OLD).join("a.bin"), b"a").unwrap();
        std::fs::write(root.path().join(OLD).join("sub/b.bin"), b"b").unwrap();
        age(&root.path().join(OLD).join("a.bin"), 3 * hour);
        age(&root.path().join(OLD).join("sub/b.bin"), 2 * hour);
        // An upload in flight: one old file, one just written.
        std::fs::create_dir_all(root.path().join(FRESH)).unwrap();
        std::fs::write(root.path().join(FRESH).join("old.bin"), b"o").unwrap();
        std::fs::write(root.path().join(FRESH).join("new.bin"), b"n").unwrap();
        age(&root.path().join(FRESH).join("old.bin"), 2 * hour);
        // A committed checkpoint, old.
        let dir = root.path().join(COMMITTED);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("weights.bin"), b"w").unwrap();
        let request = CommitRequest {
            uuid: COMMITTED.into(),
            experiment_id: 1,
            trial_id: 1,
            allocation_id: "a".into(),
            step: 1,
            hparams: serde_json::json!({}),
            metadata: serde_json::json!({}),
        };
        store.commit(&request, &dir).await.unwrap();
        age(&dir.join("weights.bin"), 2 * hour);
        age(&dir.join(MANIFEST_NAME), 2 * hour);
        // An empty directory left by a trial that wrote nothing, old.
        std::fs::create_dir_all(root.path().join(EMPTY).join("nested")).unwrap();
        age_dir(&root.path().join(EMPTY), 2 * hour);
        // Things that are not checkpoints: never reported, however old.
        std::fs::create_dir_all(root.path().join("notes")).unwrap();
        std::fs::write(root.path().join("notes/readme.txt"), b"x").unwrap();
        age(&root.path().join("notes/readme.txt"), 2 * hour);
        std::fs::write(root.path().join("top.bin"), b"x").unwrap();
        age(&root.path().join("top.bin"), 2 * hour);

        assert_eq!(
            store.list_uncommitted(hour).await.unwrap(),
            vec![OLD.to_string(), EMPTY.to_string()]
        );
        assert_eq!(
            store
                .list_uncommitted(Duration::from_secs(3 * 3600))
                .await
                .unwrap(),
            Vec::<String>::new(),
            "nothing is three hours old by its newest object"
        );
        assert_eq!(
            store.list_uncommitted(Duration::ZERO).await.unwrap(),
            vec![OLD.to_string(), FRESH.to_string(), EMPTY.to_string()]
        );

        for uuid in store.list_uncommitted(hour).await.unwrap() {
            store.delete(&uuid).await.unwrap();
        }
        assert!(!root.path().join(OLD).exists());
        assert!(!root.path().join(EMPTY).exists());
        assert!(root.path().join(FRESH).join("new.bin").is_file());
        assert!(root.path().join(COMMITTED).join(MANIFEST_NAME).is_file());
        assert!(root.path().join("notes/readme.txt").is_file());
        assert_eq!(
            store.list_uncommitted(hour).await.unwrap(),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn a_missing_root_has_nothing_to_sweep() {
        let root = tempfile::tempdir().unwrap();
        let store = shared_fs(&root.path().join("ckpts"));
        std::fs::remove_dir(root.path().join("ckpts")).unwrap();
        assert_eq!(
            store.list_uncommitted(Duration::ZERO).await.unwrap(),
            Vec::<String>::new()
        );
    }
}
