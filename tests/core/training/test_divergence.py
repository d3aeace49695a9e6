"""A run that diverges or is stopped never leaves anything worse than what was there."""

import numpy as np
import pytest

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.files.checkpoint import load_checkpoint
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training.loop import WEIGHT_LIMIT, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _last(model, data, **kw):
    cfg = TrainConfig(device="cpu", scatter_points=0, **kw)
    return list(train(model, data, cfg))[-1]


def test_exploding_but_finite_loss_is_divergence(digits):
    # Bernoulli logits with lr 1e3: the loss reaches 1e17 nats and stays finite.
    model = build_model(ModelConfig(image_shape=digits.image_shape, hidden=(64,)), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    last = _last(model, digits, epochs=2, lr=1e3)
    assert last.done and last.diverged and "diverged" in last.error
    assert last.history == ()  # no epoch record of the exploded run
    for k, v in model.state_dict().items():  # rolled back to the untrained weights
        assert np.array_equal(v.numpy(), before[k].numpy()), k


def test_a_healthy_run_is_not_divergence(digits):
    model = build_model(ModelConfig(image_shape=digits.image_shape, hidden=(64,)), seed=0)
    last = _last(model, digits, epochs=2, lr=1e-3)
    assert last.done and not last.diverged and last.error is None and len(last.history) == 2


def test_huge_weights_are_divergence(digits, monkeypatch):
    import latentlab.core.training.loop as training

    model = build_model(ModelConfig(image_shape=digits.image_shape, hidden=(32,)), seed=0)
    monkeypatch.setattr(training, "WEIGHT_LIMIT", 1e-3)  # every real weight is past it
    last = _last(model, digits, epochs=1)
    assert last.diverged and WEIGHT_LIMIT > 1e3


def test_the_weights_kept_are_those_of_the_last_check_that_passed(digits, monkeypatch):
    """Not the first weights, nor the bad ones: the state checked at the last snapshot (which is kept
    by overwriting one copy in place, snapshot after snapshot)."""
    import latentlab.core.training.loop as training

    model = build_model(ModelConfig(image_shape=digits.image_shape, hidden=(32,)), seed=0)
    first = {k: v.clone() for k, v in model.state_dict().items()}
    at_10 = None
    for snap in train(model, digits, TrainConfig(device="cpu", scatter_points=0, epochs=1, snapshot_every=5)):
        if snap.step == 10 and not snap.done:
            at_10 = {k: v.clone() for k, v in model.state_dict().items()}
            monkeypatch.setattr(training, "WEIGHT_LIMIT", 1e-3)   # the next check (step 15) fails
        last = snap
    assert last.diverged and "from step 10 were kept" in last.error
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), at_10[k].numpy()), k
    assert not all(np.array_equal(v.numpy(), first[k].numpy()) for k, v in model.state_dict().items())


def _train(capsys, *args):
    code = main(["train", "--dataset", "digits", "--hidden", "32", "--device", "cpu", *args])
    return code, capsys.readouterr().err


def test_a_diverged_run_leaves_an_existing_checkpoint_intact(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(capsys, "--out", str(out), "--epochs", "3")[0] == 0
    good = out.read_bytes()
    code, err = _train(capsys, "--out", str(out), "--epochs", "3", "--lr", "1e3")
    assert code == 1 and "diverged" in err and "left unchanged" in err
    assert out.read_bytes() == good
    assert len(load_checkpoint(out).history) == 3
    assert len(err.strip().splitlines()) == 2  # the banner line and one error sentence


def test_a_diverged_resume_onto_itself_keeps_the_file(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(capsys, "--out", str(out), "--epochs", "2")[0] == 0
    good = out.read_bytes()
    code, err = _train(capsys, "--out", str(out), "--resume", str(out), "--epochs", "2", "--lr", "1e4")
    assert code == 1 and out.read_bytes() == good


def test_a_diverged_fresh_run_saves_nothing(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    code, err = _train(capsys, "--out", str(out), "--epochs", "2", "--lr", "1e3")
    assert code == 1 and "Nothing was saved" in err and not out.exists()


def test_a_good_run_replaces_the_file_and_leaves_no_partial(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(capsys, "--out", str(out), "--epochs", "1")[0] == 0
    assert _train(capsys, "--out", str(out), "--epochs", "2")[0] == 0
    assert len(load_checkpoint(out).history) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_a_stopped_run_leaves_an_existing_checkpoint_intact(tmp_path, capsys, monkeypatch):
    import latentlab.core.training.loop as training

    out = tmp_path / "m.safetensors"
    assert _train(capsys, "--out", str(out), "--epochs", "2")[0] == 0
    good = out.read_bytes()
    real = training._train

    def stop_at_once(model, data, cfg, history, should_stop, *rest):
        return real(model, data, cfg, history, lambda: True, *rest)

    monkeypatch.setattr(training, "_train", stop_at_once)
    code, err = _train(capsys, "--out", str(out), "--epochs", "2")
    assert code == 130 and "left unchanged" in err and out.read_bytes() == good


def test_two_ctrl_c_exit_quietly_and_keep_the_file(tmp_path):
    """The first Ctrl+C stops after the step and saves; a second one during that save leaves at
    once. The save is made to hang here, so only the second Ctrl+C can end the run in time."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "digits", "--hidden", "32", "--epochs", "1", "--out", str(out), "--json"]) == 0
    good = out.read_bytes()
    hang = ("import sys, time\n"
            "import latentlab.core.files.atomic as atomic\n"
            "atomic.BackgroundWriter.flush = lambda self: time.sleep(120)\n"
            "from latentlab.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", hang, "train", "--dataset", "digits", "--hidden", "32",
                             "--epochs", "1000000", "--out", str(out), "--device", "cpu"],
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert proc.stderr.readline().startswith("Training ")  # the loop has started
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)   # handled on its own (two signals pending at once would be one)
        assert proc.poll() is None   # the graceful stop is stuck in the save
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "stopped early" not in err
    assert out.read_bytes() == good
