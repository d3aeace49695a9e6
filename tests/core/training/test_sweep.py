import numpy as np
import pytest

from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.training.sweep import SweepPoint, load_sweep, log_betas, run_sweep, save_sweep


def test_log_betas():
    assert log_betas(0.1, 10, 3) == [0.1, 1.0, 10.0]
    assert log_betas(2, 2, 1) == [2.0]


def test_sweep_trades_rate_for_distortion_and_round_trips(tmp_path):
    data = load_dataset("digits")
    cfg = ModelConfig(image_shape=data.image_shape, latent_dim=4, hidden=(64,))
    tcfg = TrainConfig(epochs=15, lr=3e-3, device="cpu", scatter_points=0)
    events = list(run_sweep(data, cfg, [0.2, 5.0], tcfg))
    points = [p for _, p in events if isinstance(p, SweepPoint)]
    assert [p.beta for p in points] == [0.2, 5.0]
    low, high = points
    # Larger β buys a lower rate at the cost of more distortion.
    assert high.rate < low.rate and high.distortion > low.distortion
    save_sweep(tmp_path / "sweep", points, dataset="digits")
    loaded, dataset = load_sweep(tmp_path / "sweep")
    assert dataset == "digits" and [p.beta for p in loaded] == [0.2, 5.0]
    for a, b in zip(points, loaded):
        assert a.rate == pytest.approx(b.rate) and a.distortion == pytest.approx(b.distortion)
        assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)


def test_sweep_stops_when_asked():
    data = load_dataset("digits")
    cfg = ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(32,))
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5

    events = list(run_sweep(data, cfg, [0.5, 1.0, 2.0], TrainConfig(epochs=50, device="cpu", scatter_points=0), stop))
    assert not any(isinstance(p, SweepPoint) for _, p in events)
    assert {i for i, _ in events} == {0}


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(LatentLabError, match="no β-sweep"):
        load_sweep(tmp_path)


def test_sweep_of_a_foreign_model_fine_tunes_copies_and_round_trips(tmp_path):
    import torch
    from torch import nn

    from latentlab.core.models.adapters import as_latent_model, validate
    from latentlab.core.training.sweep import point_model

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.enc, self.dec = nn.Linear(64, 8), nn.Linear(4, 64)

        def encode(self, x):
            return self.enc(x.flatten(1)).chunk(2, 1)

        def decode(self, z):
            return self.dec(z)

    data = load_dataset("digits")
    base = validate(as_latent_model(Flat()), data.x_train[:4])
    base.spec = "unused.py:Flat"
    start = {k: v.clone() for k, v in base.state_dict().items()}
    tcfg = TrainConfig(epochs=8, lr=3e-3, device="cpu", scatter_points=0)
    points = [p for _, p in run_sweep(data, base, [0.2, 5.0], tcfg) if isinstance(p, SweepPoint)]
    assert [p.config for p in points] == [None, None]
    assert all(torch.equal(v, start[k]) for k, v in base.state_dict().items())  # copies were trained
    assert points[1].rate < points[0].rate
    with pytest.raises(LatentLabError, match="open that model"):
        save_sweep(tmp_path / "s", points, dataset="digits")
    save_sweep(tmp_path / "s", points, dataset="digits", base=base)
    loaded, dataset = load_sweep(tmp_path / "s", base=base)
    assert dataset == "digits" and [p.beta for p in loaded] == [0.2, 5.0]
    for a, b in zip(points, loaded):
        assert a.rate == pytest.approx(b.rate)
        assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    m = point_model(loaded[1], base)
    assert torch.equal(m.net.dec.bias, torch.from_numpy(points[1].weights["net.dec.bias"]))
