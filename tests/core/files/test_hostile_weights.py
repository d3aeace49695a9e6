"""Hostile safetensors files, whichever reader meets them (checkpoint, weights file, preview): read
header first and bounded, only regular files, only the tensors used; memory measured in a fresh
interpreter on sparse files of gigabytes (they read as zeros and cost no disk)."""

import json
import struct

import numpy as np
import pytest
import torch
from hostile_io import GB, assert_one_line, data_size, fifo, measured, safetensors_head, sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import CheckpointError, LatentLabError, ModelError
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.files.model_spec import open_model, save_weights
from latentlab.core.files.preview import read_preview
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model
from latentlab.core.text import short

MODELS = __import__("pathlib").Path(__file__).resolve().parents[2] / "hostile_models.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(8,)), seed=0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "base.safetensors", model, dataset="digits")


def tensors_of(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    order = sorted(header, key=lambda k: header[k]["data_offsets"][0])   # as the data lies in the file
    return {k: (header[k]["dtype"], header[k]["shape"]) for k in order}, header, data[8 + n:]


# ----- regular files only, for every reader --------------------------------------------------------

def test_a_fifo_is_refused_by_every_reader_without_blocking(tmp_path, checkpoint):
    """Each reader is handed a FIFO nobody writes to: reading it would wait forever, so a fresh
    interpreter runs them all under a timeout and each must answer in one sentence."""
    pipe = fifo(tmp_path / "pipe.safetensors")
    folder = tmp_path / "ae"
    folder.mkdir()
    fifo(folder / "config.json")
    table = fifo(tmp_path / "table.npz")
    result = measured(f"""
        from latentlab.core.errors import LatentLabError
        out = {{}}
        for name, call in [
            ("checkpoint", lambda: load_checkpoint({str(pipe)!r})),
            ("weights", lambda: open_model({str(MODELS)!r} + ":good", weights={str(pipe)!r})),
            ("preview", lambda: read_preview({str(pipe)!r})),
            ("diffusers config", lambda: check_folder({str(folder)!r})),
            ("latent table", lambda: read_table({str(table)!r})),
        ]:
            try:
                out[name] = repr(call())
            except LatentLabError as exc:
                out[name] = str(exc)
        result.update(out)
    """, prelude="""
        from latentlab.core.files.checkpoint import load_checkpoint
        from latentlab.core.files.diffusers_folder import check_folder
        from latentlab.core.tables.table_reader import read_table
        from latentlab.core.files.model_spec import open_model
        from latentlab.core.files.preview import read_preview
    """, timeout=120)
    assert "error" not in result, result
    assert result["preview"] == "None"
    for name in ("checkpoint", "weights", "diffusers config", "latent table"):
        assert "not a regular file" in result[name] and "\n" not in result[name], (name, result[name])


def test_a_folder_is_named_as_such(tmp_path):
    (tmp_path / "w.safetensors").mkdir()
    with pytest.raises(ModelError) as info:
        open_model(f"{MODELS}:good", weights=tmp_path / "w.safetensors")
    assert str(info.value).endswith("is a folder, not a weights file.")


# ----- header first: gigabytes claimed or held, megabytes used -------------------------------------

def test_all_zero_files_of_gigabytes_are_refused_after_reading_their_header(tmp_path):
    ckpt = sparse(tmp_path / "zeros.safetensors", 4 * GB - 4096)
    weights = sparse(tmp_path / "zeros-weights.safetensors", 7 * GB)
    result = measured(f"""
        for key, call in (("checkpoint", lambda: load_checkpoint({str(ckpt)!r})),
                          ("weights", lambda: open_model({str(MODELS)!r} + ":good", weights={str(weights)!r}))):
            try:
                call()
            except LatentLabError as exc:
                result[key] = str(exc)
    """, prelude="""
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.checkpoint import load_checkpoint
        from latentlab.core.files.model_spec import open_model
    """, timeout=120)
    assert "not valid JSON" in result["checkpoint"] or "not JSON" in result["checkpoint"], result
    assert "not JSON" in result["weights"], result
    assert result["growth_mb"] < 64, result   # the files are 4 and 7 GB


def test_an_extra_tensor_of_gigabytes_is_never_read(tmp_path, checkpoint):
    """A weights file with a 3 GB tensor the model lacks is refused from its header; a checkpoint
    whose latent preview claims 3 GB loads its model tensors alone, and its preview is ignored."""
    weights = tmp_path / "extra.safetensors"
    good = build_weights(tmp_path)
    names, header, body = tensors_of(good)
    head = safetensors_head({**names, "extra": ("F32", (750_000_000,))})
    sparse(weights, data_size(head), head)
    # the model's real tensors first, then the claimed preview (left sparse: zeros)
    names, header, body = tensors_of(checkpoint)
    meta = json.loads(checkpoint.read_bytes()[8:8 + struct.unpack("<Q", checkpoint.read_bytes()[:8])[0]])["__metadata__"]
    head = safetensors_head({**names, "preview.means": ("F32", (250_000_000, 3)), "preview.labels": ("I32", (250_000_000,))},
                            {**meta, "format_version": "2", "preview": json.dumps({"label_names": ["a"], "dataset": "digits"})})
    big = tmp_path / "big-preview.safetensors"
    sparse(big, data_size(head), head + body)
    assert 3.5 * GB < big.stat().st_size < 4 * GB
    result = measured(f"""
        try:
            open_model({str(MODELS)!r} + ":good", weights={str(weights)!r})
        except LatentLabError as exc:
            result["weights"] = str(exc)
        result["preview"] = repr(read_preview({str(big)!r}))
        result["latent_dim"] = load_checkpoint({str(big)!r}).config.latent_dim
    """, prelude="""
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.checkpoint import load_checkpoint
        from latentlab.core.files.model_spec import open_model
        from latentlab.core.files.preview import read_preview
    """, timeout=120)
    assert "unexpected tensor 'extra'" in result["weights"], result
    assert result["preview"] == "None" and result["latent_dim"] == 3, result
    assert result["growth_mb"] < 64, result


def build_weights(tmp_path):
    from latentlab.core.files.model_spec import load_model

    model = load_model(f"{MODELS}:good")
    model.latent_shape = (2,)
    return save_weights(tmp_path / "good-weights.safetensors", model, model_spec=f"{MODELS}:good")


def test_eval_of_a_checkpoint_with_a_preview_of_gigabytes_reads_the_model_alone(tmp_path, checkpoint):
    """Under the checkpoint size limit, a preview of 3.7 GB: eval reads the model's tensors (kB) and
    evaluates; the whole file was read (and its tensors copied) before."""
    names, _, body = tensors_of(checkpoint)
    meta = json.loads(checkpoint.read_bytes()[8:8 + struct.unpack("<Q", checkpoint.read_bytes()[:8])[0]])["__metadata__"]
    head = safetensors_head({**names, "preview.means": ("F32", (310_000_000, 2)), "preview.labels": ("I32", (310_000_000,))},
                            {**meta, "format_version": "2"})
    path = sparse(tmp_path / "big.safetensors", data_size(head), head + body)
    assert 3.4 * GB < path.stat().st_size < 4 * GB
    result = measured(f"""
        result["code"] = main(["eval", {str(path)!r}, "--dataset", "digits", "--iw-samples", "0", "--json"])
    """, prelude="import torch\nfrom latentlab.cli import main", timeout=180)
    assert result.get("code") == 0 and result["growth_mb"] < 100, result


# ----- the reader's header checks, fuzzed ----------------------------------------------------------

entries = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from(["F32", "I32", "F16", "U8", "I64"]), st.text(max_size=5)),
    "shape": st.one_of(st.lists(st.integers(0, 2 ** 40), max_size=4), st.lists(st.integers(-3, 6), max_size=3)),
    "data_offsets": st.lists(st.integers(-5, 2 ** 45), min_size=0, max_size=3),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.dictionaries(st.text(min_size=1, max_size=6), entries, max_size=4),
       size=st.one_of(st.integers(0, 4096), st.just(5 * GB)), body=st.binary(max_size=256))
def test_any_header_is_checked_against_the_real_file_size(tmp_path, header, size, body):
    from latentlab.core.files.safetensors_file import read_header, read_tensors

    raw = json.dumps(header).encode()
    path = tmp_path / "fuzz.safetensors"
    sparse(path, max(size, 8 + len(raw) + len(body)), struct.pack("<Q", len(raw)) + raw + body)
    try:
        checked = read_header(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400
        return
    ends = sorted(e.nbytes for e in checked.tensors.values())
    assert sum(ends) == checked.size - 8 - len(raw)
    small = [k for k, e in checked.tensors.items() if e.nbytes <= 1 << 20]
    arrays = read_tensors(checked, small)   # never a panic of the binding: the header has checked out
    assert all(a.nbytes == checked.tensors[k].nbytes for k, a in arrays.items())


def test_header_messages_say_what_is_wrong(tmp_path, checkpoint):
    path = tmp_path / "claims.safetensors"
    path.write_bytes(struct.pack("<Q", 100 * 2 ** 20) + b"{}" + b" " * 64)
    with pytest.raises(CheckpointError, match="header claims 104,857,600 bytes, more than the 16 MB"):
        load_checkpoint(path)
    path.write_bytes(checkpoint.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated or claims more than it has"):
        load_checkpoint(path)


# ----- previews that do not check out are not drawn ------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 0), (0, 3), (2, 5000)], ids=["no_columns", "no_rows", "too_wide"])
def test_a_preview_without_columns_rows_or_too_wide_is_ignored(tmp_path, checkpoint, shape):
    names, _, body = tensors_of(checkpoint)
    n, k = shape
    means = np.zeros((n, k), np.float32).tobytes()
    labels = np.zeros(n, np.int32).tobytes()
    meta = {"format": "latentlab-vae", "format_version": "2",
            "preview": json.dumps({"label_names": ["a"], "dataset": "digits"})}
    head = safetensors_head({**names, "preview.means": ("F32", shape), "preview.labels": ("I32", (n,))}, meta)
    path = tmp_path / "p.safetensors"
    path.write_bytes(head + body + means + labels)
    assert read_preview(path) is None


# ----- weights files: reopened with their history, saved as checkpoints are -----------------------

def test_reopened_weights_keep_their_history(tmp_path, capsys):
    from latentlab.core.files.model_spec import load_model

    spec = f"{MODELS}:good"
    model = load_model(spec)
    model.latent_shape = (2,)
    row = {"epoch": 1, "beta": 1.0, "recon": 30.0, "kl": 2.0, "elbo": -32.0, "kl_per_dim": [1.5, 0.5]}
    bad = dict(row, epoch=2, recon=float("nan"))   # cleaned away when saved, as a checkpoint's would be
    path = save_weights(tmp_path / "w.safetensors", model, model_spec=spec, dataset="digits",
                        history=[row, bad, dict(row, epoch=3)])
    opened = open_model(spec, weights=path)
    assert opened.dataset == "digits"
    opened.check(load_dataset("digits").x_train[:8])
    assert [r["epoch"] for r in opened.history] == [1, 3] and opened.warnings == ()
    assert main(["eval", "--model", spec, "--weights", str(path), "--iw-samples", "0"]) == 0
    assert "history ignored" not in capsys.readouterr().err


def test_weights_and_checkpoints_share_one_metadata_builder(tmp_path):
    """A SPEC too long for any reader is left out when saved (a weights file used to keep it), and
    the file reads back without a warning about it."""
    from latentlab.core.files.model_spec import load_model, weights_bytes

    spec = f"{MODELS}:good"
    model = load_model(spec)
    model.latent_shape = (2,)
    raw = weights_bytes(model, model_spec=spec, dataset="images:/" + "a" * 10_000)
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + n])["__metadata__"]
    assert meta["dataset"] == "" and meta["format"] == "latentlab-weights" and meta["model_spec"] == spec


def test_a_weights_file_opened_as_a_checkpoint_says_how_to_open_it(tmp_path, capsys):
    path = build_weights(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert f"--model {MODELS}:good --weights" in str(info.value)
    assert main(["eval", str(path)]) == 2   # the path `gui --checkpoint` takes as well
    assert_one_line(capsys.readouterr().err, "--weights")


# ----- what a file says is never a terminal escape -------------------------------------------------

def test_control_characters_from_a_file_never_reach_the_terminal(tmp_path, capsys):
    from latentlab.core.files.model_spec import load_model

    model = load_model(f"{MODELS}:good")
    model.latent_shape = (2,)
    evil = "x.py:make\x1b]0;owned\x07\x1b[2J\u202e"
    path = save_weights(tmp_path / "w.safetensors", model, model_spec=evil)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert_one_line(err, "--weights")
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert short("a\x1b[2Jb\x07c\u202ed\x00") == "a[2Jbcd"


def test_a_header_length_of_zero_in_a_weights_file_is_one_sentence(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(LatentLabError) as info:
        open_model(f"{MODELS}:good", weights=path)
    assert "not JSON" in str(info.value) and torch is not None
