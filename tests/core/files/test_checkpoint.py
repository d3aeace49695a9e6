"""Checkpoints: bit-exact round trips, and one clear CheckpointError for every kind of bad file.

Nothing here needs Qt. Models are tiny (8x8 images, one hidden layer) so the whole file runs in
a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from latentlab.core.errors import CheckpointError, LatentLabError
from latentlab.core.files.atomic import write_atomic
from latentlab.core.files.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from latentlab.core.models.config import ModelConfig, TrainConfig, to_json
from latentlab.core.models.vae import build_model

HISTORY = [
    {"epoch": 1, "beta": 1.0, "recon": 41.25, "kl": 3.0625, "elbo": -44.3125, "test_elbo": -44.5,
     "kl_per_dim": [1.5, 1.5625], "seconds": 0.1},
    {"epoch": 2, "beta": 0.5, "recon": 0.1 + 0.2, "kl": 1e-300, "elbo": -0.3, "test_elbo": -1.7976931348623157e308,
     "kl_per_dim": [5e-324, 2.0]},
]
# Keys the validator does not know are dropped on save and on load.
UNKNOWN = {"note": "β = 1, naïve ✓", "nested": {"a": [1, [2, 3]], "b": None, "c": True}}


def history_for(k: int) -> list[dict]:
    """HISTORY with kl_per_dim of length k (the validator checks it against the model's K)."""
    return [{**r, "kl_per_dim": (r["kl_per_dim"] * k)[:k]} for r in HISTORY]


def cfg(arch="mlp", likelihood="bernoulli", latent_dim=2, **kw):
    if arch == "conv":
        kw.setdefault("conv_channels", (4, 8))
    return ModelConfig(image_shape=kw.pop("image_shape", (1, 8, 8)), latent_dim=latent_dim, hidden=kw.pop("hidden", (16,)),
                       arch=arch, likelihood=likelihood, **kw)


def small(**kw):
    return build_model(cfg(**kw), seed=0)


@pytest.fixture(scope="module")
def model():
    return small(likelihood="gaussian")


@pytest.fixture(scope="module")
def valid(tmp_path_factory, model):
    """Bytes of a valid checkpoint, its parsed header and the bytes after the header."""
    path = save_checkpoint(tmp_path_factory.mktemp("valid") / "m.safetensors", model, dataset="digits",
                           history=HISTORY, train_config=TrainConfig(epochs=3))
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data, json.loads(data[8:8 + n]), data[8 + n:]


def assemble(header, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def latentlab_meta(model, **changes) -> dict:
    meta = {"format": FORMAT, "format_version": "1", "latentlab_version": "0", "model_config": to_json(model.cfg),
            "dataset": "digits", "history": "[]"}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def tensors_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def refused(path, *fragments) -> str:
    """Load `path`, expect one CheckpointError whose one-line message contains every fragment."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert isinstance(info.value, LatentLabError)
    assert message and "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


def write(tmp_path, data: bytes, name="bad.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("latent_dim", [1, 5])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_round_trip_is_bit_exact(tmp_path, arch, likelihood, latent_dim):
    original = small(arch=arch, likelihood=likelihood, latent_dim=latent_dim)
    with torch.no_grad():  # weights that are not just the seeded init, with awkward values included
        gen = torch.Generator().manual_seed(1)
        for p in original.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
        original.encoder[0].weight.view(-1)[:4] = torch.tensor([0.0, -0.0, 1e-45, -3.4028234663852886e38])
        if likelihood == "gaussian":
            original.log_sigma.fill_(-1.2345678)
    train_cfg = TrainConfig(epochs=7, batch_size=32, lr=3e-4, beta=0.5, warmup_steps=100, free_bits=0.25, seed=9,
                            device="cpu", threads=2)
    path = tmp_path / "model.safetensors"
    history = history_for(latent_dim)
    saved_rows = [{**r, **UNKNOWN} for r in history]
    assert save_checkpoint(path, original, dataset="npz:/data/x y.npz", history=saved_rows, train_config=train_cfg) == path

    ckpt = load_checkpoint(path)
    assert ckpt.path == path
    assert ckpt.config == original.cfg == ckpt.model.cfg
    assert ckpt.dataset == "npz:/data/x y.npz"
    assert ckpt.history == history and ckpt.warnings == ()
    assert ckpt.train_config == train_cfg
    saved, loaded = original.state_dict(), ckpt.model.state_dict()
    assert set(saved) == set(loaded)
    assert ("log_sigma" in loaded) == (likelihood == "gaussian")
    for key in saved:
        assert loaded[key].dtype == torch.float32 and loaded[key].device.type == "cpu", key
        assert torch.equal(saved[key], loaded[key]), key
        # bit-exact, including the sign of zero
        assert torch.equal(saved[key].view(torch.int32), loaded[key].view(torch.int32)), key
    assert not ckpt.model.training
    assert all(p.requires_grad for p in ckpt.model.parameters())
    assert not any(p.is_meta for p in ckpt.model.parameters())
    z = torch.randn(3, latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(original.eval().decode(z), ckpt.model.decode(z))
    # only the target remains: no temporary files beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_round_trip_defaults_and_overwrite(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, small(latent_dim=5), dataset="digits")
    ckpt = load_checkpoint(str(path))  # str paths work too
    assert ckpt.history == [] and ckpt.train_config is None and ckpt.dataset == "digits"
    second = small(latent_dim=1, likelihood="gaussian")
    row = {"epoch": 1, "beta": 1.0, "recon": 2.0, "kl": 1.0, "elbo": -3.0}
    save_checkpoint(path, second, dataset="sprites", history=iter([row]))
    ckpt = load_checkpoint(path)
    assert ckpt.config.latent_dim == 1 and ckpt.dataset == "sprites" and ckpt.history == [row]
    assert all(torch.equal(v, ckpt.model.state_dict()[k]) for k, v in second.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_loading_does_not_touch_the_global_rng(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.safetensors", model, dataset="digits")
    state = torch.random.get_rng_state()
    load_checkpoint(path)
    assert torch.equal(state, torch.random.get_rng_state())


def test_saving_where_it_cannot_write(tmp_path, model):
    with pytest.raises(CheckpointError, match="Cannot write"):
        save_checkpoint(tmp_path / "no" / "such" / "folder" / "m.safetensors", model, dataset="digits")
    (tmp_path / "dir.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="Cannot write"):  # os.replace onto a folder fails
        write_atomic(tmp_path / "dir.safetensors", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["dir.safetensors"]  # the temporary file was removed


# ---------------------------------------------------------------- files that are not there or not files


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.safetensors", "does not exist")


def test_folder(tmp_path):
    refused(tmp_path, "folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    refused(tmp_path / "pipe", "not a regular file")


def test_path_with_nul_byte():
    refused("bad\0name.safetensors", "cannot read")


def test_empty_file(tmp_path):
    refused(write(tmp_path, b""), "too short")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    data = random.Random(seed).randbytes(10 + 997 * seed)
    refused(write(tmp_path, data), "not")


def test_truncated(tmp_path, valid):
    data, header, body = valid
    n = len(data) - len(body) - 8
    cuts = {1, 4, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 4, len(data) // 2, len(data) - 4, len(data) - 1}
    for cut in sorted(cuts):
        refused(write(tmp_path, data[:cut]))
    refused(write(tmp_path, data[:8 + n]), "not a valid safetensors file")
    refused(write(tmp_path, data[:-1]), "not a valid safetensors file")


# ---------------------------------------------------------------- broken headers


@pytest.mark.parametrize("claim", [2 ** 30, 2 ** 33, 2 ** 63, 2 ** 64 - 1])
def test_header_length_claims_gigabytes(tmp_path, valid, claim):
    data = valid[0]
    refused(write(tmp_path, struct.pack("<Q", claim) + data[8:]), "header claims")


def test_header_length_just_past_the_end(tmp_path, valid):
    data = valid[0]
    refused(write(tmp_path, struct.pack("<Q", len(data) - 7) + data[8:]), "header claims")


@pytest.mark.parametrize("raw", [b"not json at all", b"{\"a\": ", b"\xff\xfe{}", b"{}}", b"{\"a\": NaN", b"",
                                 b"{\"a\": " + b"9" * 5000 + b"}",  # longer than Python reads as an int
                                 b"[" * 100_000 + b"]" * 100_000],  # deeper than Python's recursion limit
                         ids=["text", "unfinished", "bad_utf8", "trailing", "nan", "empty", "long_int", "deep"])
def test_header_is_not_json(tmp_path, raw):
    refused(write(tmp_path, assemble(raw)), "not json")


@pytest.mark.parametrize("value", [[], [1, 2], "x", 3, None, True])
def test_header_json_is_not_an_object(tmp_path, valid, value):
    refused(write(tmp_path, assemble(value, valid[2])), "not a JSON object")


def test_plain_safetensors_without_metadata(tmp_path, model):
    refused(write(tmp_path, st_save(tensors_of(model))), "not a latentlab checkpoint")
    refused(write(tmp_path, st_save(tensors_of(model), metadata={"format": "pt"})), "not a latentlab checkpoint")


@pytest.mark.parametrize("meta", [None, [], "x", {"format": "latentlab"}, {"format_version": "1"}])
def test_metadata_missing_or_foreign(tmp_path, valid, meta):
    header = dict(valid[1])
    header.pop("__metadata__")
    if meta is not None:
        header["__metadata__"] = meta
    refused(write(tmp_path, assemble(header, valid[2])), "metadata")


@pytest.mark.parametrize("bad", [1, 1.5, None, True, ["1"], {"a": "b"}])
def test_metadata_not_all_strings(tmp_path, valid, bad):
    header = json.loads(json.dumps(valid[1]))
    header["__metadata__"]["format_version"] = bad
    refused(write(tmp_path, assemble(header, valid[2])), "metadata")


def with_meta(valid, **changes) -> bytes:
    header = json.loads(json.dumps(valid[1]))
    header["__metadata__"].update(changes)
    header["__metadata__"] = {k: v for k, v in header["__metadata__"].items() if v is not None}
    return assemble(header, valid[2])


@pytest.mark.parametrize("version", ["3", "999", "10000000000000000000000", "9" * 5000], ids=["3", "999", "1e22", "long"])
def test_newer_format_version(tmp_path, valid, version):
    message = refused(write(tmp_path, with_meta(valid, format_version=version)), "newer", "upgrade")
    assert len(message) < 400


@pytest.mark.parametrize("version", ["", "one", "1.0", "-1", " 1", "²", "1\n", "x" * 5000],
                         ids=["empty", "word", "float", "negative", "space", "superscript", "newline", "long"])
def test_unreadable_format_version(tmp_path, valid, version):
    message = refused(write(tmp_path, with_meta(valid, format_version=version)), "format version")
    assert len(message) < 400


def test_missing_format_version(tmp_path, valid):
    refused(write(tmp_path, with_meta(valid, format_version=None)), "format version")


def test_older_format_versions_still_load(tmp_path, valid):
    for version in ("0", "1", "01"):
        assert load_checkpoint(write(tmp_path, with_meta(valid, format_version=version))).dataset == "digits"


# ---------------------------------------------------------------- bad model descriptions


def config_json(model, **changes) -> str:
    raw = json.loads(to_json(model.cfg))
    raw.update(changes)
    return json.dumps(raw)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "null", "{\"latent_dim\": 2}", "[" * 50_000],
                         ids=["empty", "text", "list", "null", "incomplete", "deep"])
def test_model_config_not_json_or_not_an_object(tmp_path, valid, text):
    refused(write(tmp_path, with_meta(valid, model_config=text)), "invalid model description")


def test_model_config_missing(tmp_path, valid):
    refused(write(tmp_path, with_meta(valid, model_config=None)), "invalid model description")


@pytest.mark.parametrize("changes, fragment", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"latent_dim": -3}, "latent_dim"),
    ({"latent_dim": "2"}, ""),
    ({"latent_dim": None}, ""),
    ({"latent_dim": 2.5}, ""),
    ({"latent_dim": 10 ** 30}, ""),
    ({"arch": "transformer"}, "arch"),
    ({"likelihood": "poisson"}, "likelihood"),
    ({"image_shape": [2, 8, 8]}, "image_shape"),
    ({"image_shape": [1, 8]}, "image_shape"),
    ({"image_shape": [1, 0, 8]}, "image_shape"),
    ({"image_shape": "abc"}, ""),
    ({"image_shape": 5}, ""),
    ({"hidden": []}, "hidden"),
    ({"hidden": [16, 0]}, "hidden"),
    ({"hidden": [[16]]}, ""),
    ({"logvar_min": 6.0, "logvar_max": -12.0}, "logvar"),
    ({"arch": "conv", "conv_channels": []}, "conv_channels"),
    ({"arch": "conv", "conv_channels": [4, 4, 4, 4, 4]}, "too small"),
])
def test_model_config_invalid_values(tmp_path, valid, model, changes, fragment):
    refused(write(tmp_path, with_meta(valid, model_config=config_json(model, **changes))),
            "invalid model description", fragment)


def test_model_config_with_infinite_size_is_refused(tmp_path, valid, model):
    text = config_json(model).replace('"image_shape": [1, 8, 8]', '"image_shape": [1, Infinity, 8]')
    assert "Infinity" in text
    refused(write(tmp_path, with_meta(valid, model_config=text)), "invalid model description")


@pytest.mark.parametrize("changes", [
    {"hidden": [2 ** 40]},
    {"hidden": [2 ** 62, 2 ** 62]},
    {"latent_dim": 2 ** 40},
    {"image_shape": [3, 2 ** 20, 2 ** 20]},
    {"arch": "conv", "image_shape": [3, 2 ** 30, 2 ** 30], "conv_channels": [2 ** 20]},
])
def test_model_config_that_claims_huge_layers_allocates_nothing(tmp_path, valid, model, changes):
    """A hostile config must be refused by comparing shapes, before any weight is allocated."""
    import resource

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    refused(write(tmp_path, with_meta(valid, model_config=config_json(model, **changes))))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024


def test_model_config_with_very_many_layers_is_refused_before_building(tmp_path, valid, model):
    refused(write(tmp_path, with_meta(valid, model_config=config_json(model, hidden=[1] * 200_000))), "layers")


@pytest.mark.parametrize("history", ["not json", "{}", "[1, 2]", "[{}, 3]", "\"x\"", "[" * 50_000,
                                     "[" + "1" * 5000 + "]"],
                         ids=["text", "object", "numbers", "mixed", "string", "deep", "long_int"])
def test_history_that_is_not_a_list_of_records_is_ignored(tmp_path, valid, history):
    ckpt = load_checkpoint(write(tmp_path, with_meta(valid, history=history)))
    assert ckpt.history == [] and len(ckpt.warnings) == 1 and ckpt.warnings[0].startswith("history ignored")


@pytest.mark.parametrize("train_config", ["not json", "[]", "{\"epochs\": 0}", "{\"lr\": -1}", "{\"device\": \"tpu\"}",
                                          "{\"epochs\": \"x\"}", "{\"batch_size\": null}"])
def test_train_config_invalid_is_ignored(tmp_path, valid, train_config):
    ckpt = load_checkpoint(write(tmp_path, with_meta(valid, train_config=train_config)))
    assert ckpt.train_config is None and ckpt.warnings[0].startswith("training settings ignored")


# ---------------------------------------------------------------- tensors that do not fit the model


def saved_with(model, tensors, **meta) -> bytes:
    return st_save(tensors, metadata=latentlab_meta(model, **meta))


def test_reference_file_built_by_hand_loads(tmp_path, model):
    """The helpers below build valid files; each test then breaks exactly one thing."""
    ckpt = load_checkpoint(write(tmp_path, saved_with(model, tensors_of(model))))
    assert all(torch.equal(v, ckpt.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_unexpected_tensor(tmp_path, model):
    tensors = tensors_of(model)
    tensors["extra.weight"] = torch.zeros(3)
    refused(write(tmp_path, saved_with(model, tensors)), "unexpected tensor", "extra.weight")


def test_missing_tensor(tmp_path, model):
    tensors = tensors_of(model)
    del tensors["enc_out.weight"]
    refused(write(tmp_path, saved_with(model, tensors)), "missing the tensor", "enc_out.weight")
    del tensors["log_sigma"], tensors["dec_out.bias"]
    refused(write(tmp_path, saved_with(model, tensors)), "missing the tensor", "2 more")
    refused(write(tmp_path, saved_with(model, {})), "missing")


@pytest.mark.parametrize("shape", [(16, 63), (63, 16), (16 * 64,), (1, 16, 64), ()])
def test_wrong_shape(tmp_path, model, shape):
    tensors = tensors_of(model)
    assert tensors["encoder.0.weight"].shape == (16, 64)
    tensors["encoder.0.weight"] = torch.zeros(shape)
    refused(write(tmp_path, saved_with(model, tensors)), "shape", "encoder.0.weight")


def test_tensors_of_a_different_model(tmp_path, model):
    other = small(latent_dim=3, likelihood="gaussian")
    refused(write(tmp_path, saved_with(model, tensors_of(other))), "shape")


@pytest.mark.parametrize("dtype, label", [(torch.float64, "F64"), (torch.float16, "F16"), (torch.bfloat16, "BF16"),
                                          (torch.int64, "I64"), (torch.int32, "I32"), (torch.uint8, "U8"),
                                          (torch.bool, "BOOL")])
@pytest.mark.parametrize("which", ["one", "all"])
def test_wrong_dtype(tmp_path, model, dtype, label, which):
    tensors = tensors_of(model)
    for key in (["dec_out.weight"] if which == "one" else list(tensors)):
        tensors[key] = tensors[key].to(dtype)
    refused(write(tmp_path, saved_with(model, tensors)), "dtype", label, "expected F32")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", ["encoder.0.weight", "dec_out.bias", "log_sigma"])
def test_non_finite_weights(tmp_path, model, key, value):
    tensors = tensors_of(model)
    tensors[key].view(-1)[-1] = value
    refused(write(tmp_path, saved_with(model, tensors)), "NaN or infinite", key)


def hand_header(valid, key, **spec_changes) -> bytes:
    header = json.loads(json.dumps(valid[1]))
    header[key].update(spec_changes)
    return assemble(header, valid[2])


@pytest.mark.parametrize("offsets", ["past_end", "way_past_end", "reversed", "overlap", "gap", "huge", "negative",
                                     "short", "floats"])
def test_data_offsets_outside_the_file(tmp_path, valid, offsets):
    _, header, body = valid
    key = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])  # the last one
    begin, end = header[key]["data_offsets"]
    assert end == len(body)
    new = {"past_end": [begin, end + 4], "way_past_end": [begin + 2 ** 40, end + 2 ** 40], "reversed": [end, begin],
           "overlap": [begin - 4, end - 4], "gap": [begin + 4, end + 4], "huge": [2 ** 64 - 5, 2 ** 64 - 1],
           "negative": [-4, end], "short": [begin], "floats": [float(begin), float(end)]}[offsets]
    refused(write(tmp_path, hand_header(valid, key, data_offsets=new)), "not a valid safetensors file")


def test_data_longer_than_the_tensors(tmp_path, valid):
    refused(write(tmp_path, valid[0] + b"\0" * 16), "not a valid safetensors file")


@pytest.mark.parametrize("spec", ["not a dict", None, [1], {"dtype": "F32"}, {"shape": [64]},
                                  {"dtype": ["F32"], "shape": [64], "data_offsets": [0, 256]},
                                  {"dtype": {"a": 1}, "shape": [64], "data_offsets": [0, 256]},
                                  {"dtype": "F32", "shape": 64, "data_offsets": [0, 256]},
                                  {"dtype": "F32", "shape": None, "data_offsets": [0, 256]},
                                  {"dtype": "F32", "shape": {"64": 1}, "data_offsets": [0, 256]},
                                  {"dtype": "F32", "shape": "@", "data_offsets": [0, 256]},
                                  {"dtype": "F32", "shape": [64.0], "data_offsets": [0, 256]}])
def test_malformed_tensor_entries(tmp_path, valid, spec):
    header = json.loads(json.dumps(valid[1]))
    header["dec_out.bias"] = spec
    refused(write(tmp_path, assemble(header, valid[2])))


def test_duplicate_tensor_names_never_disagree(tmp_path, valid):
    """JSON readers may keep the first or the last duplicate; either way the result is checked."""
    data, header, body = valid
    good = json.dumps(header["dec_out.bias"])
    bad = json.dumps({**header["dec_out.bias"], "shape": [8, 8]})
    text = json.dumps(header)
    assert f'"dec_out.bias": {good}' in text
    for first, second in ((good, bad), (bad, good), (bad, bad)):
        raw = text.replace(f'"dec_out.bias": {good}', f'"dec_out.bias": {first}, "dec_out.bias": {second}').encode()
        raw += b" " * (-len(raw) % 8)
        path = write(tmp_path, assemble(raw, body))
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            assert "\n" not in str(exc)
        else:
            assert ckpt.model.state_dict()["dec_out.bias"].shape == (64,)


# ---------------------------------------------------------------- pickles are refused and never executed


class Payload:
    """Unpickling this opens (and so creates) the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class ExecPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture(params=[Payload, ExecPayload])
def payload_cls(request):
    return request.param


def test_payloads_would_run_if_unpickled(tmp_path, payload_cls):
    """Control: the payloads really do create the marker when something unpickles them."""
    marker = tmp_path / "ran"
    result = pickle.loads(pickle.dumps(payload_cls(marker)))
    if hasattr(result, "close"):
        result.close()
    assert marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_raw_pickle_is_refused_unexecuted(tmp_path, payload_cls, protocol):
    marker = tmp_path / "pwned"
    path = write(tmp_path, pickle.dumps({"x": payload_cls(marker)}, protocol=protocol), "model.safetensors")
    message = refused(path)
    if protocol >= 2:
        assert "pickle" in message
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors", "model.ckpt"])
@pytest.mark.parametrize("zipfile", [True, False])
def test_torch_save_is_refused_unexecuted(tmp_path, payload_cls, name, zipfile):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"x": payload_cls(marker), "w": torch.zeros(3)}, path, _use_new_zipfile_serialization=zipfile)
    assert not marker.exists()
    message = refused(path, "zip" if zipfile else "pickle")
    assert "never unpickles" in message
    assert not marker.exists()


def test_torch_save_of_a_real_state_dict_is_refused(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "m.pt")
    refused(tmp_path / "m.pt", "zip")


@pytest.mark.skipif(sys.platform == "win32", reason="marker path quoting")
def test_pickle_inside_metadata_is_only_text(tmp_path, model):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(Payload(marker), protocol=0).decode("latin-1")
    path = write(tmp_path, saved_with(model, tensors_of(model), dataset=blob, history=json.dumps([{"p": blob}])))
    ckpt = load_checkpoint(path)
    assert ckpt.dataset == "" and ckpt.history == []  # neither parses as what it claims to be
    assert len(ckpt.warnings) == 2 and not marker.exists()


@pytest.mark.parametrize("field, value", [("latent_dim", True), ("logvar_min", "a"), ("hidden", [1.5]), ("arch", 3)])
def test_config_fields_of_the_wrong_type_are_refused(tmp_path, field, value):
    from safetensors import safe_open
    from safetensors.torch import load_file

    good = tmp_path / "good.safetensors"
    save_checkpoint(good, build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(16,)), seed=0), dataset="digits")
    with safe_open(str(good), "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["model_config"])
    cfg[field] = value
    meta["model_config"] = json.dumps(cfg)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(st_save(load_file(str(good)), metadata=meta))
    with pytest.raises(CheckpointError, match="wrong type"):
        load_checkpoint(bad)


def test_a_checkpoint_whose_header_length_starts_like_a_pickle_or_zip_still_opens(tmp_path):
    """The 8-byte header length is binary: 0x80 0x02 ... or "PK" ... there is not a pickle or a zip."""
    import struct

    from latentlab.core.files.checkpoint import load_checkpoint, pickled_format, save_checkpoint
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    path = save_checkpoint(tmp_path / "m.safetensors", build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(8,))),
                           dataset="digits")
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    for target in (0x0480, 0x4B50):   # little-endian: b"\x80\x04..." and b"PK..."
        pad = target - len(json.dumps(header, separators=(",", ":")))
        header["__metadata__"]["pad"] = "x" * (pad - len(',"pad":""'))
        text = json.dumps(header, separators=(",", ":")).encode()
        assert len(text) == target
        blob = struct.pack("<Q", len(text)) + text + data[8 + n:]
        assert pickled_format(blob) is None
        (tmp_path / "odd.safetensors").write_bytes(blob)
        assert load_checkpoint(tmp_path / "odd.safetensors").config.latent_dim == 2
        del header["__metadata__"]["pad"]
    assert pickled_format(b"\x80\x04\x95" + b"\x00" * 20) == "pickle"
    assert pickled_format(b"PK\x03\x04" + b"\x00" * 20) == "zip"
