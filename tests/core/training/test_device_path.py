"""The accelerator code path, checked by logic on the CPU: a training step never waits on the device,
the data is moved once, and what the trainer hands out is host memory that nothing else writes."""

import numpy as np
import pytest
import torch

from latentlab.core.data.specs import Dataset
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training.loop import train

# Every Tensor method that makes the host wait for a device's queue to drain.
_SYNCING = ("item", "cpu", "numpy", "tolist", "__bool__", "__float__", "__int__", "__index__")


def _data(n: int) -> Dataset:
    x = np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)
    return Dataset(spec="t", name="t", x_train=x, y_train=np.zeros(n, np.int64), x_test=x[:64],
                   y_test=np.zeros(64, np.int64), label_names=("0",))


def _counted_run(monkeypatch, n: int, **cfg) -> dict[str, int]:
    """Run one epoch over n images (batch 32) and count host-syncing calls and host→tensor copies."""
    counts = {name: 0 for name in (*_SYNCING, "from_numpy")}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0)
    with monkeypatch.context() as m:
        for name in _SYNCING:
            m.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
        m.setattr(torch, "from_numpy", counting("from_numpy", torch.from_numpy))
        snaps = list(train(model, _data(n), TrainConfig(epochs=1, batch_size=32, device="cpu", scatter_points=0,
                                                          snapshot_every=10 ** 9, **cfg)))
    assert snaps[-1].done and snaps[-1].error is None
    return counts


@pytest.mark.parametrize("cfg", [{}, {"warmup_steps": 50, "free_bits": 0.1}])
def test_steps_never_wait_on_the_device(monkeypatch, cfg):
    """Four times the steps must not mean more syncs or copies: they belong to the epoch end only."""
    short = _counted_run(monkeypatch, 32 * 40, **cfg)
    long = _counted_run(monkeypatch, 32 * 160, **cfg)
    assert sum(short[k] for k in _SYNCING) > 0, "the counter saw nothing: the instrumentation is broken"
    assert long == short


def test_snapshots_are_host_copies():
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0)
    snaps = list(train(model, _data(512), TrainConfig(epochs=2, batch_size=64, device="cpu", scatter_points=100,
                                                       snapshot_every=4)))
    for s in snaps:
        assert isinstance(s.kl_per_dim, np.ndarray)
        assert s.latent is None or (isinstance(s.latent, np.ndarray) and s.latent.shape == (100, 3))
        for v in (s.weights or {}).values():
            assert isinstance(v, np.ndarray)
    final = snaps[-1].weights
    kept = {k: v.copy() for k, v in final.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for k, v in final.items():
        np.testing.assert_array_equal(v, kept[k])  # the snapshot does not alias the live weights
