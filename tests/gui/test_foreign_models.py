"""The window on a user's own VAE: opened from a model SPEC (File → Open model…, the session, the
Python API), every view on the LatentModel protocol, fine-tuning a copy that never writes the
user's files, and bad models refused in one banner sentence while the old model stays."""

import hashlib

import numpy as np
import pytest
import torch
from gui_helpers import click_view, wait_idle
from PySide6 import QtWidgets
from safetensors import safe_open

from latentlab.core.files.model_spec import load_model, save_weights
from latentlab.core.inference.analysis import decode

USER_MODELS = '''
import math
import torch
from torch import nn


class MLP(nn.Module):
    """encode -> (mu, logvar), decode -> flat logits: the pytorch/examples VAE, small."""

    def __init__(self, latent=2, pixels=64):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Linear(pixels, 32), nn.ReLU(), nn.Linear(32, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, pixels))

    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, 1)

    def decode(self, z):
        return self.dec(z)


def make():
    return MLP()


def wide():
    return MLP(latent=40)


def frozen():
    m = MLP()
    m.requires_grad_(False)
    return m


def raises():
    raise RuntimeError("the weights server is down")


def not_a_vae():
    return nn.Linear(3, 3)


class WrongType(MLP):
    def encode(self, x):
        return "mu"


class WrongShape(MLP):
    def decode(self, z):
        return self.dec(z)[:, :10]


class NotFinite(MLP):
    def encode(self, x):
        mu, lv = super().encode(x)
        return mu * math.inf, lv


def wrong_type():
    return WrongType()


def wrong_shape():
    return WrongShape()


def not_finite():
    return NotFinite()


def for_colour_images():
    return MLP(pixels=3 * 8 * 8)
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_models.py"
    path.write_text(USER_MODELS)
    return path


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_spec(window, qtbot, spec, **kwargs):
    with qtbot.waitSignal(window.session.loaded, timeout=60000):
        window.open_model(spec, **kwargs)
    wait_idle(window.session)


def action(window, text):
    return next(a for a in window.menuBar().findChildren(type(window.save_action)) if a.text() == text)


def test_file_open_model_then_clicks_decode_with_the_users_model(window, qtbot, user_file, monkeypatch):
    from latentlab.gui.views.open_model import OpenModelDialog

    def fill_and_accept(dialog):
        dialog.spec.setText(f"{user_file}:make")
        dialog.likelihood.setCurrentText("bernoulli")
        return QtWidgets.QDialog.DialogCode.Accepted

    monkeypatch.setattr(OpenModelDialog, "exec", fill_and_accept)
    s = window.session
    with qtbot.waitSignal(s.loaded, timeout=60000):
        action(window, "Open &model…").trigger()
    wait_idle(s)
    md = s.model_data
    assert md.foreign and md.spec == f"{user_file}:make" and md.model.describe() in window.windowTitle()
    assert md.model.latent_dim == 2 and s.latent.points.shape == (len(md.data.x_train), 2)
    # the shape fields say why they are off; training still applies (it fine-tunes a copy)
    c = window.controls
    for w in (c.arch, c.hidden, c.likelihood, c.latent_dim, c.warm):
        assert not w.isEnabled() and ("Set by your model" in w.toolTip() or "always fine-tuned" in w.toolTip())
    assert c.button.isEnabled() and "Fine-tune a copy" in c.button.toolTip()
    assert c.latent_dim.value() == 2 and c.hidden.text() == ""
    # eval: the test-set numbers of the shown weights, beside the curves (there is no history yet)
    from latentlab.core.inference.analysis import evaluate

    expected = evaluate(md.model, md.data.x_test)
    assert md.evaluation["elbo"] == pytest.approx(expected["elbo"]) and md.evaluation["split"] == "test"
    assert f"ELBO {expected['elbo']:.2f} nats" in window.curves.evaluation.text()
    assert "Train fine-tunes a copy" in window.curves.empty_hint.toPlainText()

    before = window.decoded.current_image.copy()
    click_view(window.latent.plot, 1.5, -1.0)
    z = s.cursor.z
    assert np.allclose(z, [1.5, -1.0], atol=0.05)
    assert not np.allclose(window.decoded.current_image, before)
    # the image on screen is the user's model decoding that z
    reference = load_model(f"{user_file}:make")
    reference.image_shape, reference.latent_shape = (1, 8, 8), (2,)
    assert np.allclose(window.decoded.current_image, decode(reference, z[None])[0], atol=1e-5)


def test_bad_models_give_one_banner_sentence_and_keep_the_old_model(window, qtbot, user_file, tmp_path):
    s = window.session
    old_model, old_points = s.model_data.model, s.latent.points
    cases = [
        (str(tmp_path / "missing.py") + ":make", "does not exist"),
        ("no_such_module_xyz:make", "No Python module named 'no_such_module_xyz'"),
        (f"{user_file}:nowhere", "has no 'nowhere'"),
        (f"{user_file}:raises", "the weights server is down"),
        (f"{user_file}:not_a_vae", "not a VAE"),
        (f"{user_file}:wrong_type", "returned a str"),
        (f"{user_file}:wrong_shape", "returned shape (4, 10)"),
        (f"{user_file}:not_finite", "NaN or infinite"),
        (f"{user_file}:for_colour_images", "shapes cannot be multiplied"),  # 3×8×8 inputs, 1×8×8 images
        (f"diffusers:{tmp_path}", "diffusers"),
        (f"{user_file}:make", "does not exist"),   # with a weights file that is not there (below)
    ]
    for i, (spec, fragment) in enumerate(cases):
        with qtbot.waitSignal(s.errorRaised, timeout=60000) as blocker:
            window.open_model(spec, weights=tmp_path / "nope.safetensors" if i == len(cases) - 1 else None)
        wait_idle(s)
        message = blocker.args[0]
        assert fragment in message, (spec, message)
        assert "\n" not in message and "Traceback" not in message
        assert window.banner.isVisible() and window.banner.label.text() == message
        assert s.model_data.model is old_model and s.latent.points is old_points


def test_fine_tuning_leaves_the_users_files_byte_identical_and_save_keeps_the_spec(window, qtbot, user_file, tmp_path):
    s = window.session
    source = tmp_path / "mine.safetensors"
    base = load_model(f"{user_file}:make")
    save_weights(source, base, model_spec=f"{user_file}:make")
    hashes = (sha(source), sha(user_file))
    open_spec(window, qtbot, f"{user_file}:make", weights=source)
    md = s.model_data
    assert md.source == source and "mine.safetensors" in md.title
    start = {k: v.clone() for k, v in md.model.state_dict().items()}

    s.runs.set_request(epochs=2, beta=0.5)
    s.runs.train()
    wait_idle(s)
    assert len(md.history) == 2 and md.history[-1]["beta"] == pytest.approx(0.5)
    assert window.curves.empty_hint.toPlainText() == ""
    assert any(not torch.equal(start[k], v) for k, v in md.model.state_dict().items())
    assert (sha(source), sha(user_file)) == hashes

    # Save refuses the user's weights file in one sentence and writes nothing there
    with qtbot.waitSignal(s.errorRaised, timeout=5000) as blocker:
        s.save_checkpoint(source)
    assert "one of your model's own files" in blocker.args[0] and "--out" not in blocker.args[0]
    assert sha(source) == hashes[0]

    out = tmp_path / "tuned.safetensors"
    s.save_checkpoint(out)
    assert s.analyses.saver.wait()
    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["model_spec"] == f"{user_file}:make"
    reopened = load_model(f"{user_file}:make", weights=out)
    assert all(torch.equal(v, reopened.state_dict()[k]) for k, v in md.model.state_dict().items())
    assert (sha(source), sha(user_file)) == hashes and md.source == source


def test_frozen_model_disables_training_with_a_reason(window, qtbot, user_file):
    open_spec(window, qtbot, f"{user_file}:frozen")
    c = window.controls
    assert not c.button.isEnabled() and "no trainable parameters" in c.button.toolTip()
    assert not c.beta.isEnabled() and "no trainable parameters" in c.beta.slider.toolTip()
    assert not window.sweep.start.isEnabled() and "no trainable parameters" in window.sweep.start.toolTip()
    with qtbot.waitSignal(window.session.errorRaised, timeout=5000) as blocker:
        window.session.runs.train()
    assert "no trainable parameters" in blocker.args[0] and not window.session.runs.busy


def test_wide_latent_opens_on_pca_and_traverses_the_top_dims_by_kl(window, qtbot, user_file):
    s = window.session
    open_spec(window, qtbot, f"{user_file}:wide")
    assert s.model_data.model.latent_dim == 40
    assert s.latent.projection.kind == "pca" and window.latent.projection_combo.currentData() == "pca"
    assert not window.posterior.grid_size.isEnabled() and "K = 40" in window.posterior.grid_size.toolTip()
    t = window.traversals
    assert t.top_n.isEnabled() and not t.sort.isEnabled() and "top dimensions by KL" in t.sort.toolTip()
    window.tools.setCurrentWidget(t)
    wait_idle(s)
    kl, _ = s.dimension_stats()
    assert t.images.shape[:2] == (16, t.columns.value())
    assert t.order == list(np.argsort(-kl, kind="stable")[:16])
    t.top_n.setValue(5)
    wait_idle(s)
    assert t.images.shape[0] == 5 and len(t.row_labels) == 5
    # fine-tuned for an epoch: the KL-per-dimension curves are the 32 dimensions with the most KL
    s.runs.set_request(epochs=1)
    s.runs.train()
    wait_idle(s)
    last = s.model_data.history[-1]["kl_per_dim"]
    assert window.curves._dims == sorted(np.argsort(-np.asarray(last), kind="stable")[:32])
    assert len(window.curves.dim_curves) == 32 and s.model_data.evaluation["latent_dim"] == 40
    # back to the built-in K = 2 model: pairs of coordinates, every row, the grid inspector
    with qtbot.waitSignal(s.loaded, timeout=60000):
        s.load()
    wait_idle(s)
    assert s.latent.projection.kind == "dims" and not t.top_n.isEnabled() and t.sort.isEnabled()
    assert window.posterior.grid_size.isEnabled() and window.controls.arch.isEnabled()


def test_tiny_autoencoder_kl_opened_encoded_decoded_traversed(window, qtbot, tmp_path):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    diffusers.AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=2,
        norm_num_groups=4, sample_size=8, layers_per_block=1).save_pretrained(str(tmp_path / "ae"))
    s = window.session
    open_spec(window, qtbot, f"diffusers:{tmp_path / 'ae'}")
    md = s.model_data
    k = md.model.latent_dim
    assert md.foreign and k == 2 * 4 * 4 and s.latent.points.shape == (len(md.data.x_train), k)
    before = window.decoded.current_image.copy()
    click_view(window.latent.plot, 0.8, 0.4)
    assert not np.allclose(window.decoded.current_image, before)
    assert window.decoded.current_image.shape == (1, 8, 8)
    window.tools.setCurrentWidget(window.traversals)
    wait_idle(s)
    assert window.traversals.images.shape[:2] == (k, window.traversals.columns.value())
    # the traversal rows vary along their dimension
    assert np.ptp(window.traversals.images[0], axis=0).max() > 0


def test_a_dataset_the_model_cannot_read_is_refused_and_both_stay(window, qtbot, user_file):
    s = window.session
    open_spec(window, qtbot, f"{user_file}:make")
    model, data = s.model_data.model, s.model_data.data
    with qtbot.waitSignal(s.errorRaised, timeout=60000) as blocker:
        window.open_dataset_spec("sprites")
    wait_idle(s)
    assert "encoding images of shape" in blocker.args[0]
    assert s.model_data.model is model and s.model_data.data is data


def test_open_window_is_what_explore_opens_and_returns_at_once_in_ipython(qtbot, user_file, monkeypatch):
    import latentlab
    from latentlab import api
    from latentlab.core.data.specs import load_dataset
    from latentlab.gui import app

    data = load_dataset("digits")

    class Shell:
        active_eventloop = "qt"

    monkeypatch.setattr(api, "_ipython", lambda: Shell())
    monkeypatch.setattr(QtWidgets.QApplication, "exec", lambda *_: pytest.fail("explore ran the event loop"))
    net = load_model(f"{user_file}:make").net
    window = latentlab.explore(net, data.x_train[:300, 0], data.y_train[:300])
    try:
        assert window in app._open_windows and window.isVisible()
        wait_idle(window.session)
        md = window.session.model_data
        assert md.model.net is net and len(window.session.latent.points) == len(md.data.x_train)
        assert not window.save_action.isEnabled() and "Python object" in window.save_action.toolTip()
    finally:
        window.close()


def test_explore_runs_the_event_loop_in_a_plain_script(qtbot, user_file, monkeypatch):
    import latentlab
    from latentlab import api

    ran = []

    def exec_(*_):
        ran.append(1)
        for w in QtWidgets.QApplication.topLevelWidgets():
            if w.objectName() == "mainWindow" and w.isVisible():
                wait_idle(w.session)
                w.close()
        return 0

    monkeypatch.setattr(api, "_ipython", lambda: None)
    monkeypatch.setattr(QtWidgets.QApplication, "exec", exec_)
    latentlab.explore(load_model(f"{user_file}:make").net)
    assert ran == [1]


def test_cli_gui_model_weights_screenshot_and_a_refusal(user_file, tmp_path):
    import subprocess
    import sys

    weights = tmp_path / "w.safetensors"
    save_weights(weights, load_model(f"{user_file}:make"), model_spec=f"{user_file}:make")
    shot = tmp_path / "shot.png"
    ok = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--model", f"{user_file}:make", "--weights", str(weights),
                         "--screenshot", str(shot)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and shot.stat().st_size > 10_000, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--model", f"{user_file}:raises", "--screenshot",
                          str(tmp_path / "bad.png")], capture_output=True, text=True, timeout=300)
    lines = [line for line in bad.stderr.splitlines() if line.startswith("latentlab:")]
    assert bad.returncode == 2 and lines == ["latentlab: error: raises() raised RuntimeError: the weights server is down."]
    assert not (tmp_path / "bad.png").exists()


def test_beta_sweep_fine_tunes_copies_and_a_point_opens_in_copy_of_the_users_model(window, qtbot, user_file, tmp_path):
    s = window.session
    open_spec(window, qtbot, f"{user_file}:make")
    user_model = s.model_data.model
    s.runs.start_sweep([0.5, 4.0], epochs=1)
    wait_idle(s)
    points = s.runs.sweep_points
    assert [p.beta for p in points] == [0.5, 4.0] and all(p.config is None for p in points)
    window.sweep.save_to(tmp_path / "sweep")
    assert sorted(f.name for f in (tmp_path / "sweep").iterdir()) == ["beta_0.5.safetensors", "beta_4.safetensors"]
    s.use_sweep_point(points[1])
    wait_idle(s)
    md = s.model_data
    assert md.foreign and md.model is not user_model and md.spec == f"{user_file}:make"
    assert all(np.array_equal(v.numpy(), points[1].weights[k]) for k, v in md.model.state_dict().items())
    window.sweep.open_from(tmp_path / "sweep")
    assert [p.beta for p in s.runs.sweep_points] == [0.5, 4.0]


def test_a_slow_decoder_decodes_off_the_gui_thread_newest_position_winning(window, qtbot, tmp_path):
    (tmp_path / "slow.py").write_text(USER_MODELS + '''

import time


class Slow(MLP):
    def decode(self, z):
        time.sleep(0.06)
        return super().decode(z)


def slow():
    return Slow()
''')
    s = window.session
    open_spec(window, qtbot, f"{tmp_path / 'slow.py'}:slow")
    plot = window.latent.plot
    for x in (0.5, 1.0):   # two slow decodes on the GUI thread: from then on they go to a worker
        click_view(plot, x, 0.0)
    assert s._slow_decode
    import threading

    threads = []
    real = s.model_data.model.net.decode
    s.model_copy().net.decode = lambda z: threads.append(threading.current_thread()) or real(z)
    click_view(plot, -1.0, 1.0)
    click_view(plot, 1.5, -0.5)
    wait_idle(s)
    assert threads and threading.main_thread() not in threads
    assert np.allclose(s.cursor.z, [1.5, -0.5], atol=0.05)
    assert np.allclose(window.decoded.current_image, decode(s.model_data.model, s.cursor.z[None])[0], atol=1e-5)
