"""Hostile models, weights files and previews opened in a real window: users' models that fail after
the one-batch check, that are too wide, that exit; weights files naming system folders or reopened
with their history; previews without columns or of gigabytes. Each load ends, with the old model
kept or no model, and the banner says one sentence."""

from __future__ import annotations

import json
import re
import resource
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import wait_idle
from hostile_io import GB, data_size, safetensors_head, sparse

from latentlab.core.files.checkpoint import save_checkpoint
from latentlab.core.files.model_spec import load_model, save_weights
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model
from latentlab.core.text import MESSAGE_LIMIT

MODELS = Path(__file__).resolve().parents[1] / "hostile_models.py"
TRACEBACK = re.compile(r"Traceback|LinAlgError|PanicException|Signal source has been deleted")


def assert_sentence(msg: str) -> None:
    assert isinstance(msg, str) and 10 < len(msg) <= MESSAGE_LIMIT, repr(msg[:400])
    assert "\n" not in msg and "Traceback" not in msg, repr(msg)
    assert msg.endswith((".", "…", ")")), repr(msg)


class Outcome:
    """Every banner sentence and load announcement while `action` runs, once the load has ended."""

    def __init__(self, window, action, timeout=90000):
        s = window.session
        self.messages, self.loads = [], []
        slots = ((s.errorRaised, self.messages.append), (s.notice, self.messages.append),
                 (s.loaded, lambda: self.loads.append(1)))
        for signal, slot in slots:
            signal.connect(slot)
        try:
            action()
            wait_idle(s, timeout)   # fails the test if the load never ends
        finally:
            for signal, slot in slots:
                signal.disconnect(slot)
        for m in self.messages:
            assert_sentence(m)


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory):
    from PySide6 import QtCore

    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                             str(tmp_path_factory.mktemp("settings")))
    from latentlab.gui.main_window import MainWindow

    w = MainWindow()
    w.show()
    Outcome(w, w.session.load)
    assert w.session.model_data.model is not None
    yield w
    w.session.shutdown()
    w.close()
    w.deleteLater()


@pytest.fixture
def empty_window(bare_window):
    """A window with no model yet, as at start-up (conftest's bare_window)."""
    return bare_window


def refused_keeping_the_model(window, action, *fragments) -> str:
    s = window.session
    model, data = s.model_data.model, s.model_data.data
    out = Outcome(window, action)
    assert not out.loads and len(out.messages) == 1, out.messages
    assert s.model_data.model is model and s.model_data.data is data
    assert window.banner.isVisible() and window.banner.label.text() == out.messages[0]
    for fragment in fragments:
        assert fragment.lower() in out.messages[0].lower(), out.messages[0]
    return out.messages[0]


# ----- users' models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fragments", [
    ("raises_on_larger_batches", ("encode(x) on a batch of", "RuntimeError")),
    ("nan_after_the_check", ("NaN",)),
    ("exits_in_encode", ("SystemExit",)),
    ("exits_in_factory", ("SystemExit",)),
    ("integer_latents", ("int64",)),
    ("meta_latents", ("meta device",)),
    ("wide", ("200,000 latent dimensions",)),
    ("image_shape_abc", ("image_shape",)),
])
def test_a_hostile_model_is_refused_and_the_window_keeps_its_own(shared_window, qtbot, capfd, name, fragments):
    refused_keeping_the_model(shared_window, lambda: shared_window.open_model(f"{MODELS}:{name}"), *fragments)
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_a_systemexit_in_any_background_job_ends_it_with_a_sentence(shared_window, qtbot):
    def leaves():
        sys.exit(4)

    refused_keeping_the_model(shared_window, lambda: shared_window.session.jobs.submit("test-exit", leaves), "SystemExit")


# ----- weights files -------------------------------------------------------------------------------

def user_weights(tmp_path, **meta) -> Path:
    model = load_model(f"{MODELS}:good")
    model.latent_shape = (2,)
    return save_weights(tmp_path / "w.safetensors", model, model_spec=f"{MODELS}:good", **meta)


@pytest.mark.parametrize("named", ["images:/", "images:/usr/share", "images:~", "mnist:/proc"])
def test_a_weights_file_naming_a_system_folder_opens_on_the_default_data(empty_window, qtbot, capfd, tmp_path,
                                                                        monkeypatch, named):
    from latentlab.core.data import idx, image_folder

    def never(*_a, **_k):
        raise AssertionError(f"the window opened {named}, which a file only suggests")

    monkeypatch.setattr(image_folder, "load_image_folder", never)
    monkeypatch.setattr(idx, "load_idx_dataset", never)
    weights = user_weights(tmp_path, dataset=named)
    s = empty_window.session
    out = Outcome(empty_window, lambda: s.open_model(f"{MODELS}:good", weights))
    assert out.loads and s.model_data.dataset_spec == "digits"
    assert len(out.messages) == 1 and "embedded digits data instead" in out.messages[0], out.messages
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_reopened_weights_show_their_history(empty_window, qtbot, tmp_path):
    rows = [{"epoch": e, "beta": 1.0, "recon": 40.0 - e, "kl": 2.0, "elbo": -42.0 + e, "kl_per_dim": [1.5, 0.5]}
            for e in (1, 2, 3)]
    weights = user_weights(tmp_path, dataset="digits", history=rows)
    s = empty_window.session
    out = Outcome(empty_window, lambda: s.open_model(f"{MODELS}:good", weights))
    # the one note is what every model without a declared prior gets; nothing about the history
    assert out.loads and all("assumed as the prior" in m for m in out.messages), out.messages
    assert [r["epoch"] for r in s.model_data.history] == [1, 2, 3]
    x, y = empty_window.curves.curves["recon"].getData()
    assert list(x) == [1, 2, 3] and np.allclose(y, [39, 38, 37])


def test_a_weights_file_opened_as_a_checkpoint_says_how_to_open_it(shared_window, qtbot, tmp_path):
    weights = user_weights(tmp_path)
    refused_keeping_the_model(shared_window, lambda: shared_window.open_checkpoint(weights), "--model", "--weights")


# ----- latent previews at start-up ------------------------------------------------------------------

def checkpoint_with_preview(tmp_path, n, k, sparse_tail=False) -> Path:
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), seed=0)
    base = save_checkpoint(tmp_path / "base.safetensors", model, dataset="digits")
    data = base.read_bytes()
    (m,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + m])
    meta = dict(header.pop("__metadata__"), format_version="2",
                preview=json.dumps({"label_names": ["a"], "dataset": "digits"}))
    order = sorted(header, key=lambda key: header[key]["data_offsets"][0])
    head = safetensors_head({key: (header[key]["dtype"], header[key]["shape"]) for key in order}
                            | {"preview.means": ("F32", (n, k)), "preview.labels": ("I32", (n,))}, meta)
    path = tmp_path / f"preview-{n}x{k}.safetensors"
    if sparse_tail:
        return sparse(path, data_size(head), head + data[8 + m:])
    path.write_bytes(head + data[8 + m:] + np.zeros((n, k), np.float32).tobytes() + np.zeros(n, np.int32).tobytes())
    return path


@pytest.mark.parametrize("n, k, sparse_tail, loads", [
    (50, 0, False, True), (2, 5000, False, True), (300_000_000, 2, True, True), (700_000_000, 2, True, False),
], ids=["no_columns", "too_wide", "three_gb", "five_gb"])
def test_a_hostile_preview_is_not_drawn_and_the_load_ends(empty_window, qtbot, capfd, tmp_path, n, k, sparse_tail, loads):
    """As at start-up (app.run): the preview first, then the load. A preview of 3.6 GB in a
    checkpoint under the size limit costs nothing (the model's tensors alone are read)."""
    path = checkpoint_with_preview(tmp_path, n, k, sparse_tail)
    s = empty_window.session
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert s.show_preview(path) is False
    out = Outcome(empty_window, lambda: s.load(path))
    if loads:
        assert out.loads and s.model_data.model is not None and out.messages == []
    else:
        assert path.stat().st_size > 5 * GB
        assert not out.loads and s.model_data.model is None and len(out.messages) == 1
        assert "larger than any checkpoint" in out.messages[0]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 400_000   # kB; the files are GB
    assert not TRACEBACK.search(capfd.readouterr().err)


# ----- outputs ---------------------------------------------------------------------------------------

def test_an_export_never_replaces_the_dataset_file(empty_window, qtbot, tmp_path):
    from hostile_io import digests

    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((40, 8, 8), dtype=np.float32), y=rng.integers(0, 3, 40))
    s = empty_window.session
    assert Outcome(empty_window, lambda: empty_window.open_dataset_spec(f"npz:{data}")).loads
    before = digests(data)
    s.selection.set(np.arange(5))
    for export in (s.analyses.export_latent_means, s.analyses.export_selection):
        out = Outcome(empty_window, lambda export=export: export(data))
        assert len(out.messages) == 1 and "never replaces its input" in out.messages[0], out.messages
    assert digests(data) == before
