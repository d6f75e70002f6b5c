//! Framework trials on a real cluster: moved every way, they end bitwise like an uninterrupted
//! run, and their final checkpoint, downloaded with the CLI, loads with stock framework calls in
//! a process where `baton` cannot be imported.

use std::path::PathBuf;
use std::time::Duration;

use baton_cluster_tests::ml::{COMPARE_TORCH, ml_python, run_isolated};
use baton_cluster_tests::moving::move_three_ways;
use baton_cluster_tests::{TestCluster, example_config, repo_root};
use serde_json::Value;

/// Loads a downloaded torch_mlp checkpoint as its README says and prints the probe prediction.
const LOAD_TORCH: &str = r#"
import sys, torch
sys.path.insert(0, sys.argv[2])  # the example's model.py: the architecture is code
from model import make_model, probe_input
state = torch.load(sys.argv[1] + "/state_dict.pth")
model = make_model()
model.load_state_dict(state["models"]["default"])
model.eval()
with torch.no_grad():
    print(repr(model(probe_input()).item()))
"#;

/// Compares the HDF5 datasets of two Keras checkpoints' weights and optimizer files, bit for bit.
const COMPARE_KERAS: &str = r#"
import sys, h5py
try:
    import baton
    sys.exit("baton must not be importable here")
except ImportError:
    pass

def datasets(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None)
    return out

compared = 0
for name in ("model.weights.h5", "optimizer.weights.h5"):
    left, right = (datasets(d + "/" + name) for d in sys.argv[1:3])
    if left != right:
        sys.exit(f"{name} differs at {sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))[:5]}")
    compared += len(left)
print(f"identical: {compared} datasets")
"#;

/// Loads a downloaded keras_mlp checkpoint with stock Keras and h5py, as its README says, and
/// prints the probe prediction and the optimizer's iteration count.
const LOAD_KERAS: &str = r#"
import sys, json, os
os.environ["KERAS_BACKEND"] = "tensorflow"
import h5py, keras
sys.path.insert(0, sys.argv[2])
from model import probe_input
ckpt = sys.argv[1]
model = keras.models.model_from_json(open(ckpt + "/model.json").read())
model.load_weights(ckpt + "/model.weights.h5")
with h5py.File(ckpt + "/optimizer.weights.h5") as f:
    optimizer = keras.optimizers.deserialize(json.loads(f.attrs["config"]))
    optimizer.build(model.trainable_variables)
    optimizer.load_own_variables({key: f[key][()] for key in f.keys()})
print(repr(float(model(probe_input(), training=False).numpy()[0, 0])), int(optimizer.iterations.numpy()))
"#;

/// Compares every variable of two SavedModel checkpoints, bit for bit.
const COMPARE_SAVED_MODELS: &str = r#"
import sys, tensorflow as tf
try:
    import baton
    sys.exit("baton must not be importable here")
except ImportError:
    pass
left, right = (
    {name: reader.get_tensor(name).tobytes() for name in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in name}
    for reader in (tf.train.load_checkpoint(d + "/saved_model/variables/variables") for d in sys.argv[1:3])
)
if left != right:
    sys.exit(f"variables differ at {sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))[:5]}")
print(f"identical: {len(left)} variables")
"#;

/// Serves a downloaded tf_savedmodel checkpoint with `tf.saved_model.load` and prints the probe.
const SERVE_SAVED_MODEL: &str = r#"
import sys, tensorflow as tf
sys.path.insert(0, sys.argv[2])
from data import probe_input
served = tf.saved_model.load(sys.argv[1] + "/saved_model").signatures["serving_default"]
print(repr(float(list(served(x=tf.constant(probe_input())).values())[0][0, 0])))
"#;

fn framework_config(cluster: &TestCluster, example: &str, step_seconds: &str) -> String {
    example_config(
        example,
        "single.yaml",
        &cluster.storage(),
        &[
            ("python3 train.py", &format!("{} train.py", ml_python())),
            (
                "  seed: 7\n",
                &format!("  seed: 7\n  step_seconds: {step_seconds}\n"),
            ),
        ],
    )
}

/// A framework example's moved run, checked against an undisturbed one and downloaded.
struct Exported {
    cluster: TestCluster,
    /// The moved experiment.
    moved: u64,
    /// The trial's own metadata of the final checkpoint.
    metadata: Value,
    /// Where the CLI downloaded the final checkpoint.
    dir: PathBuf,
    /// The example's directory (its data and model code).
    context: PathBuf,
}

/// Runs `example` undisturbed, then again while it is moved three ways on two agents; checks with
/// `compare` (a script given both final checkpoints) that they are bitwise identical, that
/// `checkpoint describe` names `framework` and `format`, and downloads the moved run's final
/// checkpoint with the CLI.
fn moved_compared_and_downloaded(
    example: &str,
    compare: &str,
    framework: &str,
    format: &str,
) -> Exported {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let context = repo_root().join("examples").join(example);
    let latest = |id: u64| -> String {
        cluster.trial(cluster.first_trial(id))["latest_checkpoint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let reference =
        cluster.create_experiment(&framework_config(&cluster, example, "0.0"), &context);
    cluster.wait_for_experiment(reference, "COMPLETED", Duration::from_secs(180));
    let moved = cluster.create_experiment(&framework_config(&cluster, example, "0.05"), &context);
    move_three_ways(&cluster, moved, cluster.first_trial(moved));

    let storage = cluster.storage();
    let (reference_dir, moved_dir) = (storage.join(latest(reference)), storage.join(latest(moved)));
    let compared = run_isolated(compare, &[&reference_dir, &moved_dir]);
    assert!(compared.starts_with("identical: "), "{compared}");
    eprintln!("{example} moved three ways: {}", compared.trim());

    let uuid = latest(moved);
    let described = cluster.json(&["checkpoint", "describe", &uuid]);
    let metadata = described["metadata"]["metadata"].clone();
    assert_eq!(metadata["framework"], framework, "{described:#}");
    assert_eq!(metadata["format"], format);
    assert!(
        metadata["python_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let text = cluster.cli_ok(&["checkpoint", "describe", &uuid]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Framework") && l.contains(&format!("{framework} ({format})"))),
        "the table shows the framework: {text}"
    );
    let dir = cluster.dir.path().join("exported");
    cluster.cli_ok(&["checkpoint", "download", &uuid, "-o", dir.to_str().unwrap()]);
    Exported {
        cluster,
        moved,
        metadata,
        dir,
        context,
    }
}

#[test]
fn a_torch_trial_moved_three_ways_ends_bitwise_like_an_uninterrupted_one_and_exports() {
    let run = moved_compared_and_downloaded("torch_mlp", COMPARE_TORCH, "torch", "baton.torch/1");
    assert!(
        run.metadata["torch_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let prediction: f64 = run_isolated(LOAD_TORCH, &[&run.dir, &run.context])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        Some(prediction),
        run.metadata["probe_prediction"].as_f64(),
        "stock torch predicts what the trial did"
    );
}

#[test]
fn a_keras_trial_moved_three_ways_ends_bitwise_like_an_uninterrupted_one_and_exports() {
    let run = moved_compared_and_downloaded("keras_mlp", COMPARE_KERAS, "keras", "baton.keras/1");
    assert!(
        run.metadata["keras_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let loaded = run_isolated(LOAD_KERAS, &[&run.dir, &run.context]);
    let (probe, iterations) = loaded.trim().rsplit_once(' ').unwrap();
    assert_eq!(
        iterations, "200",
        "Adam's iteration count travels with the checkpoint"
    );
    let trial = run.cluster.first_trial(run.moved).to_string();
    let logs = run.cluster.cli_ok(&["trial", "logs", &trial]);
    let said = logs
        .lines()
        .find_map(|l| {
            l.split_once("probe prediction ")
                .map(|(_, p)| p.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the trial printed its prediction:\n{logs}"));
    assert_eq!(probe, said, "stock Keras predicts what the trial did");
}

#[test]
fn a_tensorflow_trial_moved_three_ways_ends_bitwise_like_an_uninterrupted_one_and_serves() {
    let run = moved_compared_and_downloaded(
        "tf_savedmodel",
        COMPARE_SAVED_MODELS,
        "tensorflow",
        "baton.tensorflow/1",
    );
    let served: f64 = run_isolated(SERVE_SAVED_MODEL, &[&run.dir, &run.context])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        Some(served),
        run.metadata["probe_prediction"].as_f64(),
        "the served signature predicts what the trial did"
    );
}
