//! Checkpoint storage against real emulators of each object store, with failures injected: S3
//! on moto, Azure Blob Storage on Azurite, Google Cloud Storage on fake-gcs-server.

mod azure;
mod gcs;
mod s3;
mod server;
mod suite;
