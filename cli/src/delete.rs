//! `baton experiment delete`: says what goes, asks, then has the master delete it. Pinned
//! checkpoints stay, and with them the experiment's records.

use baton_common::json_shapes;
use std::io::IsTerminal;

use baton_common::proto::{Checkpoint, ExperimentRef, ListCheckpointsRequest};

use crate::client::Run;
use crate::{gc, output};

/// Deletes experiment `id`, asking first unless `yes`.
pub async fn delete(app: &Run, id: u64, yes: bool) -> anyhow::Result<()> {
    let mut admin = app.connect().await?;
    let exp = admin
        .describe_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    let checkpoints = admin
        .list_checkpoints(ListCheckpointsRequest {
            experiment_id: id,
            all: false,
        })
        .await?
        .into_inner()
        .checkpoints;
    let (pinned, going): (Vec<Checkpoint>, Vec<Checkpoint>) =
        checkpoints.into_iter().partition(|c| c.pinned);
    let size = output::mib(going.iter().map(|c| c.size_bytes).sum());
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            anyhow::bail!("refusing to delete experiment {id} without confirmation: pass --yes");
        }
        let prompt = if pinned.is_empty() {
            format!(
                "Delete experiment {id} ({}), its {} trials and {} checkpoints ({size})? [y/N] ",
                exp.name,
                exp.trials.len(),
                going.len(),
            )
        } else {
            format!(
                "Delete the {} unpinned checkpoints ({size}) of experiment {id} ({})? Its {} \
                 pinned checkpoints stay, and so does the experiment. [y/N] ",
                going.len(),
                exp.name,
                pinned.len(),
            )
        };
        if !gc::confirm(&mut stdin.lock(), &mut std::io::stderr(), &prompt)? {
            anyhow::bail!("aborted: experiment {id} is not deleted");
        }
    }
    let exp = admin
        .delete_experiment(ExperimentRef { id })
        .await?
        .into_inner();
    if app.json {
        return Ok(output::print_json(&json_shapes::experiment(&exp))?);
    }
    if exp.pinned_checkpoints == 0 {
        return Ok(output::print(&format!(
            "Deleting experiment {id}: {} checkpoints ({size}) from storage, then its records",
            going.len(),
        ))?);
    }
    Ok(output::print(&kept_text(id, going.len(), &size, &pinned))?)
}

/// What a deletion that keeps pinned checkpoints does.
fn kept_text(id: u64, going: usize, size: &str, pinned: &[Checkpoint]) -> String {
    let mut text = format!(
        "Deleting the {going} unpinned checkpoints ({size}) of experiment {id} from storage. \
         Experiment {id} stays with its records and its {} pinned checkpoints:\n",
        pinned.len()
    );
    for c in pinned {
        text.push_str(&format!(
            "  {} (trial {}, step {})\n",
            c.uuid, c.trial_id, c.step
        ));
    }
    text.push_str(&format!(
        "Unpin them (baton checkpoint unpin UUID) and delete experiment {id} again to remove it."
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_that_keeps_pins_names_them_and_the_way_out() {
        let pinned = Checkpoint {
            uuid: "u1".into(),
            trial_id: 3,
            step: 40,
            ..Default::default()
        };
        let text = kept_text(7, 5, "0.1 MiB", &[pinned]);
        assert!(
            text.starts_with("Deleting the 5 unpinned checkpoints (0.1 MiB) of experiment 7"),
            "{text}"
        );
        assert!(text.contains("\n  u1 (trial 3, step 40)\n"), "{text}");
        assert!(
            text.ends_with("delete experiment 7 again to remove it."),
            "{text}"
        );
    }
}
