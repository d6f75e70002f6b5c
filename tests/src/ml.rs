//! The framework environment for tests of PyTorch, TensorFlow and Keras trials, and scripts run
//! in it where `baton` cannot be imported.

use std::path::Path;
use std::process::Command;

/// The Python of the framework environment (scripts/ml-venv.sh); the tests fail without it.
pub fn ml_python() -> String {
    std::env::var("BATON_ML_PYTHON").expect(
        "framework tests need PyTorch, TensorFlow and Keras: run scripts/test.sh, which makes their environment (scripts/ml-venv.sh) and sets BATON_ML_PYTHON",
    )
}

/// Runs `script` with the framework Python in isolated mode (no PYTHONPATH, no user site, so
/// `baton` is not importable) and returns its stdout; panics with its stderr on failure.
pub fn run_isolated(script: &str, args: &[&Path]) -> String {
    let output = Command::new(ml_python())
        .arg("-I")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Compares two `state_dict.pth` files tensor by tensor, bit for bit (RNG states aside).
pub const COMPARE_TORCH: &str = r#"
import sys, torch
try:
    import baton
    sys.exit("baton must not be importable here")
except ImportError:
    pass

def leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}/{key}")
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from leaves(value, f"{prefix}/{index}")
    elif isinstance(tree, torch.Tensor):
        yield prefix, (str(tree.dtype), tuple(tree.shape), tree.contiguous().numpy().tobytes())
    else:
        yield prefix, tree

a, b = (torch.load(path + "/state_dict.pth") for path in sys.argv[1:3])
compared = 0
for kind in ("models", "optimizers", "lr_schedulers"):
    left, right = dict(leaves(a[kind])), dict(leaves(b[kind]))
    if left != right:
        differing = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
        sys.exit(f"{kind} differ at {differing[:5]}")
    compared += sum(1 for value in left.values() if isinstance(value, tuple))
print(f"identical: {compared} tensors, step {a['steps_completed']}")
"#;
