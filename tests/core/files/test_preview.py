"""The latent preview a checkpoint carries: written with the model's own means, read back without
torch, validated field by field (the window's use of it: tests/gui/test_preview_window.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from latentlab.core.data.specs import load_dataset
from latentlab.core.files.bundled import EXAMPLES
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.files.preview import MAX_PREVIEW_BYTES, compute_preview, read_preview
from latentlab.core.inference.analysis import encode
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model

NAMES = ("zero", "one", "two")


@pytest.fixture(scope="module")
def model():
    cfg = ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,), arch="mlp", likelihood="bernoulli")
    return build_model(cfg, seed=0)


def saved(tmp_path, model, means, labels, names=NAMES, dataset="digits"):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, dataset=dataset, preview=(means, labels, names))
    return path


def test_round_trip_and_the_model_still_loads(tmp_path, model):
    rng = np.random.default_rng(0)
    means, labels = rng.normal(size=(50, 3)).astype(np.float32), rng.integers(0, 3, 50)
    path = saved(tmp_path, model, means, labels)
    p = read_preview(path, latent_dim=3)
    assert np.array_equal(p.means, means) and np.array_equal(p.labels, labels)
    assert p.label_names == NAMES and p.dataset == "digits"
    ckpt = load_checkpoint(path)
    assert all(torch.equal(ckpt.model.state_dict()[k], v) for k, v in model.state_dict().items())
    assert read_preview(path, latent_dim=4) is None   # the means of another latent size are not this model's


def test_a_file_without_one_has_none_and_stays_format_1(tmp_path, model):
    path = tmp_path / "plain.safetensors"
    save_checkpoint(path, model, dataset="digits")
    assert read_preview(path) is None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata()["format_version"] == "1"


def test_too_large_or_invalid_previews_are_not_written(tmp_path, model):
    n = MAX_PREVIEW_BYTES // 16 + 1   # (N, 3) float32 + N int32 labels: just over the limit
    assert saved(tmp_path, model, np.zeros((n, 3), np.float32), np.zeros(n, np.int64)) and read_preview(
        tmp_path / "m.safetensors") is None
    bad = np.zeros((4, 3), np.float32)
    bad[1, 2] = np.nan
    saved(tmp_path, model, bad, np.zeros(4, np.int64))
    assert read_preview(tmp_path / "m.safetensors") is None
    saved(tmp_path, model, np.zeros((4, 3), np.float32), np.array([0, 1, 2, 3]))   # label 3 of 3 names
    assert read_preview(tmp_path / "m.safetensors") is None


def hostile(tmp_path, model, means, labels, meta):
    """A checkpoint whose preview tensors and entry are written by hand, as a hostile file would be."""
    from safetensors import safe_open
    from safetensors.torch import load as st_load

    from latentlab.core.files.checkpoint import checkpoint_bytes

    base = checkpoint_bytes(model, dataset="digits")
    path = tmp_path / "h.safetensors"
    path.write_bytes(base)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = st_load(base)
    tensors.update({"preview.means": torch.from_numpy(means), "preview.labels": torch.from_numpy(labels)})
    metadata.update({"format_version": "2", "preview": meta})
    save_file(tensors, str(path), metadata=metadata)
    return path


GOOD_META = json.dumps({"label_names": list(NAMES), "dataset": "digits"})


@pytest.mark.parametrize("means, labels, meta", [
    (np.zeros((4, 3), np.float64), np.zeros(4, np.int32), GOOD_META),              # wrong dtype
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int64), GOOD_META),              # wrong label dtype
    (np.zeros((4, 3), np.float32), np.zeros(5, np.int32), GOOD_META),              # counts differ
    (np.zeros((4, 3, 1), np.float32), np.zeros(4, np.int32), GOOD_META),           # not a table
    (np.full((4, 3), np.inf, np.float32), np.zeros(4, np.int32), GOOD_META),       # not finite
    (np.zeros((4, 3), np.float32), np.full(4, -1, np.int32), GOOD_META),           # negative label
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), "not json"),
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), json.dumps({"label_names": [], "dataset": "digits"})),
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), json.dumps({"label_names": [1, 2], "dataset": "digits"})),
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), json.dumps({"label_names": ["a"] * 5000, "dataset": "d"})),
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), json.dumps({"label_names": ["a"], "dataset": 7})),
    (np.zeros((4, 3), np.float32), np.zeros(4, np.int32), json.dumps(["a"])),
], ids=["f64", "i64", "count", "3d", "inf", "negative", "json", "no-names", "int-names", "many-names", "dataset",
        "list"])
def test_hostile_previews_are_ignored_and_the_model_still_loads(tmp_path, model, means, labels, meta):
    path = hostile(tmp_path, model, means, labels, meta)
    assert read_preview(path) is None
    load_checkpoint(path)   # the model's own tensors are unaffected


def test_broken_files_give_no_preview(tmp_path):
    for name, content in (("empty", b""), ("short", b"\x05"), ("garbage", os.urandom(4096))):
        (tmp_path / name).write_bytes(content)
        assert read_preview(tmp_path / name) is None
    assert read_preview(tmp_path / "missing") is None
    assert read_preview(tmp_path) is None   # a folder


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.dataset for e in EXAMPLES])
def test_bundled_previews_are_the_models_own_means(example):
    ckpt = load_checkpoint(example.file)
    data = load_dataset(ckpt.dataset)
    p = read_preview(example.file, latent_dim=ckpt.model.latent_dim)
    assert p is not None and p.dataset == ckpt.dataset and p.label_names == tuple(data.label_names)
    assert np.array_equal(p.labels, data.y_train)
    np.testing.assert_allclose(p.means, encode(ckpt.model, data.x_train)[0], atol=1e-5)


def test_compute_preview_matches_encode(model):
    data = load_dataset("digits")
    cfg = ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(16,), arch="mlp", likelihood="bernoulli")
    m = build_model(cfg, seed=1)
    means, labels, names = compute_preview(m, data)
    assert np.array_equal(means, encode(m, data.x_train)[0]) and labels is data.y_train and names == data.label_names
