"""The Python API: latentlab.evaluate on a user's model and arrays, the data forms it accepts,
and `import latentlab` staying light."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import latentlab
from latentlab.api import as_dataset
from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError


class Flat(nn.Module):
    """encode -> (mu, logvar), decode -> flat logits, like the pytorch/examples VAE."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Linear(64, 6)
        self.dec = nn.Linear(3, 64)

    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, 1)

    def decode(self, z):
        return self.dec(z)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_evaluate_returns_what_eval_json_prints(digits, capsys):
    stats = latentlab.evaluate(Flat(), digits, iw_samples=10)
    assert stats["latent_dim"] == 3 and stats["examples"] == len(digits.x_test)
    assert stats["gap"] == pytest.approx(stats["log_px_iw"] - stats["elbo"])
    # the same numbers through the CLI on the same model, named as package.module:NAME
    assert main(["eval", "--model", "test_api:Flat", "--dataset", "digits", "--iw-samples", "10", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    shared = set(stats) - {"model", "checkpoint", "description"}
    assert {k: cli[k] for k in shared} == {k: stats[k] for k in shared}
    assert set(cli) == set(stats)


@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc", "uint8", "tensor", "torch_dataset"])
def test_image_forms(digits, layout):
    x = digits.x_train[:50, 0]                      # (N, 8, 8) in [0, 1]
    y = digits.y_train[:50]
    data, labels = {
        "nhw": (x, y), "nchw": (x[:, None], y), "nhwc": (x[..., None], y),
        "uint8": ((x * 255).round().astype(np.uint8), y), "tensor": (torch.from_numpy(x), torch.from_numpy(y)),
        "torch_dataset": (torch.utils.data.TensorDataset(torch.from_numpy(x[:, None]), torch.from_numpy(y)), None),
    }[layout]
    ds = as_dataset(data, labels)
    assert ds.image_shape == (1, 8, 8) and len(ds.x_train) + len(ds.x_test) == 50
    assert ds.x_train.stored.dtype == (np.uint8 if layout == "uint8" else np.float32) and 0 <= ds.x_train[:].min() and ds.x_train[:].max() <= 1
    assert sorted(np.concatenate([ds.y_train, ds.y_test])) == sorted(y)
    stats = latentlab.evaluate(Flat(), data if layout == "torch_dataset" else ds, iw_samples=0)
    assert np.isfinite(stats["elbo"])


def test_bad_data_and_models_are_one_sentence(digits):
    with pytest.raises(LatentLabError, match="negative values"):
        as_dataset(-np.ones((10, 8, 8)))
    with pytest.raises(LatentLabError, match="not a dict"):
        as_dataset({"x": 1})
    with pytest.raises(LatentLabError, match="is not PATH.safetensors"):
        latentlab.evaluate("not a spec", digits)
    with pytest.raises(LatentLabError, match="not a torch nn.Module"):
        latentlab.evaluate(42, digits)
    with pytest.raises(LatentLabError, match=r"encoding images of shape \(1, 32, 32\)"):
        latentlab.evaluate(Flat(), load_dataset("sprites"))


def test_explore_without_a_window_that_takes_models_says_so(digits, monkeypatch):
    from latentlab.gui import app

    monkeypatch.delattr(app, "open_window", raising=False)
    with pytest.raises(LatentLabError, match="latentlab.explore needs a window"):
        latentlab.explore(Flat(), digits)


def test_import_latentlab_is_light():
    code = "import sys, latentlab; print(sorted(m for m in ('torch', 'PySide6', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
    assert "explore" in dir(__import__("latentlab")) or callable(latentlab.explore)
