"""One rank of a torchrun job, checked by logic on the CPU: the environment read, NCCL and the GPU of
LOCAL_RANK on CUDA and gloo on the CPU, the shares of a batch, the collectives of the sharded loop on
a one-process gloo group (the stop flag agreed by an all-reduce), and a rank that leaves on its own
when no agreement comes after a stop signal."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from latentlab.core.data.specs import Dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training import distributed
from latentlab.core.training.distributed import STOP_EVERY, Group, Ranks, backend_for, rank_device, ranks_from_environ, share
from latentlab.core.training.loop import train as train_in_memory
from latentlab.core.training.sharded import train


def test_the_environment_torchrun_sets_is_read_and_checked():
    assert ranks_from_environ({}) is None
    assert ranks_from_environ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == Ranks(3, 8, 1)
    assert ranks_from_environ({"RANK": "0", "WORLD_SIZE": "1"}).main
    for bad in ({"RANK": "8", "WORLD_SIZE": "8"}, {"RANK": "x", "WORLD_SIZE": "2"}, {"RANK": "0", "WORLD_SIZE": "0"}):
        with pytest.raises(LatentLabError):
            ranks_from_environ(bad)


def test_nccl_and_the_local_gpu_on_cuda_gloo_on_the_cpu(monkeypatch):
    assert backend_for(torch.device("cuda", 3)) == "nccl"
    assert backend_for(torch.device("cpu")) == "gloo"
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("cuda"))
    assert rank_device("auto", 2, cuda_count=4) == torch.device("cuda", 2)
    with pytest.raises(LatentLabError, match="4 GPU.*LOCAL_RANK is 4"):
        rank_device("cuda", 4, cuda_count=4)
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("mps"))
    assert rank_device("auto", 0) == torch.device("cpu")
    with pytest.raises(LatentLabError, match="MPS"):
        rank_device("mps", 0)


def test_a_cuda_rank_joins_with_nccl_on_its_own_gpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda backend, **kw: calls.append((backend, kw["rank"], kw["world_size"])))
    group = Group(Ranks(5, 8, 1), torch.device("cuda", 1))
    assert calls == [("set_device", torch.device("cuda", 1)), ("nccl", 5, 8)]
    assert group.device == torch.device("cuda", 1) and not group.main


def test_shares_cover_a_batch_in_order_and_differ_by_at_most_one():
    for n in (0, 1, 7, 33, 64):
        for world in (1, 2, 3, 8):
            parts = [share(n, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [hi - lo for lo, hi in parts]
            assert max(sizes) - min(sizes) <= 1


@pytest.fixture
def group(monkeypatch):
    """A real gloo process group of one rank, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    g = Group(Ranks(0, 1, 0), torch.device("cpu"))
    yield g
    g.close()


def _data(n=500) -> Dataset:
    x = np.random.default_rng(0).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    return Dataset(spec="t", name="t", x_train=x[:400], y_train=np.zeros(400, np.int64), x_test=x[400:],
                   y_test=np.zeros(100, np.int64), label_names=("0",))


def _model():
    return build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0)


def test_collectives_on_a_one_rank_group(group):
    assert group.sum_(torch.tensor([1.5, 2.0])).tolist() == [1.5, 2.0]
    assert group.any(True) and not group.any(False)
    assert [t.tolist() for t in group.gather(torch.tensor([4.0]))] == [[4.0]]


def test_the_rank_loop_under_ddp_matches_the_in_memory_loop(group):
    cfg = TrainConfig(epochs=2, batch_size=48, device="cpu", scatter_points=0, free_bits=0.05)
    ranked = list(train(_model(), _data(), cfg, group=group))[-1]
    alone = list(train_in_memory(_model(), _data(), cfg))[-1]
    assert ranked.error is None and ranked.step == alone.step
    for name, value in alone.weights.items():
        np.testing.assert_allclose(ranked.weights[name], value, rtol=0, atol=1e-5)
    assert ranked.history[-1]["test_elbo"] == pytest.approx(alone.history[-1]["test_elbo"], abs=1e-4)


def test_a_stop_request_is_agreed_at_the_next_check(group):
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) >= 3

    cfg = TrainConfig(epochs=5, batch_size=16, device="cpu", scatter_points=0, snapshot_every=10 ** 6)
    last = list(train(_model(), _data(), cfg, should_stop=should_stop, group=group))[-1]
    assert last.cancelled and last.step == 2 * STOP_EVERY     # asked at steps 0 and 8, agreed at 16


def test_a_rank_told_to_stop_leaves_by_itself_when_no_agreement_comes():
    script = textwrap.dedent("""
        import os, signal, time
        from latentlab.core.training.distributed import stop_on_signals
        stop = {"flag": False}
        stop_on_signals(stop, grace_s=1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        print(stop["flag"], flush=True)
        time.sleep(60)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True"
    # Left by itself, killed by its own SIGTERM after the grace; one that waited would end its sleep with 0.
    assert done.returncode == 128 + 15
    assert "Traceback" not in done.stderr
