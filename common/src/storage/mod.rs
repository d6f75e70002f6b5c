//! Checkpoint storage over `object_store`: layout, manifest, commit, download and delete.

mod access;
mod backend;
mod checkpoint_store;
mod error;
mod local_copy;
mod local_files;
mod manifest;
mod sweep;
#[cfg(test)]
mod test_support;
mod verified_read;
mod verified_write;

pub use backend::build_object_store;
pub use checkpoint_store::{CheckpointStore, CommitRequest, Progress};
pub use error::StorageError;
pub use local_files::{LocalFile, list_checkpoint_files, safe_relative_path};
pub use manifest::{MANIFEST_NAME, Manifest, ManifestFile};
pub use verified_write::write_verified_file;
