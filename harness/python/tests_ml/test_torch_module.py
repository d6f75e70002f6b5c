"""baton.torch.save and load on their own: several objects, wrappers, the AMP scaler, errors."""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import numpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import baton.torch  # noqa: E402


def net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).pow(2).mean().backward()
        optimizer.step()


class TorchModuleTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bt-torch-"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_several_named_models_and_optimizers_round_trip(self) -> None:
        generator, critic = net(), net()
        g_opt = torch.optim.SGD(generator.parameters(), lr=0.1, momentum=0.9)
        c_opt = torch.optim.Adam(critic.parameters(), lr=0.01)
        train(generator, g_opt)
        train(critic, c_opt)
        baton.torch.save(
            self.dir, models={"g": generator, "c": critic}, optimizers={"g": g_opt, "c": c_opt},
            extra={"epoch": 4}, steps_completed=12,
        )
        g2, c2 = net(), net()
        g2_opt = torch.optim.SGD(g2.parameters(), lr=0.1, momentum=0.9)
        c2_opt = torch.optim.Adam(c2.parameters(), lr=0.01)
        restored = baton.torch.load(
            self.dir, models={"g": g2, "c": c2}, optimizers={"g": g2_opt, "c": c2_opt}
        )
        self.assertEqual(restored, {"steps_completed": 12, "extra": {"epoch": 4}})
        for a, b in ((generator, g2), (critic, c2)):
            for p, q in zip(a.parameters(), b.parameters()):
                self.assertTrue(torch.equal(p, q))
        self.assertEqual(str(c_opt.state_dict()), str(c2_opt.state_dict()))

    def test_a_loaded_state_trains_on_after_its_file_is_gone_and_leaves_the_file_unchanged(
        self,
    ) -> None:
        # load memory-maps the file: the optimizer's state may stay backed by it, copy-on-write.
        model, twin = net(), net()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        train(model, opt)
        baton.torch.save(self.dir, models=model, optimizers=opt, steps_completed=3)
        file = self.dir / baton.torch.STATE_FILE
        saved = file.read_bytes()
        twin_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
        baton.torch.load(self.dir, models=twin, optimizers=twin_opt)
        torch.manual_seed(5)
        train(twin, twin_opt)
        self.assertEqual(file.read_bytes(), saved, "training never writes through to the file")
        file.unlink()
        torch.manual_seed(5)
        train(model, opt)
        for p, q in zip(model.parameters(), twin.parameters()):
            self.assertTrue(torch.equal(p, q))
        train(twin, twin_opt)

    def test_wrapped_models_are_stored_without_module_prefix_and_load_either_way(self) -> None:
        model = net()
        baton.torch.save(self.dir, models=torch.nn.DataParallel(model), steps_completed=1)
        stored = torch.load(self.dir / baton.torch.STATE_FILE)["models"]["default"]
        self.assertTrue(all(not key.startswith("module.") for key in stored), list(stored))
        plain, wrapped = net(), torch.nn.DataParallel(net())
        baton.torch.load(self.dir, models=plain)
        baton.torch.load(self.dir, models=wrapped)
        for p, q, r in zip(model.parameters(), plain.parameters(), wrapped.module.parameters()):
            self.assertTrue(torch.equal(p, q) and torch.equal(p, r))

    def test_a_state_saved_with_module_prefixes_elsewhere_loads(self) -> None:
        model = net()
        prefixed = {f"module.{k}": v for k, v in model.state_dict().items()}
        baton.torch.save(self.dir, models=model, steps_completed=1)
        state = torch.load(self.dir / baton.torch.STATE_FILE)
        state["models"]["default"] = prefixed
        torch.save(state, self.dir / baton.torch.STATE_FILE)
        other = net()
        baton.torch.load(self.dir, models=other)
        for p, q in zip(model.parameters(), other.parameters()):
            self.assertTrue(torch.equal(p, q))

    def test_scaler_scheduler_and_rng_states_are_restored(self) -> None:
        model = net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        for _ in range(5):
            optimizer.step()
            scheduler.step()
        scaler.scale(torch.tensor(1.0))
        scaler.update(512.0)
        random.seed(1)
        numpy.random.seed(2)
        torch.manual_seed(3)
        baton.torch.save(
            self.dir, models=model, optimizers=optimizer, lr_schedulers=scheduler, scaler=scaler,
            steps_completed=5,
        )
        expected = (random.random(), float(numpy.random.rand()), torch.rand(1).item())
        random.seed(9)
        numpy.random.seed(9)
        torch.manual_seed(9)
        optimizer2 = torch.optim.SGD(net().parameters(), lr=0.1)
        scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=2, gamma=0.5)
        scaler2 = torch.amp.GradScaler("cpu")
        baton.torch.load(
            self.dir, optimizers=optimizer2, lr_schedulers=scheduler2, scaler=scaler2,
            map_location=lambda storage, _location: storage,
        )
        self.assertEqual(scheduler2.get_last_lr(), scheduler.get_last_lr())
        self.assertEqual(scaler2.get_scale(), 512.0)
        self.assertEqual((random.random(), float(numpy.random.rand()), torch.rand(1).item()), expected)

    def test_missing_entries_and_foreign_files_are_named(self) -> None:
        baton.torch.save(self.dir, models={"g": net()}, steps_completed=1)
        with self.assertRaisesRegex(ValueError, r"no models entry 'd' \(it has \['g'\]\)"):
            baton.torch.load(self.dir, models={"d": net()})
        with self.assertRaisesRegex(ValueError, "no AMP scaler state"):
            baton.torch.load(self.dir, scaler=torch.amp.GradScaler("cpu"))
        torch.save({"weights": 1}, self.dir / baton.torch.STATE_FILE)
        with self.assertRaisesRegex(ValueError, "is not a baton.torch/1 checkpoint"):
            baton.torch.load(self.dir)


if __name__ == "__main__":
    unittest.main()
