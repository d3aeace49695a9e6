"""Checkpoints whose tensors are valid but whose JSON metadata is hostile: every case opens (with
the bad field dropped and one short warning) or is refused in one short sentence."""

import json
import math
import struct
import subprocess
import sys
import textwrap

import pytest
from hostile_metadata import ROW, K, histories, specs, train_configs, with_meta, worst_cases  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.cli import main
from latentlab.core.errors import CheckpointError
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.files.metadata import MAX_HISTORY_ROWS, NUMBERS, history_series, validate_history
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model

pytestmark = pytest.mark.slow   # seconds each; `-m "not slow"` skips them locally


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=K, hidden=(8,)), seed=0)
    path = save_checkpoint(tmp_path_factory.mktemp("meta") / "m.safetensors", model, dataset="digits",
                           history=[ROW], train_config=TrainConfig(epochs=3))
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def open_or_refuse(path):
    """The checkpoint, or None when refused; either way every message is one short line."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 400, str(exc)[:500]
        return None
    for w in ckpt.warnings:
        assert "\n" not in w and len(w) <= 300, w[:500]
    assert len(ckpt.history) <= MAX_HISTORY_ROWS
    for row in ckpt.history:  # what the views may trust
        assert set(row) <= {"epoch", "kl_per_dim", *NUMBERS}
        assert type(row["epoch"]) is int and all(math.isfinite(row[k]) for k in row if k in NUMBERS)
        assert len(row.get("kl_per_dim", [0] * K)) == K
    assert isinstance(ckpt.dataset, str) and len(ckpt.dataset) <= 4096
    return ckpt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories, spec=specs, train_config=train_configs, model_spec=st.one_of(st.none(), st.text(max_size=10)))
def test_fuzzed_metadata_opens_or_is_refused(tmp_path, base, history, spec, train_config, model_spec):
    text = json.dumps(history)  # json.dumps writes NaN and Infinity, as a hostile writer may
    path = tmp_path / "case.safetensors"
    path.write_bytes(with_meta(base, history=text, dataset=spec, train_config=json.dumps(train_config),
                               model_spec=model_spec))
    ckpt = open_or_refuse(path)
    assert ckpt is not None  # the tensors are valid: only optional fields were touched, so it opens


@pytest.mark.parametrize("row, why", [
    (dict(ROW, epoch="1"), "epoch"), (dict(ROW, beta="1"), "beta"), ({"epoch": 1}, "no"),
    (dict(ROW, recon=math.nan), "finite"), (dict(ROW, kl=math.inf), "finite"),
    (dict(ROW, kl_per_dim=[0.1] * 200_000), "200,000 values"), (dict(ROW, kl_per_dim=[0.1, "x", 1]), "numbers"),
    (dict(ROW, epoch=True), "epoch"), ([1, 2], "record"),
], ids=["string_epoch", "string_beta", "missing_keys", "nan", "infinity", "huge_kl_per_dim", "kl_text", "bool", "list"])
def test_bad_history_rows_drop_the_history_with_one_warning(tmp_path, base, row, why):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, history=json.dumps([ROW, row])))
    ckpt = open_or_refuse(path)
    assert ckpt.history == [] and len(ckpt.warnings) == 1
    assert ckpt.warnings[0].startswith("history ignored:") and why in ckpt.warnings[0]


def test_unknown_keys_are_dropped_and_a_long_history_keeps_its_newest_rows(tmp_path, base):
    n = MAX_HISTORY_ROWS + 5
    rows = [{"epoch": i, "beta": 1, "recon": 1, "kl": 0, "elbo": -1, "junk": "x"} for i in range(n)]
    kept, note = validate_history(rows, K)
    assert len(kept) == MAX_HISTORY_ROWS and kept[0]["epoch"] == 5 and "junk" not in kept[0]
    assert "newest 100,000 of 100,005" in note


def test_a_megabyte_dataset_spec_is_dropped_not_shown(tmp_path, base, capsys):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, dataset="images:/" + "a" * 5_000_000))
    ckpt = open_or_refuse(path)
    assert ckpt.dataset == "" and ckpt.warnings[0].startswith("dataset ignored")
    code = main(["eval", str(path), "--iw-samples", "0"])
    err = capsys.readouterr().err
    assert code == 2 and len(err) < 1200 and "Traceback" not in err


@pytest.mark.parametrize("spec", ["images:/", "npz:/dev/zero", "mnist:/proc", "images:/dev/shm"])
def test_eval_never_opens_a_system_location_named_by_a_checkpoint(tmp_path, base, capsys, spec):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, dataset=spec))
    code = main(["eval", str(path), "--iw-samples", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--dataset" in err[0]


def test_eval_of_a_file_with_a_bad_history_still_evaluates(tmp_path, base, capsys):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, history=json.dumps([dict(ROW, epoch="x")])))
    code = main(["eval", str(path), "--iw-samples", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["latent_dim"] == K
    assert err.strip().splitlines() == [err.strip()] and err.startswith("latentlab: warning: history ignored")


def test_a_big_k_history_saves_and_reads_back(tmp_path):
    # K = 100,000 for 30 epochs is 60 MB of JSON: older rows lose their per-dimension split.
    model = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=100_000, hidden=(2,)), seed=0)
    history = [dict(ROW, epoch=i + 1, kl_per_dim=[0.001] * 100_000) for i in range(30)]
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "k.safetensors", model, dataset="digits", history=history))
    assert len(ckpt.history) == 30 and sum("kl_per_dim" in r for r in ckpt.history) == 10
    series = history_series(ckpt.history, max_dims=16)
    assert series["per_dim"].shape == (30, 16) and list(series["epoch"][:2]) == [1, 2]


def test_hostile_metadata_costs_bounded_memory(tmp_path, base):
    """Peak RSS growth of loading the worst cases, measured in a fresh process (the test runner's
    own peak would hide it)."""
    cases = worst_cases(base)
    for name, data in cases.items():
        (tmp_path / f"{name}.safetensors").write_bytes(data)
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from latentlab.core.files.checkpoint import load_checkpoint
        load_checkpoint(Path({str(tmp_path)!r}) / "spec.safetensors")  # warm up imports
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name in ("kl", "spec", "rows"):
            ckpt = load_checkpoint(Path({str(tmp_path)!r}) / f"{{name}}.safetensors")
            print(name, len(ckpt.history), ckpt.warnings)
        print("growth_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    growth = int(result.stdout.split("growth_kb")[1])
    assert growth < 600_000, result.stdout  # the files are up to 16 MB; the validated results are small
