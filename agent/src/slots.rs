//! Slot discovery: NVIDIA GPUs by `nvidia-smi`, or CPU slots.

use baton_common::proto::Slot;

/// The slots this agent offers: `count` CPU slots when given, else the GPUs found (or one CPU slot).
pub fn discover_slots(count: Option<u32>) -> Vec<Slot> {
    if let Some(count) = count {
        return cpu_slots(count);
    }
    match detect_gpus() {
        Some(gpus) if !gpus.is_empty() => gpus,
        _ => {
            tracing::info!("no NVIDIA GPU found; offering one CPU slot");
            cpu_slots(1)
        }
    }
}

/// The slots to offer: only the GPUs named in `gpus` (UUIDs) when any are named, else what
/// `discover_slots` finds. The error names a UUID that is not on this host and lists those that are.
pub fn offered_slots(count: Option<u32>, gpus: &[String]) -> Result<Vec<Slot>, String> {
    if gpus.is_empty() {
        return Ok(discover_slots(count));
    }
    let found = detect_gpus()
        .filter(|found| !found.is_empty())
        .ok_or("--gpus was given but nvidia-smi finds no GPU on this host")?;
    select_gpus(&found, gpus)
}

/// The GPUs of `found` named in `wanted`, in the order named.
fn select_gpus(found: &[Slot], wanted: &[String]) -> Result<Vec<Slot>, String> {
    wanted
        .iter()
        .map(|uuid| {
            found.iter().find(|slot| slot.id == *uuid).cloned().ok_or_else(|| {
                let known: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
                format!(
                    "--gpus names {uuid}, which is not a GPU of this host (nvidia-smi -L lists {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

fn cpu_slots(count: u32) -> Vec<Slot> {
    (0..count)
        .map(|i| Slot {
            id: format!("cpu{i}"),
            kind: "cpu".into(),
            name: format!("CPU slot {i}"),
        })
        .collect()
}

/// Queries `nvidia-smi`; None when it is missing or fails.
fn detect_gpus() -> Option<Vec<Slot>> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,uuid,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses `index, name, uuid, memory` lines into GPU slots keyed by UUID.
fn parse_nvidia_smi(text: &str) -> Vec<Slot> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            match fields.as_slice() {
                [_, name, uuid, memory, ..] if uuid.starts_with("GPU-") => Some(Slot {
                    id: uuid.to_string(),
                    kind: "gpu".into(),
                    name: format!("{name} ({memory})"),
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gpu_lines() {
        let slots = parse_nvidia_smi(
            "0, NVIDIA H100 80GB HBM3, GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab, 81559 MiB\n\
             1, NVIDIA H100 80GB HBM3, GPU-2b2c3d4e-aaaa-bbbb-cccc-0123456789ab, 81559 MiB\n",
        );
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].id, "GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab");
        assert_eq!(slots[1].kind, "gpu");
    }

    #[test]
    fn named_gpus_are_offered_and_unknown_ones_named() {
        let found =
            parse_nvidia_smi("0, H200, GPU-aaaa, 143771 MiB\n1, H200, GPU-bbbb, 143771 MiB\n");
        let picked = select_gpus(&found, &["GPU-bbbb".to_string()]).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].id, "GPU-bbbb");
        let error = select_gpus(&found, &["GPU-cccc".to_string()]).unwrap_err();
        assert!(
            error.contains("GPU-cccc") && error.contains("GPU-aaaa, GPU-bbbb"),
            "{error}"
        );
        assert_eq!(offered_slots(Some(2), &[]).unwrap().len(), 2);
    }

    #[test]
    fn explicit_count_gives_cpu_slots() {
        let slots = discover_slots(Some(3));
        assert_eq!(
            slots.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["cpu0", "cpu1", "cpu2"]
        );
    }
}
