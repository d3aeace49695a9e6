"""`torchrun ... -m latentlab train|encode` with two gloo ranks on the CPU, as a user starts it: the
same weights as one process on the global batch, the same table as one process, and every rank
ending, with the last complete checkpoint kept, when one rank dies or diverges."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from latentlab.cli import main
from latentlab.core.tables.table_reader import read_table

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun with gloo, tested on Linux"),
              pytest.mark.slow]   # seconds each; `-m "not slow"` skips them locally

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 240


def torchrun(*args, cwd, wait=True, nproc=2):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LATENTLAB_DEVICE": "cpu"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "--monitor-interval=0.2", "-m", "latentlab", *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=LIMIT_S)
    return proc.returncode, out, err


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker with RANK=rank among the launcher's children."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


def weights(path) -> dict:
    return {k: v for k, v in load_file(str(path)).items() if not k.startswith("__")}


@pytest.fixture(scope="module")
def odd_npz(tmp_path_factory):
    """801 training images: the last global batch of each epoch (33 rows) splits 16/17 between two
    ranks, so only a correctly weighted share reproduces the one-process step."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, x=(d.images[:1001] * 16).clip(0, 255).astype(np.uint8), y=d.target[:1001])
    return path


@pytest.fixture(scope="module")
def two_rank_run(odd_npz, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    common = ["--dataset", f"npz:{odd_npz}", "--epochs", "25", "--hidden", "32", "--latent-dim", "2",
              "--free-bits", "0.05", "--seed", "3", "--device", "cpu", "--json"]
    rc, out, err = torchrun("train", "--out", folder / "two.safetensors", "--batch-size", "32", *common, cwd=folder)
    assert rc == 0, err[-3000:]
    return folder, json.loads(out.strip().splitlines()[-1]), common


def test_two_ranks_end_with_the_weights_of_one_process_on_the_global_batch(two_rank_run, capsys):
    folder, result, common = two_rank_run
    assert (result["world_size"], result["batch_size"], result["global_batch_size"]) == (2, 32, 64)
    assert main(["train", "--out", str(folder / "one.safetensors"), "--batch-size", "64", *common]) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert single["world_size"] == 1 and single["global_batch_size"] == 64
    assert math.ceil(801 / 64) * 25 >= 300   # a few hundred optimiser steps
    two, one = weights(folder / "two.safetensors"), weights(folder / "one.safetensors")
    assert two.keys() == one.keys() and two
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-4, err_msg=name)
    assert result["test"]["elbo"] == pytest.approx(single["test"]["elbo"], abs=1e-3)


def test_two_rank_encode_writes_the_one_process_table(two_rank_run, odd_npz):
    folder, _, _ = two_rank_run
    ckpt = folder / "two.safetensors"
    rc, _, err = torchrun("encode", ckpt, "--dataset", f"npz:{odd_npz}", "--out", folder / "two.parquet",
                          "--batch-size", "100", cwd=folder)
    assert rc == 0, err[-3000:]
    assert main(["encode", str(ckpt), "--dataset", f"npz:{odd_npz}", "--out", str(folder / "one.csv"),
                 "--batch-size", "100", "--device", "cpu"]) == 0
    two, one = read_table(folder / "two.parquet"), read_table(folder / "one.csv")
    assert len(two) == len(one) == 1001
    for col in ("index", "split", "label"):
        np.testing.assert_array_equal(getattr(two, col), getattr(one, col))
    np.testing.assert_allclose(two.mu, one.mu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(two.logvar, one.logvar, rtol=1e-6, atol=1e-6)


def test_killing_one_rank_ends_the_other_and_keeps_the_last_checkpoint(tmp_path):
    from latentlab.core.files.checkpoint import load_checkpoint

    out = tmp_path / "run.safetensors"
    proc = torchrun("train", "--dataset", "digits", "--out", out, "--epochs", "100000", "--hidden", "32",
                    "--batch-size", "32", "--device", "cpu", cwd=tmp_path, wait=False)
    try:
        deadline = time.monotonic() + LIMIT_S
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert out.exists(), "no epoch was saved"
        victim = rank_pid(proc.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)   # a hang guard: the survivor must notice, not wait on gloo's timeout
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "lost contact with the other ranks" in err
    assert "[rank0]: Traceback" not in err and "[rank1]: Traceback" not in err
    ckpt = load_checkpoint(out)          # whole, and a checkpoint of this run
    assert len(ckpt.history) >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


NAN_MODEL = '''
import os
import torch
from torch import nn


class Net(nn.Module):
    """A VAE whose decoder breaks on rank 1 after a while, as a bad shard or a bad GPU would."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 4)
        self.dec = nn.Linear(2, 64)
        self.calls = 0

    def encode(self, x):
        h = self.enc(x.flatten(1))
        return h[:, :2], h[:, 2:]

    def decode(self, z):
        out = self.dec(z).view(-1, 1, 8, 8)
        if self.training:
            self.calls += 1
            if os.environ.get("RANK") == "1" and self.calls > 60:
                out = out * float("nan")
        return out


def make():
    torch.manual_seed(0)
    return Net()
'''


def test_a_divergence_on_one_rank_stops_both_with_the_last_good_weights(tmp_path):
    (tmp_path / "nan_model.py").write_text(NAN_MODEL)
    out = tmp_path / "tuned.safetensors"
    rc, _, err = torchrun("train", "--model", tmp_path / "nan_model.py:make", "--dataset", "digits", "--out", out,
                          "--epochs", "50", "--batch-size", "32", "--device", "cpu", cwd=tmp_path)
    assert rc != 0
    assert err.count("Training diverged at step") == 1, err[-3000:]   # said once, by rank 0
    assert "[rank0]: Traceback" not in err and "[rank1]: Traceback" not in err
    saved = weights(out)
    assert saved and all(np.isfinite(v).all() for v in saved.values())
