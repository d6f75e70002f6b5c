//! Bad and hostile requests through every public surface (harness socket, raw gRPC, CLI): each
//! gets its clear error and changes nothing.

use std::time::Duration;

use baton_cluster_tests::{TestCluster, example_config};
use serde_json::{Value, json};

/// A trial that speaks the harness protocol by hand: sends `init`, then each line of
/// `requests.json` as it is (some of them built here to a size), printing each reply; then one
/// good report, then a flood of output.
const RAW_TRIAL: &str = r#"
import json, os, socket, sys

sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["BATON_HARNESS_SOCKET"])
reader = sock.makefile("rb")

def send(raw: bytes) -> str:
    sock.sendall(raw + b"\n")
    return reader.readline().decode().strip()

print("init:", send(b'{"op":"init"}'), flush=True)
for index, entry in enumerate(json.load(open("requests.json"))):
    if isinstance(entry, dict):
        raw = (entry["prefix"] + entry["fill"] * entry["times"] + entry["suffix"]).encode()
    elif entry == "INVALID_UTF8":
        raw = b'{"op":"init","x":"\xff\xfe"}'
    else:
        raw = entry.encode()
    print(f"reply {index}:", send(raw), flush=True)
print("good:", send(b'{"op":"report_training","step":1,"metrics":{"loss":1.0}}'), flush=True)
extra = [socket.socket(socket.AF_UNIX) for _ in range(9)]
for s in extra:
    s.connect(os.environ["BATON_HARNESS_SOCKET"])
print("ninth extra connection:", extra[-1].makefile("rb").readline().decode().strip(), flush=True)
for line in range(50000):
    sys.stdout.write(f"flood {line}\n")
sys.stdout.flush()
"#;

/// A request line of `prefix`, `fill` repeated `times`, `suffix`.
fn built(prefix: &str, fill: &str, times: usize, suffix: &str) -> Value {
    json!({"prefix": prefix, "fill": fill, "times": times, "suffix": suffix})
}

/// Harness requests and the error each must get.
fn harness_table() -> Vec<(Value, &'static str)> {
    let many_metrics = format!(
        "{{\"op\":\"report_training\",\"step\":1,\"metrics\":{{{}}}}}",
        (0..1001)
            .map(|i| format!("\"m{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let line = |text: &str| Value::from(text);
    vec![
        (line("not json"), "not valid JSON"),
        (line("[1, 2]"), "must be a JSON object"),
        (line("{}"), "no string field \\\"op\\\""),
        (line(r#"{"op": 7}"#), "no string field \\\"op\\\""),
        (line(r#"{"op":"fly"}"#), "unknown op \\\"fly\\\""),
        (line(r#"{"op":"report_training"}"#), "\\\"step\\\" must be"),
        (
            line(r#"{"op":"report_training","step":-1,"metrics":{}}"#),
            "non-negative integer",
        ),
        (
            line(r#"{"op":"report_training","step":1.5,"metrics":{}}"#),
            "non-negative integer",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":[]}"#),
            "\\\"metrics\\\" must be a JSON object",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":"low"}}"#),
            "metric \\\"loss\\\" must be a number",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":null}}"#),
            "must be a number",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":{"a":1}}}"#),
            "must be a number",
        ),
        (line(&many_metrics), "at most 1000 metrics per report"),
        (
            built(
                r#"{"op":"report_training","step":1,"metrics":{""#,
                "n",
                300,
                r#"":1}}"#,
            ),
            "must be 1 to 256 bytes long",
        ),
        (
            line(r#"{"op":"report_training","step":0,"metrics":{}}"#),
            "report steps in increasing order",
        ),
        (
            line(r#"{"op":"report_validation","step":1}"#),
            "\\\"metrics\\\" must be",
        ),
        (line(r#"{"op":"checkpoint_start"}"#), "\\\"step\\\" must be"),
        (
            line(r#"{"op":"checkpoint_start","step":"1"}"#),
            "\\\"step\\\" must be",
        ),
        (
            line(r#"{"op":"checkpoint_end"}"#),
            "\\\"uuid\\\" must be a string",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"not-open"}"#),
            "is not open in this allocation",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"../../../etc","step":1}"#),
            "is not open in this allocation",
        ),
        (
            line(
                r#"{"op":"checkpoint_end","uuid":"0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11","step":1}"#,
            ),
            "is not open in this allocation",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"x","metadata":[]}"#),
            "\\\"metadata\\\" must be a JSON object",
        ),
        (
            built(
                r#"{"op":"checkpoint_end","uuid":"x","metadata":{"a":""#,
                "x",
                70_000,
                r#""}}"#,
            ),
            "at most 65536",
        ),
        (
            line(r#"{"op":"checkpoint_abort"}"#),
            "\\\"uuid\\\" must be a string",
        ),
        (
            built("", "x", 2 * 1024 * 1024, ""),
            "longer than 1048576 bytes",
        ),
        (line("INVALID_UTF8"), "not valid UTF-8"),
    ]
}

#[test]
fn hostile_harness_requests_get_their_error_and_a_flood_of_output_is_cut_to_the_budget() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let context = cluster.dir.path().join("raw-trial");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("raw.py"), RAW_TRIAL).unwrap();
    let table = harness_table();
    let requests: Vec<&Value> = table.iter().map(|(request, _)| request).collect();
    std::fs::write(
        context.join("requests.json"),
        serde_json::to_vec(&requests).unwrap(),
    )
    .unwrap();
    let config = example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[("python3 train.py", "python3 raw.py")],
    );
    let id = cluster.create_experiment(&config, &context);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let logs = cluster.cli_ok(&["trial", "logs", &cluster.first_trial(id).to_string()]);
    for (index, (request, expected)) in table.iter().enumerate() {
        let prefix = format!("reply {index}: ");
        let reply = logs
            .lines()
            .find_map(|l| l.split_once(&prefix).map(|(_, reply)| reply))
            .unwrap_or_else(|| panic!("no reply to request {index}:\n{logs}"));
        assert!(
            reply.contains("\"ok\":false") && reply.contains(expected),
            "request {index} ({request}) got {reply}, not {expected:?}"
        );
    }
    assert!(
        logs.lines()
            .any(|l| l.contains("good:") && l.contains("\"ok\":true")),
        "the connection stays usable after every refusal:\n{logs}"
    );
    assert!(
        logs.lines().any(|l| l.contains("ninth extra connection:")
            && l.contains("more than 8 harness connections")),
        "{logs}"
    );
    let shipped = logs.lines().filter(|l| l.contains("flood ")).count() as u64;
    let dropped: u64 = logs
        .lines()
        .filter_map(|l| {
            l.split_once(" lines of output dropped")?
                .0
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!("flood of 50000 lines: {shipped} shipped, {dropped} dropped");
    assert!(
        shipped < 50_000 && dropped > 0,
        "shipped {shipped}, dropped {dropped}:\n{}",
        &logs[logs.len().saturating_sub(2000)..]
    );
    assert_eq!(
        shipped + dropped,
        50_000,
        "every line is shipped or counted as dropped"
    );
    // Nothing the refused requests named was created.
    let checkpoints = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    assert_eq!(checkpoints, json!([]));
}
