//! `baton experiment set gc-policy`: preview, confirm, apply.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use baton_common::proto::{Checkpoint, SetGcPolicyRequest, SetGcPolicyResponse};
use serde_json::json;

use crate::args::GcPolicyArgs;
use crate::client::{Run, UsageError};
use crate::{checkpoint, output};

/// Parses a `--save-*` count; a negative or non-integer value is a usage error naming the flag.
pub fn parse_count(flag: &str, value: &str) -> Result<i64, UsageError> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(UsageError(format!(
            "{flag}: must be a non-negative integer (got {value})"
        ))),
    }
}

/// Previews the policy, then (unless `--dry-run`) confirms and applies it.
pub async fn set_policy(app: &Run, args: &GcPolicyArgs) -> anyhow::Result<()> {
    let request = SetGcPolicyRequest {
        experiment_id: args.id,
        save_experiment_best: parse_count("--save-experiment-best", &args.save_experiment_best)?,
        save_trial_best: parse_count("--save-trial-best", &args.save_trial_best)?,
        save_trial_latest: parse_count("--save-trial-latest", &args.save_trial_latest)?,
        gc_while_running: args.gc_while_running,
        dry_run: true,
    };
    let mut admin = app.connect().await?;
    let preview = admin.set_gc_policy(request).await?.into_inner();
    if app.json && args.dry_run {
        return Ok(output::print_json(&keep_delete_json(&preview))?);
    }
    if args.csv {
        output::print(&checkpoint::csv(&sorted(&preview.delete)))?;
    } else if !app.json {
        output::print(&deletion_table(&preview.delete))?;
    }
    if args.dry_run {
        return Ok(());
    }
    let size: u64 = preview.delete.iter().map(|c| c.size_bytes).sum();
    if !preview.delete.is_empty() && !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            bail!("refusing to delete without confirmation: pass --yes");
        }
        let prompt = format!(
            "Delete {} checkpoints ({})? [y/N] ",
            preview.delete.len(),
            output::mib(size)
        );
        if !confirm(&mut stdin.lock(), &mut std::io::stderr(), &prompt)? {
            bail!("aborted: no checkpoints deleted");
        }
    }
    let applied = admin
        .set_gc_policy(SetGcPolicyRequest {
            dry_run: false,
            ..request
        })
        .await?
        .into_inner();
    if uuid_set(&applied.delete) != uuid_set(&preview.delete) {
        eprintln!(
            "warning: the master deleted {} checkpoints where the preview showed {}: \
             checkpoints changed in between; see `baton experiment list-checkpoints {}`",
            applied.delete.len(),
            preview.delete.len(),
            args.id
        );
    }
    if app.json {
        return Ok(output::print_json(&keep_delete_json(&applied))?);
    }
    let done = format!("Deleted {} checkpoints", applied.delete.len());
    if args.csv {
        eprintln!("{done}");
        return Ok(());
    }
    Ok(output::print(&done)?)
}

/// `{"keep": [uuid...], "delete": [uuid...]}`.
pub fn keep_delete_json(response: &SetGcPolicyResponse) -> serde_json::Value {
    let uuids = |list: &[Checkpoint]| list.iter().map(|c| c.uuid.clone()).collect::<Vec<_>>();
    json!({ "keep": uuids(&response.keep), "delete": uuids(&response.delete) })
}

/// The checkpoints a policy would delete, in the columns of `list-checkpoints`, and their total size.
pub fn deletion_table(delete: &[Checkpoint]) -> String {
    if delete.is_empty() {
        return "No checkpoints to delete".to_string();
    }
    let mut text = checkpoint::table(&sorted(delete));
    let size: u64 = delete.iter().map(|c| c.size_bytes).sum();
    text.push_str(&format!(
        "{} checkpoints to delete, {} in total\n",
        delete.len(),
        output::bytes(size)
    ));
    text
}

/// Asks `prompt` and reads one answer; only `y` or `yes` (any case) agree.
pub fn confirm(
    input: &mut impl BufRead,
    prompt_out: &mut impl Write,
    prompt: &str,
) -> std::io::Result<bool> {
    prompt_out.write_all(prompt.as_bytes())?;
    prompt_out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Checkpoints by trial, then step.
fn sorted(checkpoints: &[Checkpoint]) -> Vec<Checkpoint> {
    let mut sorted = checkpoints.to_vec();
    sorted.sort_by_key(|c| (c.trial_id, c.step));
    sorted
}

/// The uuids of a list of checkpoints.
fn uuid_set(list: &[Checkpoint]) -> BTreeSet<&str> {
    list.iter().map(|c| c.uuid.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_non_negative_integers() {
        assert_eq!(parse_count("--save-trial-best", "0").unwrap(), 0);
        assert_eq!(parse_count("--save-trial-best", "12").unwrap(), 12);
        assert_eq!(
            parse_count("--save-trial-best", "-1")
                .unwrap_err()
                .to_string(),
            "--save-trial-best: must be a non-negative integer (got -1)"
        );
        for bad in ["1.5", "abc", "", "1e3"] {
            let err = parse_count("--save-trial-latest", bad)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!("--save-trial-latest: must be a non-negative integer (got {bad})")
            );
        }
    }

    #[test]
    fn confirmation_needs_yes() {
        let ask = |answer: &str| {
            let mut prompt = Vec::new();
            let agreed = confirm(
                &mut answer.as_bytes(),
                &mut prompt,
                "Delete 2 checkpoints (1.0 MiB)? [y/N] ",
            )
            .unwrap();
            assert_eq!(
                String::from_utf8(prompt).unwrap(),
                "Delete 2 checkpoints (1.0 MiB)? [y/N] "
            );
            agreed
        };
        assert!(ask("y\n"));
        assert!(ask("YES\n"));
        assert!(!ask("\n"));
        assert!(!ask("no\n"));
        assert!(!ask(""));
    }

    #[test]
    fn keep_delete_and_table() {
        let c = |uuid: &str, trial_id, step, size_bytes| Checkpoint {
            uuid: uuid.into(),
            trial_id,
            step,
            size_bytes,
            state: "COMPLETED".into(),
            ..Default::default()
        };
        let response = SetGcPolicyResponse {
            keep: vec![c("k", 1, 30, 1)],
            delete: vec![c("d2", 2, 10, 2048), c("d1", 1, 10, 1024)],
        };
        assert_eq!(
            keep_delete_json(&response),
            json!({"keep": ["k"], "delete": ["d2", "d1"]})
        );
        let text = deletion_table(&response.delete);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "TRIAL  STEP  STATE      METRIC  SIZE     PINNED  UUID"
        );
        assert_eq!(
            lines[1],
            "1      10    COMPLETED  -       1.0 KiB  -       d1"
        );
        assert_eq!(lines[3], "2 checkpoints to delete, 3.0 KiB in total");
        assert_eq!(deletion_table(&[]), "No checkpoints to delete");
        assert_eq!(
            checkpoint::csv(&sorted(&response.delete)),
            "uuid,trial_id,step,state,metric,size_bytes\n\
             d1,1,10,COMPLETED,,1024\n\
             d2,2,10,COMPLETED,,2048\n"
        );
    }
}
