//! `baton checkpoint pin|unpin`.

use baton_common::json_shapes;
use baton_common::proto::{Checkpoint, PinCheckpointRequest, UnpinCheckpointRequest};

use crate::client::Run;
use crate::output;

/// Pins a checkpoint with a note and prints it.
pub async fn pin(app: &Run, uuid: String, note: String) -> anyhow::Result<()> {
    let pinned = app
        .connect()
        .await?
        .pin_checkpoint(PinCheckpointRequest { uuid, note })
        .await?
        .into_inner();
    report(app, &pinned)
}

/// Unpins a checkpoint and prints it, saying whether its experiment's policy deletes it now.
pub async fn unpin(app: &Run, uuid: String) -> anyhow::Result<()> {
    let unpinned = app
        .connect()
        .await?
        .unpin_checkpoint(UnpinCheckpointRequest { uuid })
        .await?
        .into_inner();
    report(app, &unpinned)
}

fn report(app: &Run, ckpt: &Checkpoint) -> anyhow::Result<()> {
    if app.json {
        return Ok(output::print_json(&json_shapes::checkpoint(ckpt))?);
    }
    Ok(output::print(&summary(ckpt))?)
}

/// One line on what the checkpoint is now.
fn summary(ckpt: &Checkpoint) -> String {
    let which = format!(
        "Checkpoint {} (trial {}, step {})",
        ckpt.uuid, ckpt.trial_id, ckpt.step
    );
    match (ckpt.pinned, ckpt.state.as_str()) {
        (true, _) if ckpt.pin_note.is_empty() => format!("{which} is pinned"),
        (true, _) => format!("{which} is pinned: {}", ckpt.pin_note),
        (false, "COMPLETED") => format!("{which} is unpinned; its experiment's GC policy keeps it"),
        (false, state) => format!(
            "{which} is unpinned; its experiment's GC policy does not keep it: it is {state}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_the_pin_leaves() {
        let mut c = Checkpoint {
            uuid: "u1".into(),
            trial_id: 2,
            step: 50,
            state: "COMPLETED".into(),
            pinned: true,
            pin_note: "ship it".into(),
            ..Default::default()
        };
        assert_eq!(
            summary(&c),
            "Checkpoint u1 (trial 2, step 50) is pinned: ship it"
        );
        c.pinned = false;
        c.state = "DELETING".into();
        assert!(summary(&c).ends_with("does not keep it: it is DELETING"));
    }
}
