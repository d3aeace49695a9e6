"""diffusers' AutoencoderKL as a `diffusers:DIR` model: a tiny randomly initialised one, saved with
save_pretrained, opened, encoded, decoded, traversed, evaluated and fine-tuned."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.files.model_spec import load_model
from latentlab.core.inference import analysis
from latentlab.core.models.adapters import validate

diffusers = pytest.importorskip("diffusers")
from tiny_autoencoder import tiny_autoencoder  # noqa: E402 - once diffusers is known to be there


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_ae")
    tiny_autoencoder().save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_open_encode_decode_traverse_evaluate(folder, digits):
    model = validate(load_model(f"diffusers:{folder}"), digits.x_train[:4])
    assert model.latent_shape == (2, 4, 4) and model.latent_dim == 32 and model.input_range == (-1.0, 1.0)
    assert "scaling factor 0.18215" in model.describe()
    x = digits.x_test[:16]
    mu, logvar = analysis.encode(model, x)
    assert mu.shape == logvar.shape == (16, 32) and np.isfinite(mu).all()
    # the same numbers as diffusers' own posterior on [-1, 1] images
    with torch.no_grad():
        dist = model.net.encode(torch.from_numpy(x) * 2 - 1).latent_dist
    np.testing.assert_allclose(mu, dist.mean.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    imgs = analysis.decode(model, mu)
    assert imgs.shape == (16, 1, 8, 8) and imgs.min() >= 0 and imgs.max() <= 1
    # decode reads [-1, 1] output back to [0, 1]
    with torch.no_grad():
        raw = model.net.decode(torch.from_numpy(mu[:2]).view(2, 2, 4, 4)).sample
    np.testing.assert_allclose(imgs[:2], ((raw + 1) / 2).clamp(0, 1).numpy(), atol=1e-6)
    top = analysis.top_dims_by_kl(analysis.mean_kl_per_dim(mu, logvar), 6)
    codes = analysis.traversal_codes(mu[0], analysis.traversal_values(5), dims=top)
    assert codes.shape == (6, 5, 32) and np.array_equal(codes[2, :, top[2]], analysis.traversal_values(5))
    rows = analysis.decode(model, codes.reshape(-1, 32))
    assert rows.shape == (6 * 5, 1, 8, 8) and not np.allclose(rows[0], rows[4])
    stats = analysis.evaluate(model, digits.x_test[:64], iw_samples=5)
    assert stats["latent_dim"] == 32 and len(stats["kl_per_dim"]) == 32
    assert np.isfinite([stats["elbo"], stats["log_px_iw"], stats["gap"]]).all()
    assert stats["kl"] == pytest.approx(sum(stats["kl_per_dim"]), rel=1e-6)


def test_fine_tune_a_copy_through_the_common_trainer(folder, digits, tmp_path):
    from latentlab.core.files.model_spec import save_weights
    from latentlab.core.models.config import TrainConfig
    from latentlab.core.training.loop import train

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    model = validate(load_model(f"diffusers:{folder}"), digits.x_train[:4]).copy()
    small = dataclasses.replace(digits, x_train=digits.x_train[:128], y_train=digits.y_train[:128],
                                x_test=digits.x_test[:64], y_test=digits.y_test[:64])
    snaps = list(train(model, small, TrainConfig(epochs=1, batch_size=64, lr=1e-3, device="cpu", scatter_points=0)))
    assert snaps[-1].done and not snaps[-1].error
    out = save_weights(tmp_path / "ae.safetensors", model, model_spec=f"diffusers:{folder}")
    reopened = load_model(f"diffusers:{folder}", weights=out)
    p0 = next(reopened.parameters())
    assert torch.equal(p0, next(model.parameters()).cpu())
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_bad_folders_give_one_sentence(tmp_path, digits, folder):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    (tmp_path / "bin" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(LatentLabError, match="only pickled .bin weights, which latentlab never loads"):
        load_model(f"diffusers:{tmp_path / 'bin'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentLabError, match="no config.json"):
        load_model(f"diffusers:{tmp_path / 'empty'}")
    rgb = tmp_path / "rgb"
    tiny_autoencoder(channels=3).save_pretrained(str(rgb))
    with pytest.raises(LatentLabError, match="reads 3-channel images, but the data has 1 channel"):
        validate(load_model(f"diffusers:{rgb}"), digits.x_train[:4])
