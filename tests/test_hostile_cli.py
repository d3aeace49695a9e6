"""The commands on hostile input: an output that is one of the inputs, users' models that fail after
the one-batch check, Ctrl+C, NaN results. Each case ends with its exit code, one line on stderr (no
traceback, no control character) and every input byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_io import assert_one_line, digests
from hostile_models import AFTER_THE_CHECK, FROM_THE_START

from latentlab.cli import main
from latentlab.core.files.checkpoint import save_checkpoint
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model

MODELS = Path(__file__).resolve().parent / "hostile_models.py"


def cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An npz dataset, a checkpoint that records it, a user's model weights: what outputs may not replace."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    data = folder / "data.npz"
    np.savez(data, x=rng.random((40, 8, 8), dtype=np.float32), y=rng.integers(0, 3, 40))
    ckpt = save_checkpoint(folder / "model.safetensors",
                           build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), seed=0),
                           dataset=f"npz:{data}")
    from latentlab.core.files.model_spec import load_model, save_weights

    model = load_model(f"{MODELS}:good")
    model.latent_shape = (2,)
    weights = save_weights(folder / "weights.safetensors", model, model_spec=f"{MODELS}:good")
    return {"data": data, "ckpt": ckpt, "weights": weights}


def alias(tmp_path, target: Path, how: str, suffix: str) -> Path:
    """Another name for `target`: itself, through '..', a symlink or a hard link (with `suffix`)."""
    if how == "same":
        return target
    if how == "dotdot":
        return target.parent / ".." / target.parent.name / target.name
    link = tmp_path / f"{how}{suffix}"
    (os.symlink if how == "symlink" else os.link)(target, link)
    return link


HOW = ["same", "dotdot", "symlink", "hardlink"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("case", ["encode_dataset", "encode_recorded_dataset", "encode_checkpoint",
                                  "train_dataset", "train_weights", "train_model_checkpoint"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, capsys, inputs, case, how):
    data, ckpt, weights = inputs["data"], inputs["ckpt"], inputs["weights"]
    before = digests(*inputs.values(), MODELS)
    if case == "encode_dataset":
        args = ["encode", ckpt, "--dataset", f"npz:{data}", "--out", alias(tmp_path, data, how, ".npz")]
    elif case == "encode_recorded_dataset":   # the checkpoint names the dataset; --dataset not given
        args = ["encode", ckpt, "--out", alias(tmp_path, data, how, ".npz")]
    elif case == "encode_checkpoint":
        if how in ("same", "dotdot"):
            pytest.skip("a checkpoint's own name is no table name (.csv or .npz)")
        args = ["encode", ckpt, "--dataset", "digits", "--out", alias(tmp_path, ckpt, how, ".csv")]
    elif case == "train_dataset":
        if how in ("same", "dotdot"):
            pytest.skip("the dataset's own name has no .safetensors suffix (see the suffix test)")
        args = ["train", "--dataset", f"npz:{data}", "--out", alias(tmp_path, data, how, ".safetensors"), "--epochs", "1"]
    elif case == "train_weights":
        args = ["train", "--model", f"{MODELS}:good", "--weights", weights, "--dataset", "digits", "--epochs", "1",
                "--out", alias(tmp_path, weights, how, ".safetensors")]
    else:
        args = ["train", "--model", ckpt, "--dataset", "digits", "--epochs", "1",
                "--out", alias(tmp_path, ckpt, how, ".safetensors")]
    code, err = cli(capsys, *args)
    assert code == 2
    assert_one_line(err, "--out", "write the output elsewhere")
    assert digests(*inputs.values(), MODELS) == before


@pytest.mark.parametrize("out", ["model.pt", "data.npz", "model", "model.safetensors.tmp"])
def test_train_out_must_be_safetensors(tmp_path, capsys, out):
    code, err = cli(capsys, "train", "--dataset", "digits", "--out", tmp_path / out, "--epochs", "1")
    assert code == 2
    assert_one_line(err, ".safetensors")
    assert list(tmp_path.iterdir()) == []


# ----- users' models that fail after the one-batch check ---------------------------------------------

@pytest.mark.parametrize("command", ["eval", "encode"])
@pytest.mark.parametrize("name", list(AFTER_THE_CHECK))
def test_a_model_failing_after_the_check_is_one_sentence(tmp_path, capsys, command, name):
    out = tmp_path / "table.csv"
    args = ["--model", f"{MODELS}:{name}", "--dataset", "digits"]
    args += ["--iw-samples", "2"] if command == "eval" else ["--out", out]
    before = digests(MODELS)
    code, err = cli(capsys, command, *args)
    assert code == 2
    line = assert_one_line(err, *AFTER_THE_CHECK[name])
    assert "second line" not in line   # only the first line of the model's message
    assert not out.exists() and digests(MODELS) == before


@pytest.mark.parametrize("name", list(FROM_THE_START))
def test_a_model_failing_from_the_start_is_one_sentence(capsys, name):
    code, err = cli(capsys, "eval", "--model", f"{MODELS}:{name}", "--dataset", "digits", "--iw-samples", "0")
    assert code == 2
    assert_one_line(err, *FROM_THE_START[name])


def test_a_model_without_parameters_is_evaluated_and_encoded(tmp_path, capsys):
    code, err = cli(capsys, "eval", "--model", f"{MODELS}:no_parameters", "--dataset", "digits", "--iw-samples", "2")
    assert code == 0, err
    out = tmp_path / "t.npz"
    code, err = cli(capsys, "encode", "--model", f"{MODELS}:no_parameters", "--dataset", "digits", "--out", out)
    assert code == 0 and out.exists(), err


# ----- Ctrl+C --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "encode", "eval"])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, capsys, monkeypatch, command):
    import latentlab.core.data.specs as specs

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(specs, "load_dataset", interrupted)
    out = tmp_path / ("m.safetensors" if command == "train" else "t.csv")
    args = {"train": ["train", "--dataset", "digits", "--out", out],
            "encode": ["encode", "--model", f"{MODELS}:good", "--dataset", "digits", "--out", out],
            "eval": ["eval", "--model", f"{MODELS}:good", "--dataset", "digits"]}[command]
    code, err = cli(capsys, *args)
    assert code == 130
    assert_one_line(err, "interrupted")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_eval_is_one_line(tmp_path):
    """A real SIGINT while the model computes: exit 130, one line, no traceback."""
    marker = tmp_path / "ready"
    model = tmp_path / "slow.py"
    model.write_text(f"import time, pathlib, sys\nsys.path.insert(0, {str(MODELS.parent)!r})\n"
                     "from hostile_models import Small\n"
                     "class Slow(Small):\n"
                     "    def later(self, mu, n):\n"
                     f"        if n > 4:\n            pathlib.Path({str(marker)!r}).touch()\n            time.sleep(60)\n"
                     "        return mu\n"
                     "def make():\n    return Slow()\n")
    proc = subprocess.Popen([sys.executable, "-m", "latentlab", "eval", "--model", f"{model}:make", "--dataset", "digits"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), proc.communicate(timeout=10)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert_one_line(err, "interrupted")


def test_nan_results_are_a_sentence_not_a_number(capsys):
    code, err = cli(capsys, "eval", "--model", f"{MODELS}:nan_after_the_check", "--dataset", "digits", "--iw-samples", "0")
    assert code == 2
    assert_one_line(err, "NaN")


def test_a_streamed_encode_never_replaces_its_dataset(tmp_path, capsys, inputs):
    """The Parquet writer (and every torchrun encode) checks its output against the inputs too: an npz
    dataset whose file is named like the table is refused, and so is a table inside a dataset's folder."""
    data = tmp_path / "data.parquet"
    data.write_bytes(inputs["data"].read_bytes())   # an npz file, named like a table
    before = digests(data)
    code, err = cli(capsys, "encode", inputs["ckpt"], "--dataset", f"npz:{data}", "--out", data)
    assert code == 2 and digests(data) == before
    assert_one_line(err, "never replaces its input")
    folder = tmp_path / "classes"
    for c in range(2):
        (folder / str(c)).mkdir(parents=True)
    image = folder / "0" / "a.parquet"   # a file of the dataset's folder (what a class folder holds is data)
    image.write_bytes(b"data")
    code, err = cli(capsys, "encode", inputs["ckpt"], "--dataset", f"images:{folder}", "--out", image)
    assert code == 2 and image.read_bytes() == b"data"
    assert_one_line(err, "inside the dataset's folder")
    code, err = cli(capsys, "encode", inputs["ckpt"], "--dataset", f"hf:{folder}", "--out", folder / "new.parquet")
    assert code == 2 and not (folder / "new.parquet").exists()   # a new table in an hf: folder would be read as data
    assert_one_line(err, "inside the dataset's folder")
