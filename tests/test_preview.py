"""The latent preview a checkpoint carries: written with the model's own means, read back without
torch, validated field by field, and drawn by the window before the model has loaded (a click made
meanwhile is decoded once it has)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from latentlab.core.analysis import encode
from latentlab.core.bundled import EXAMPLES
from latentlab.core.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.config import ModelConfig
from latentlab.core.data import load_dataset
from latentlab.core.model import build_model
from latentlab.core.preview import MAX_PREVIEW_BYTES, compute_preview, read_preview

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

    from latentlab.core.checkpoint import checkpoint_bytes

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


FIRST_LIGHT = r"""
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, sys.argv[1])
from latentlab.gui.main_window import MainWindow
w = MainWindow()
w.show()
s = w.session
r = {"shown": s.show_preview()}
app.processEvents()
plot = w.latent.plot
r.update(count=plot.cloud.count(), torch="torch" in sys.modules, waiting=s.cursor.waiting,
         legend=len(plot.legend.items), x_label=plot.getPlotItem().getAxis("bottom").labelText)
s.set_view_point(1.25, -0.5)                     # a click on the preview, before there is a model
r.update(pending=s.cursor.waiting, decoded_early=s.cursor.z is not None)
loaded = []
s.loaded.connect(lambda: loaded.append(1))
s.load()
s.wait_until_idle(120000)
r.update(loaded=len(loaded), z=[float(v) for v in s.cursor.z], image=s.cursor.image is not None,
         after=plot.cloud.count(), waiting_after=s.cursor.waiting)
print("RESULT " + json.dumps(r), flush=True)
s.shutdown()
os._exit(0)
"""


def test_window_draws_the_preview_before_torch_and_decodes_an_early_click(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FIRST_LIGHT, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stderr[-2000:]
    r = json.loads(line[7:])
    assert r["shown"] and r["count"] == 1438 and not r["torch"]   # digits' training split, drawn with numpy alone
    assert r["legend"] == 10 and r["x_label"] == "z1"
    assert r["waiting"] == "Loading model…" and "click" in r["pending"] and not r["decoded_early"]
    assert r["loaded"] == 1 and r["image"] and r["after"] == 1438 and r["waiting_after"] == ""
    assert r["z"] == pytest.approx([1.25, -0.5])   # the early click, decoded once the model was ready


def test_a_preview_for_another_dataset_is_not_shown(qtbot, tmp_path):
    from latentlab.gui.session import Session

    s = Session()
    assert not s.show_preview(None, "sprites")   # the bundled default's means are of digits
    assert s.latent.preview is None
    assert s.show_preview(None, "digits") and len(s.latent.preview.means) == 1438
    s.shutdown()


def test_saving_from_the_window_stores_the_shown_means(window, tmp_path):
    from gui_helpers import wait_idle

    s = window.session
    wait_idle(s)
    s.save_checkpoint(tmp_path / "w.safetensors")
    p = read_preview(tmp_path / "w.safetensors", latent_dim=2)
    assert p is not None and np.array_equal(p.means, s.latent.points)
    assert np.array_equal(p.labels, s.model_data.data.y_train) and p.dataset == "digits"


def test_the_latentlab_command_reaches_the_window_without_importing_torch():
    """`latentlab` parses its arguments and hands over to the GUI with torch still unimported (the
    help text's SPEC lists, which live beside torch-using loaders, are built only for --help)."""
    code = ("import sys\nimport latentlab.gui.app as app\n"
            "app.run = lambda **kw: print('TORCH', 'torch' in sys.modules) or 0\n"
            "from latentlab.cli import main\nsys.exit(main([]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "TORCH False" in proc.stdout, proc.stdout + proc.stderr[-1000:]


def test_a_failed_first_load_drops_the_waiting_click(qtbot, tmp_path):
    from latentlab.gui.session import Session

    s = Session()
    assert s.show_preview()
    s.set_view_point(1.0, 1.0)
    assert s._pending_point == (1.0, 1.0) and "click" in s.cursor.waiting
    with qtbot.waitSignal(s.errorRaised, timeout=60000):
        s.load(tmp_path / "missing.safetensors")
    s.wait_until_idle()
    assert s._pending_point is None and s.cursor.waiting == ""
    s.shutdown()
