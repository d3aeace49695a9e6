import numpy as np
import pytest
import torch

from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training import device as device_mod
from latentlab.core.training.loop import train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_model(data, k=2, **kw):
    return build_model(ModelConfig(image_shape=data.image_shape, latent_dim=k, hidden=(64,), **kw), seed=0)


def run(model, data, **kw):
    cfg = TrainConfig(**{"epochs": 2, "device": "cpu", "scatter_points": 100, "snapshot_every": 5, **kw})
    return list(train(model, data, cfg))


def test_a_few_epochs_lower_the_loss(digits):
    snaps = run(small_model(digits), digits, epochs=8, lr=3e-3)
    records = [s.record for s in snaps if s.record]
    assert len(records) == 8
    assert records[-1]["recon"] + records[-1]["kl"] < 0.8 * (records[0]["recon"] + records[0]["kl"])
    assert records[-1]["test_elbo"] > records[0]["test_elbo"]
    last = snaps[-1]
    assert last.done and not last.cancelled and last.error is None
    assert len(last.history) == 8
    assert last.latent.shape == (100, 2) and last.latent.dtype == np.float32
    assert set(last.weights) == set(small_model(digits).state_dict())


def test_snapshots_are_plain_cpu_data(digits):
    for s in run(small_model(digits), digits):
        assert isinstance(s.recon, float) and isinstance(s.kl, float)
        assert isinstance(s.kl_per_dim, np.ndarray) and s.kl_per_dim.shape == (2,)
        assert s.latent is None or isinstance(s.latent, np.ndarray)
        assert s.weights is None or all(isinstance(v, np.ndarray) for v in s.weights.values())
        assert 0 < s.fraction <= 1


def test_seeded_runs_are_reproducible_on_cpu(digits):
    a, b = small_model(digits), small_model(digits)
    run(a, digits, seed=5)
    run(b, digits, seed=5)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_cancel_stops_between_steps(digits):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    snaps = list(train(small_model(digits), digits, TrainConfig(epochs=50, device="cpu", scatter_points=10), should_stop=stop))
    assert snaps[-1].done and snaps[-1].cancelled
    assert snaps[-1].step == 3


def test_warm_start_continues_the_history(digits):
    model = small_model(digits)
    first = run(model, digits)[-1]
    second = list(train(model, digits, TrainConfig(epochs=1, device="cpu", beta=4.0), history=first.history))[-1]
    assert [r["epoch"] for r in second.history] == [1, 2, 3]
    assert second.history[-1]["beta"] == 4.0
    # Warm start means the loss does not restart from the untrained level.
    fresh = run(small_model(digits), digits, epochs=1)[-1]
    assert second.history[-1]["recon"] < fresh.history[0]["recon"]


def test_divergence_stops_cleanly_with_finite_weights(digits):
    model = small_model(digits)
    snaps = run(model, digits, lr=1e6, epochs=3)   # the largest learning rate a config takes
    last = snaps[-1]
    assert last.done and last.error and "diverged" in last.error
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(np.isfinite(v).all() for v in last.weights.values())


def test_out_of_memory_is_reported_and_weights_kept(digits, monkeypatch):
    model = small_model(digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def boom(z):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(model, "decode", boom)
    last = run(model, digits)[-1]
    assert last.done and "Out of memory" in last.error
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert device_mod.resolve_device("auto").type == "cpu"
    assert device_mod.resolve_device("cpu").type == "cpu"
    with pytest.raises(LatentLabError, match="CUDA"):
        device_mod.resolve_device("cuda")
    with pytest.raises(LatentLabError, match="MPS"):
        device_mod.resolve_device("mps")
    with pytest.raises(LatentLabError):
        device_mod.resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_mod.resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert device_mod.resolve_device("auto").type == "mps"


def test_free_bits_and_warmup_are_applied(digits):
    snaps = run(small_model(digits, k=4), digits, warmup_steps=1000, epochs=1)
    assert snaps[0].beta < 0.1
    snaps = run(small_model(digits, k=4), digits, beta=50.0, free_bits=0.5, epochs=3, lr=3e-3)
    # Heavy β without free bits would push every dimension to ~0 nats; free bits keep some.
    assert snaps[-1].history[-1]["kl"] > 0.5


def test_conv_and_gaussian_models_train(digits):
    for kw in ({"arch": "conv"}, {"likelihood": "gaussian"}):
        last = run(small_model(digits, **kw), digits, epochs=2)[-1]
        assert last.error is None and np.isfinite(last.history[-1]["elbo"])


def test_time_based_snapshots_keep_a_slow_run_animated(digits):
    import time as _time

    model = small_model(digits)
    original = model.decode

    def slow_decode(z):
        _time.sleep(0.01)
        return original(z)

    model.decode = slow_decode
    cfg = TrainConfig(epochs=1, device="cpu", scatter_points=10, snapshot_every=1000, snapshot_seconds=0.03)
    snaps = list(train(model, digits, cfg))
    live = [s for s in snaps if s.record is None and not s.done]
    assert len(live) >= 3
