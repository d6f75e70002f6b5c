//! Experiment configs as the master prepares them: parsing, limits, validation, grid expansion.
#![no_main]

use baton_common::proto::{Context, ContextFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let context = Context {
        files: vec![ContextFile {
            path: "train.py".into(),
            content: b"pass\n".to_vec(),
            mode: 0o644,
        }],
    };
    let yaml = String::from_utf8_lossy(data).into_owned();
    if let Ok(prepared) = baton_master::prepare::prepare_experiment(yaml, context) {
        assert!(!prepared.hparams.is_empty());
    }
});
