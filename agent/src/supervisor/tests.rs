use super::*;

/// A supervisor of `dir` with a fresh lease that lasts the test, and a short grace.
fn supervisor(dir: &Path) -> Supervisor {
    std::fs::write(dir.join("lease"), b"0").unwrap();
    Supervisor {
        dir: dir.to_path_buf(),
        lease: Duration::from_secs(3600),
        grace: Duration::from_millis(300),
    }
}

/// Two ranks of a part whose first rank is 4.
fn two_ranks() -> Vec<ChildEnv> {
    let env = HashMap::from([
        (RANK_OFFSET_VAR, "4"),
        ("BATON_LOCAL_WORLD_SIZE", "2"),
        ("CUDA_VISIBLE_DEVICES", "GPU-a,GPU-b"),
    ]);
    child_envs(|name| env.get(name).map(|value| value.to_string()))
}

#[test]
fn each_rank_gets_its_ranks_and_gpu() {
    let ranks = two_ranks();
    assert_eq!(ranks.len(), 2);
    assert!(ranks[1].contains(&("RANK", "5".into())));
    assert!(ranks[1].contains(&("BATON_LOCAL_RANK", "1".into())));
    assert!(ranks[1].contains(&("CUDA_VISIBLE_DEVICES", "GPU-b".into())));
    let shared = HashMap::from([
        (RANK_OFFSET_VAR, "0"),
        ("BATON_LOCAL_WORLD_SIZE", "2"),
        ("CUDA_VISIBLE_DEVICES", "GPU-a"),
    ]);
    let ranks = child_envs(|name| shared.get(name).map(|value| value.to_string()));
    assert!(ranks.iter().all(|env| env.len() == 4), "{ranks:?}");
    assert_eq!(child_envs(|_| None), vec![Vec::new()]);
}

#[tokio::test]
async fn a_failing_rank_stops_the_others_and_its_code_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let begun = std::time::Instant::now();
    // Rank 5 ignores SIGTERM: it goes with the SIGKILL after the grace.
    let entrypoint = r#"sh -c 'if [ "$LOCAL_RANK" = 0 ]; then sleep 0.2; exit 3; fi; trap "" TERM; exec sleep 30'"#;
    let exit = supervisor(dir.path())
        .run(dir.path(), entrypoint, &two_ranks())
        .await;
    assert_eq!(
        exit,
        ExitRecord {
            code: 3,
            lease_expired: false
        }
    );
    assert!(begun.elapsed() < Duration::from_secs(10), "{begun:?}");
}

#[tokio::test]
async fn ranks_that_all_succeed_record_zero_and_share_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let exit = supervisor(dir.path())
        .run(dir.path(), r#"echo "rank $RANK""#, &two_ranks())
        .await;
    assert_eq!(exit.code, 0);
    let mut lines: Vec<String> = std::fs::read_to_string(dir.path().join("stdout.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["rank 4", "rank 5"]);
}
