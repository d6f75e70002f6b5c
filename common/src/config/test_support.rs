//! Config documents shared by the tests of the config modules.

pub(super) const SINGLE: &str = "{name: single, metric: loss, max_length: 10}";
pub(super) const FS: &str = "{type: shared_fs, host_path: /mnt/ckpt}";

/// A config with the given extra top-level lines, searcher and checkpoint storage.
pub(super) fn doc(extra: &str, searcher: &str, storage: &str) -> String {
    format!(
        "name: exp\nentrypoint: python3 train.py\n{extra}searcher: {searcher}\ncheckpoint_storage: {storage}\n"
    )
}

/// A config with the given checkpoint storage and otherwise minimal fields.
pub(super) fn storage(spec: &str) -> String {
    doc("", SINGLE, spec)
}
