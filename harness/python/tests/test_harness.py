"""Unit tests of the Python harness against an in-process fake agent."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import unittest
from pathlib import Path
from unittest import mock

from fake_agent import FakeAgent  # also puts harness/python on sys.path

import baton


class AgentTestCase(unittest.TestCase):
    """Starts a fake agent per test and points BATON_HARNESS_SOCKET at it."""

    agent_options: dict = {}

    def setUp(self) -> None:
        self.agent = FakeAgent(**self.agent_options)
        self.addCleanup(self.agent.close)
        patcher = mock.patch.dict(os.environ, {"BATON_HARNESS_SOCKET": self.agent.socket_path})
        patcher.start()
        self.addCleanup(patcher.stop)

    def requests(self, op: str) -> list[dict]:
        return [r for r in self.agent.requests if r.get("op") == op]


class InitTest(AgentTestCase):
    agent_options = {
        "hparams": {"learning_rate": 0.05, "batch_size": 16},
        "start_step": 50,
        "latest_checkpoint": "/restore/here",
        "max_length": 120,
    }

    def test_init_returns_the_trial_description(self) -> None:
        with baton.init() as ctx:
            self.assertEqual(ctx.trial_id, 7)
            self.assertEqual(ctx.experiment_id, 3)
            self.assertEqual(ctx.allocation_id, "alloc-1")
            self.assertEqual(ctx.hparams, {"learning_rate": 0.05, "batch_size": 16})
            self.assertEqual(ctx.max_length, 120)
            self.assertEqual(ctx.start_step, 50)
            self.assertEqual(ctx.latest_checkpoint, Path("/restore/here"))
            self.assertIn("trial_id=7", repr(ctx))
        self.assertEqual(self.agent.ops(), ["init"])

    def test_with_block_closes_the_connection(self) -> None:
        with baton.init() as ctx:
            pass
        with self.assertRaisesRegex(baton.HarnessError, "closed"):
            ctx.report_training(51, {"loss": 1.0})
        ctx.close()  # idempotent

    def test_fresh_start_has_no_checkpoint(self) -> None:
        self.agent.start_step = 0
        self.agent.latest_checkpoint = None
        ctx = baton.init()
        self.addCleanup(ctx.close)
        self.assertIsNone(ctx.latest_checkpoint)
        self.assertEqual(ctx.start_step, 0)


class NotATrialTest(unittest.TestCase):
    def test_missing_socket_variable(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "BATON_HARNESS_SOCKET"}
        with mock.patch.dict(os.environ, env, clear=True):
            with self.assertRaises(baton.HarnessError) as cm:
                baton.init()
        self.assertEqual(
            str(cm.exception), "BATON_HARNESS_SOCKET is not set: run this script as a Baton trial"
        )

    def test_socket_that_does_not_exist(self) -> None:
        with mock.patch.dict(os.environ, {"BATON_HARNESS_SOCKET": "/nonexistent/baton.sock"}):
            with self.assertRaisesRegex(baton.HarnessError, "cannot connect.*/nonexistent/baton.sock"):
                baton.init()


class ReportTest(AgentTestCase):
    agent_options = {"max_length": 30, "validation_period": 10, "checkpoint_period": 25}

    def setUp(self) -> None:
        super().setUp()
        self.ctx = baton.init()
        self.addCleanup(self.ctx.close)

    def test_directives_follow_the_agent(self) -> None:
        seen = {step: self.ctx.report_training(step, {"loss": 1.0 / step}) for step in range(1, 31)}
        self.assertEqual(seen[1], baton.Directive(validate=False, checkpoint=False, stop=False))
        self.assertEqual(seen[10], baton.Directive(validate=True, checkpoint=False, stop=False))
        self.assertEqual(seen[25], baton.Directive(validate=False, checkpoint=True, stop=False))
        self.assertEqual(seen[30], baton.Directive(validate=True, checkpoint=True, stop=True))
        self.assertIsInstance(seen[30].stop, bool)
        sent = self.requests("report_training")
        self.assertEqual([r["step"] for r in sent], list(range(1, 31)))
        self.assertEqual(sent[1]["metrics"], {"loss": 0.5})

    def test_suspend_answers_checkpoint_and_stop(self) -> None:
        self.agent.stop_at = 4
        self.assertFalse(self.ctx.report_training(3, {"loss": 1.0}).stop)
        d = self.ctx.report_training(4, {"loss": 1.0})
        self.assertTrue(d.checkpoint and d.stop)

    def test_report_validation(self) -> None:
        self.ctx.report_training(10, {"loss": 0.5})
        self.assertIsNone(self.ctx.report_validation(10, {"validation_loss": 0.25, "accuracy": 1}))
        self.assertEqual(
            self.requests("report_validation"),
            [{"op": "report_validation", "step": 10, "metrics": {"validation_loss": 0.25, "accuracy": 1}}],
        )

    def test_agent_error_is_raised_with_its_message(self) -> None:
        self.ctx.report_training(5, {"loss": 1.0})
        with self.assertRaisesRegex(baton.HarnessError, "step 5 does not increase"):
            self.ctx.report_training(5, {"loss": 1.0})
        # The connection stays usable after a refusal.
        self.assertFalse(self.ctx.report_training(6, {"loss": 1.0}).stop)
        self.agent.fail_next = "allocation is no longer current"
        with self.assertRaisesRegex(baton.HarnessError, "report_validation: allocation is no longer current"):
            self.ctx.report_validation(6, {"validation_loss": 1.0})

    def test_bad_metrics_are_refused_before_sending(self) -> None:
        with self.assertRaisesRegex(ValueError, "'loss' is nan"):
            self.ctx.report_training(1, {"loss": float("nan")})
        with self.assertRaisesRegex(TypeError, "'loss' must be a number"):
            self.ctx.report_training(1, {"loss": "low"})
        with self.assertRaisesRegex(TypeError, "step must be an int"):
            self.ctx.report_training(1.0, {"loss": 1.0})  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "step must be >= 1"):
            self.ctx.report_training(0, {"loss": 1.0})
        self.assertEqual(self.requests("report_training"), [])

    def test_numeric_scalars_are_converted(self) -> None:
        class Scalar:
            def __float__(self) -> float:
                return 0.125

        self.ctx.report_training(1, {"loss": Scalar()})
        self.assertEqual(self.requests("report_training")[0]["metrics"], {"loss": 0.125})

    def test_agent_closing_the_socket(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = str(self.agent.dir / "closing.sock")
        listener.bind(path)
        listener.listen(1)
        self.addCleanup(listener.close)

        def serve_init_then_close() -> None:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as rfile:
                rfile.readline()
                reply = {"ok": True, "trial_id": 1, "experiment_id": 1, "allocation_id": "a",
                         "hparams": {}, "max_length": 10, "start_step": 0, "latest_checkpoint": None}
                conn.sendall((json.dumps(reply) + "\n").encode())

        t = threading.Thread(target=serve_init_then_close, daemon=True)
        t.start()
        with mock.patch.dict(os.environ, {"BATON_HARNESS_SOCKET": path}):
            ctx = baton.init()
        t.join()
        with self.assertRaisesRegex(baton.HarnessError, "closed the harness socket|lost the connection"):
            ctx.report_training(1, {"loss": 1.0})
        ctx.close()


INIT_REPLY = {"ok": True, "trial_id": 1, "experiment_id": 1, "allocation_id": "a", "hparams": {},
              "max_length": 10, "start_step": 0, "latest_checkpoint": None}


class ReconnectTest(unittest.TestCase):
    """An agent daemon that restarts: the trial waits for the new one and repeats its request."""

    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = str(self.dir / "restart.sock")

    def _serve(self, replies: list[dict], seen: list[dict]) -> threading.Thread:
        """Listen on the socket path, answer one connection with `replies`, then close."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(1)

        def run() -> None:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as rfile:
                for reply in replies:
                    seen.append(json.loads(rfile.readline()))
                    conn.sendall((json.dumps(reply) + "\n").encode())
            listener.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def test_a_restarted_agent_gets_init_then_the_repeated_request(self) -> None:
        old = self._serve([INIT_REPLY], [])
        env = {"BATON_HARNESS_SOCKET": self.path, "BATON_HARNESS_RECONNECT_SECONDS": "10"}
        with mock.patch.dict(os.environ, env):
            ctx = baton.init()
        old.join()
        second: list[dict] = []
        directive = {"ok": True, "validate": True, "checkpoint": False, "stop": False}

        def restart_later() -> None:
            threading.Event().wait(0.5)
            self._serve([INIT_REPLY, directive], second)

        threading.Thread(target=restart_later, daemon=True).start()
        d = ctx.report_training(1, {"loss": 1.0})
        ctx.close()
        self.assertTrue(d.validate)
        self.assertEqual([r["op"] for r in second], ["init", "report_training"])
        self.assertEqual(second[1]["step"], 1)

    def test_no_agent_within_the_window_is_a_clear_error(self) -> None:
        old = self._serve([INIT_REPLY], [])
        env = {"BATON_HARNESS_SOCKET": self.path, "BATON_HARNESS_RECONNECT_SECONDS": "0.5"}
        with mock.patch.dict(os.environ, env):
            ctx = baton.init()
        old.join()
        with self.assertRaisesRegex(baton.HarnessError, "no agent came back .* within 0.5 s"):
            ctx.report_training(1, {"loss": 1.0})
        ctx.close()

    def test_a_bad_window_is_refused(self) -> None:
        env = {"BATON_HARNESS_SOCKET": self.path, "BATON_HARNESS_RECONNECT_SECONDS": "soon"}
        with mock.patch.dict(os.environ, env):
            with self.assertRaisesRegex(baton.HarnessError, "must be a number of seconds, got 'soon'"):
                baton.init()


class CheckpointTest(AgentTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.ctx = baton.init()
        self.addCleanup(self.ctx.close)

    def test_success_ends_the_checkpoint(self) -> None:
        with self.ctx.checkpoint(25, metadata={"framework": "torch"}) as path:
            self.assertIsInstance(path, Path)
            self.assertEqual(list(path.iterdir()), [])
            (path / "weights.bin").write_bytes(b"\x00" * 10)
            (path / "sub").mkdir()
            (path / "sub" / "opt.json").write_text("{}")
        self.assertEqual(self.agent.ops(), ["init", "checkpoint_start", "checkpoint_end"])
        end = self.requests("checkpoint_end")[0]
        self.assertEqual(end["metadata"], {"framework": "torch"})
        self.assertEqual(self.requests("checkpoint_start")[0]["step"], 25)
        meta = json.loads((path / "metadata.json").read_text())
        self.assertEqual(meta["step"], 25)
        self.assertEqual(meta["uuid"], end["uuid"])
        self.assertEqual(meta["metadata"], {"framework": "torch"})
        self.assertEqual([f["path"] for f in meta["files"]], ["sub/opt.json", "weights.bin"])
        self.assertEqual(self.agent.committed(), {25: path})

    def test_metadata_defaults_to_empty(self) -> None:
        with self.ctx.checkpoint(1) as path:
            (path / "x").write_text("x")
        self.assertEqual(self.requests("checkpoint_end")[0]["metadata"], {})

    def test_exception_aborts_and_propagates(self) -> None:
        with self.assertRaisesRegex(OSError, "disk full"):
            with self.ctx.checkpoint(25) as path:
                (path / "partial").write_text("half")
                raise OSError("disk full")
        self.assertEqual(self.agent.ops(), ["init", "checkpoint_start", "checkpoint_abort"])
        start_reply_uuid = self.requests("checkpoint_abort")[0]["uuid"]
        self.assertEqual(self.agent.checkpoints[start_reply_uuid]["state"], "aborted")
        self.assertFalse(path.exists())
        self.assertEqual(self.agent.committed(), {})

    def test_trial_written_metadata_json_is_refused_before_end(self) -> None:
        with self.assertRaisesRegex(baton.HarnessError, "metadata.json.*written by Baton"):
            with self.ctx.checkpoint(25) as path:
                (path / "metadata.json").write_text("{}")
        self.assertNotIn("checkpoint_end", self.agent.ops())
        self.assertEqual(self.agent.ops()[-1], "checkpoint_abort")

    def test_agent_refusal_of_end_is_raised_and_aborted(self) -> None:
        with self.assertRaisesRegex(baton.HarnessError, "checkpoint_end: .*escapes the checkpoint"):
            with self.ctx.checkpoint(25) as path:
                os.symlink("/etc/passwd", path / "passwd")
        self.assertEqual(self.agent.ops()[-2:], ["checkpoint_end", "checkpoint_abort"])
        self.assertEqual(self.agent.committed(), {})

    def test_start_refused(self) -> None:
        self.agent.fail_next = "no space left on the agent"
        with self.assertRaisesRegex(baton.HarnessError, "checkpoint_start: no space left"):
            with self.ctx.checkpoint(25):
                self.fail("the block must not run")

    def test_unserializable_metadata(self) -> None:
        with self.assertRaisesRegex(TypeError, "JSON-serializable"):
            with self.ctx.checkpoint(25, metadata={"f": object()}):
                self.fail("the block must not run")
        self.assertEqual(self.agent.ops(), ["init"])


if __name__ == "__main__":
    unittest.main()
