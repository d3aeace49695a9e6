"""Fuzzing the checkpoint loader: whatever the bytes, load_checkpoint either returns a model with
finite weights or raises CheckpointError; no other exception type ever escapes. The latent preview
reader (which the window runs first) returns a valid preview or None, never raises.

Bounded in time: about 3,250 cases in all, on a tiny model (~1 ms a load).
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.core.errors import CheckpointError
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.files.preview import read_preview
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model

FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def fuzz(n):
    return settings(FUZZ, max_examples=n)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def valid(folder):
    """A valid checkpoint (gaussian, so it has the scalar log_sigma too): bytes, header length, header."""
    model = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=2, hidden=(4,), likelihood="gaussian"), seed=0)
    preview = (np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 0.0]], np.float32), np.array([0, 2, 1]), ("a", "b", "c"))
    path = save_checkpoint(folder / "valid.safetensors", model, dataset="digits",
                           history=[{"epoch": 1, "recon": 1.5, "kl_per_dim": [0.5, 0.25]}], train_config=TrainConfig(),
                           preview=preview)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data, n, json.loads(data[8:8 + n])


def check(folder, data: bytes, must_fail: bool = False):
    """Load `data`: a CheckpointError with a one-line message, or a model whose weights are all finite."""
    path = folder / "case.safetensors"
    path.write_bytes(data)
    # The window reads the latent preview before the model: whatever the bytes, a valid one or None.
    preview = read_preview(path)
    if preview is not None:
        assert preview.means.dtype == np.float32 and preview.means.ndim == 2 and np.isfinite(preview.means).all()
        assert preview.labels.shape == preview.means.shape[:1] and 0 < len(preview.label_names) <= 1000
        assert not len(preview.labels) or 0 <= preview.labels.min() <= preview.labels.max() < len(preview.label_names)
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return None
    assert not must_fail, "this file cannot be valid, yet it loaded"
    state = ckpt.model.state_dict()
    assert state and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in state.values())
    assert isinstance(ckpt.history, list) and all(isinstance(r, dict) for r in ckpt.history)
    assert isinstance(ckpt.config, ModelConfig) and isinstance(ckpt.dataset, str)
    return ckpt


def with_length(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


def test_the_reference_file_loads(folder, valid):
    assert check(folder, valid[0]) is not None


# ---------------------------------------------------------------- raw bytes


@fuzz(500)
@given(st.binary(max_size=4096))
def test_random_bytes(folder, data):
    check(folder, data, must_fail=True)


@fuzz(300)
@given(st.integers(0, 2 ** 64 - 1), st.binary(max_size=512))
def test_random_bytes_behind_any_length(folder, n, rest):
    check(folder, struct.pack("<Q", n) + rest, must_fail=True)


# ---------------------------------------------------------------- a valid file, damaged


# Positions are drawn as (in_header, k) and mapped onto the file: half of them land in the 8 length
# bytes and the JSON header, where most of the parsing happens. Plain strategies (no st.data) keep
# Hypothesis' own cost per case low.
positions = st.tuples(st.booleans(), st.integers(0, 2 ** 24))


def place(position, valid, size=None) -> int:
    in_header, k = position
    raw, n, _ = valid
    return k % (8 + n) if in_header else k % (size or len(raw))


PRINTABLE = b'{}[]",:0123456789 -.eEnulltrue\\'


@fuzz(800)
@given(st.lists(st.tuples(positions, st.sampled_from(["xor_bit", "byte", "printable"]), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_byte_flips(folder, valid, flips):
    buf = bytearray(valid[0])
    for position, how, value in flips:
        i = place(position, valid)
        if how == "xor_bit":
            buf[i] ^= 1 << (value % 8)
        elif how == "byte":
            buf[i] = value
        else:
            buf[i] = PRINTABLE[value % len(PRINTABLE)]
    check(folder, bytes(buf))


@fuzz(300)
@given(positions)
def test_truncation(folder, valid, position):
    raw = valid[0]
    check(folder, raw[:place(position, valid, len(raw))], must_fail=True)


@fuzz(500)
@given(positions, st.sampled_from([0, 1, 4, 16, 256, 1 << 20]), st.integers(0, 2 ** 24),
       st.one_of(st.binary(max_size=64), st.tuples(st.integers(0, 2 ** 24), st.integers(0, 128))), st.booleans())
def test_splices(folder, valid, position, span, span_k, insert, fix_length):
    """Cut out a stretch and put random bytes, or another stretch of the same file, in its place."""
    raw, n, _ = valid
    i = place(position, valid, len(raw) + 1)
    j = min(len(raw), i + span_k % (span + 1))
    if isinstance(insert, tuple):
        a = insert[0] % (len(raw) + 1)
        insert = raw[a:a + insert[1]]
    spliced = raw[:i] + insert + raw[j:]
    grown = len(spliced) - len(raw)
    if fix_length and i >= 8 and j <= 8 + n and n + grown >= 0:  # keep the length prefix consistent with the header
        spliced = struct.pack("<Q", n + grown) + spliced[8:]
    check(folder, spliced)


# ---------------------------------------------------------------- headers that are JSON, but anything


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(json_scalars,
                           lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                   st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                           max_leaves=12)


def dumps(value) -> bytes:
    # Python writes NaN / Infinity, which are not JSON: the reader has to cope with those too.
    return json.dumps(value).encode()


@fuzz(300)
@given(json_values, st.sampled_from(["none", "valid", "random"]), st.binary(max_size=128), st.integers(0, 7))
def test_random_json_headers(folder, valid, header, body_kind, random_body, pad):
    raw, n, _ = valid
    body = {"none": b"", "valid": raw[8 + n:], "random": random_body}[body_kind]
    check(folder, with_length(dumps(header) + b" " * pad, body))


tensor_specs = st.fixed_dictionaries({}, optional={
    "dtype": st.one_of(st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "I8", "U8", "BOOL", "f32", ""]), json_values),
    "shape": st.one_of(st.lists(st.integers(-2, 70), max_size=4), json_values),
    "data_offsets": st.one_of(st.lists(st.integers(-10, 2 ** 64), min_size=2, max_size=2),
                              st.lists(st.integers(0, 600), min_size=0, max_size=3), json_values),
})


@fuzz(300)
@given(st.data())
def test_latentlab_headers_with_random_parts(folder, valid, data):
    """Start from the valid header and replace parts of it: these cases get past the first checks."""
    raw, n, header = valid
    header = json.loads(json.dumps(header))
    names = sorted(k for k in header if k != "__metadata__")
    meta = header["__metadata__"]
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        kind = data.draw(st.sampled_from(["spec", "spec_field", "drop", "add", "meta", "meta_json"]), label="kind")
        if kind == "spec":
            header[data.draw(st.sampled_from(names))] = data.draw(st.one_of(tensor_specs, json_values))
        elif kind == "spec_field":
            spec = header.get(data.draw(st.sampled_from(names)))
            if isinstance(spec, dict):
                spec.update(data.draw(tensor_specs))
        elif kind == "drop":
            header.pop(data.draw(st.sampled_from(names)), None)
        elif kind == "add":
            header[data.draw(st.text(max_size=20))] = data.draw(st.one_of(tensor_specs, json_values))
        elif kind == "meta":
            key = data.draw(st.sampled_from(sorted(meta) + ["format_version", "x"]))
            meta[key] = data.draw(st.one_of(st.text(max_size=30), json_values))
        else:
            key = data.draw(st.sampled_from(["history", "train_config", "model_config"]))
            meta[key] = json.dumps(data.draw(json_values))
    body = raw[8 + n:]
    if data.draw(st.booleans(), label="trim body"):
        body = body[:data.draw(st.integers(0, len(body)))]
    check(folder, with_length(dumps(header), body))


sizes = st.one_of(st.integers(-3, 70), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=True), st.booleans(),
                  st.none(), st.text(max_size=4))
model_configs = st.fixed_dictionaries({}, optional={
    "image_shape": st.one_of(st.lists(sizes, max_size=4), st.lists(st.integers(1, 2 ** 40), min_size=3, max_size=3),
                             json_values),
    "latent_dim": sizes,
    "arch": st.one_of(st.sampled_from(["mlp", "conv", "MLP", ""]), json_values),
    "hidden": st.one_of(st.lists(sizes, max_size=6), st.lists(st.integers(1, 2 ** 62), min_size=1, max_size=3),
                        json_values),
    "conv_channels": st.one_of(st.lists(sizes, max_size=4), st.lists(st.integers(1, 2 ** 40), min_size=1, max_size=2)),
    "likelihood": st.one_of(st.sampled_from(["bernoulli", "gaussian", "poisson"]), json_values),
    "logvar_min": sizes,
    "logvar_max": sizes,
    "unknown": json_values,
})
train_configs = st.fixed_dictionaries({}, optional={
    k: st.one_of(sizes, json_values) for k in ("epochs", "batch_size", "lr", "beta", "warmup_steps", "free_bits", "seed",
                                               "device", "snapshot_every", "scatter_points", "threads")})


@fuzz(250)
@given(st.data())
def test_random_model_and_train_configs(folder, valid, data):
    """The model description is what gets built: it must never allocate, hang or raise anything but CheckpointError."""
    raw, n, header = valid
    header = json.loads(json.dumps(header))
    meta = header["__metadata__"]
    base = json.loads(meta["model_config"])
    if data.draw(st.booleans(), label="edit the real config"):
        base.update(data.draw(model_configs))
        model_config = base
    else:
        model_config = data.draw(model_configs)
    meta["model_config"] = json.dumps(model_config)
    if data.draw(st.booleans(), label="random train config"):
        meta["train_config"] = json.dumps(data.draw(train_configs))
    ckpt = check(folder, with_length(dumps(header), raw[8 + n:]))
    if ckpt is not None:  # only a config that builds the very same layers can load
        assert ckpt.model.state_dict().keys() == build_model(ckpt.config, seed=0).state_dict().keys()
        assert all(math.prod(v.shape) < 100 for v in ckpt.model.state_dict().values())
