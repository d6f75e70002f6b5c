"""examples/tf_savedmodel as a trial against the fake agent: a resume is bitwise exact, and the
SavedModel serves its signature with tf.saved_model.load in a process where baton cannot be
imported."""

from __future__ import annotations

import json
import unittest

from example_trials import ExampleTrialTest

VARIABLES = r'''
import sys, json, tensorflow as tf
out = {}
for path in sys.argv[1:3]:
    reader = tf.train.load_checkpoint(path + "/saved_model/variables/variables")
    out[path] = {name: reader.get_tensor(name).tobytes().hex() for name in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in name}
a, b = out.values()
print(json.dumps({"same": a == b, "count": len(a), "differ": sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))[:5]}))
'''

SERVE = r'''
import sys, json, tensorflow as tf
try:
    import baton
    sys.exit("baton must not be importable")
except ImportError:
    pass
sys.path.insert(0, sys.argv[2])
from data import probe_input
served = tf.saved_model.load(sys.argv[1] + "/saved_model").signatures["serving_default"]
result = served(x=tf.constant(probe_input()))
print(json.dumps({"probe": float(list(result.values())[0][0, 0])}))
'''


class TensorflowResumeTest(ExampleTrialTest):
    EXAMPLE = "tf_savedmodel"
    HPARAMS = {"learning_rate": 0.005, "batch_size": 32, "seed": 7}

    def test_a_suspended_and_resumed_trial_ends_bitwise_like_an_uninterrupted_one(self) -> None:
        full, resumed = self.full_stopped_and_resumed()
        compared = json.loads(self.isolated(VARIABLES, full.committed()[120], resumed.committed()[120]))
        self.assertTrue(compared["same"], compared)
        self.assertGreater(compared["count"], 10)

    def test_the_saved_model_serves_its_signature_without_baton(self) -> None:
        agent = self.agent()
        self.run_trial(agent)
        final = agent.committed()[120]
        meta = self.trial_metadata(final)
        self.assertEqual((meta["framework"], meta["format"]), ("tensorflow", "baton.tensorflow/1"))
        served = json.loads(self.isolated(SERVE, final, self.example))
        self.assertEqual(served["probe"], meta["probe_prediction"])


if __name__ == "__main__":
    unittest.main()
