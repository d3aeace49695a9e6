"""Bad input in the GUI: each case shows one clear sentence in the banner, and the app keeps
working on what it had (same model object, same dataset, clicks still decode).

Covers broken checkpoints (window.open_checkpoint), broken datasets (window.open_dataset_spec),
and running out of memory while training or while encoding the full dataset in a worker.
"""

from __future__ import annotations

import pickle
import re
import shutil
import threading
import zipfile

import numpy as np
import pytest
import torch
from gui_helpers import click_view, wait_idle
from PySide6 import QtCore
from PySide6.QtTest import QTest

LEFT = QtCore.Qt.MouseButton.LeftButton


def pool() -> QtCore.QThreadPool:
    return QtCore.QThreadPool.globalInstance()


def assert_one_sentence(msg: str) -> None:
    """What the user reads: one line, no traceback, not a bare exception repr, ends like a sentence."""
    assert isinstance(msg, str) and msg.strip() == msg and len(msg) > 10, repr(msg)
    assert "\n" not in msg and "\r" not in msg, repr(msg)
    assert "Traceback" not in msg and 'File "' not in msg, repr(msg)
    assert not re.match(r"^[\w.]*(Error|Exception)\b", msg), f"a raw exception, not a sentence: {msg!r}"
    assert msg.endswith((".", "!", "?")), f"does not end like a sentence: {msg!r}"
    assert len(msg) < 600, repr(msg)


def assert_still_decodes(window, target=(0.9, -0.7)) -> None:
    s = window.session
    before = window.decoded.current_image.copy()
    if s.cursor.z is not None and np.allclose(s.cursor.z, target, atol=0.3):
        target = (-target[0], -target[1])
    click_view(window.latent.plot, *target)
    assert s.cursor.z == pytest.approx(target, abs=0.05)
    image = window.decoded.current_image
    assert np.isfinite(image).all() and not np.allclose(image, before)


def expect_one_error(window, qtbot, action, timeout=30000) -> str:
    """Run action(); exactly one error sentence must come, be shown, and change nothing else."""
    s = window.session
    model, data, spec, ckpt_path = s.model_data.model, s.model_data.data, s.model_data.dataset_spec, s.model_data.source
    n_points = None if s.latent.points is None else s.latent.points.shape
    messages, loads = [], []
    on_error, on_loaded = messages.append, (lambda: loads.append(1))
    s.errorRaised.connect(on_error)
    s.loaded.connect(on_loaded)
    try:
        with qtbot.waitSignal(s.errorRaised, timeout=timeout):
            action()
        wait_idle(s, timeout)
    finally:
        s.errorRaised.disconnect(on_error)
        s.loaded.disconnect(on_loaded)
    assert len(messages) == 1, messages
    msg = messages[0]
    assert_one_sentence(msg)
    assert window.banner.isVisible() and window.banner.label.text() == msg
    assert not loads, "a failed load still announced itself as loaded"
    assert s.model_data.model is model and s.model_data.data is data and s.model_data.dataset_spec == spec and s.model_data.source == ckpt_path
    assert (None if s.latent.points is None else s.latent.points.shape) == n_points
    assert_still_decodes(window)
    return msg


# ----- broken checkpoints ------------------------------------------------------------------------

def _bundled():
    from latentlab.core.files.bundled import default_checkpoint

    return default_checkpoint()


def make_random_bytes(tmp_path):
    path = tmp_path / "random-bytes.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


def make_empty(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    return path


def make_truncated_header(tmp_path):
    path = tmp_path / "cut-in-header.safetensors"
    path.write_bytes(_bundled().read_bytes()[:200])
    return path


def make_truncated_data(tmp_path):
    path = tmp_path / "cut-in-weights.safetensors"
    data = _bundled().read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_truncated_last_byte(tmp_path):
    path = tmp_path / "one-byte-short.safetensors"
    path.write_bytes(_bundled().read_bytes()[:-1])
    return path


class Boom:  # what a hostile pickle would rebuild; loading must never unpickle
    def __reduce__(self):
        return (threading.Thread, ())


def make_pickle(tmp_path):
    path = tmp_path / "a-pickle.safetensors"
    path.write_bytes(pickle.dumps({"state_dict": {"w": np.zeros(3)}, "boom": Boom()}, protocol=4))
    return path


def make_torch_zip(tmp_path):
    path = tmp_path / "torch-save.safetensors"
    torch.save({"encoder.0.weight": torch.zeros(4, 4)}, path)
    assert zipfile.is_zipfile(path)
    return path


def make_missing(tmp_path):
    return tmp_path / "no-such-file.safetensors"


def make_folder(tmp_path):
    path = tmp_path / "a-folder.safetensors"
    path.mkdir()
    return path


CHECKPOINTS = {
    "random bytes": (make_random_bytes, ()),
    "empty file": (make_empty, ()),
    "truncated in the header": (make_truncated_header, ()),
    "truncated in the weights": (make_truncated_data, ()),
    "one byte short": (make_truncated_last_byte, ()),
    "pickle renamed": (make_pickle, ("pickle",)),
    "torch.save zip": (make_torch_zip, ("zip",)),
    "missing file": (make_missing, ("not exist",)),
    "a folder": (make_folder, ("folder",)),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_broken_checkpoint_says_one_sentence_and_keeps_the_model(window, qtbot, tmp_path, case):
    make, fragments = CHECKPOINTS[case]
    path = make(tmp_path)
    assert path != _bundled()
    msg = expect_one_error(window, qtbot, lambda: window.open_checkpoint(path))
    assert path.name in msg, msg
    for fragment in fragments:
        assert fragment in msg.lower(), msg


def test_bundled_checkpoint_copy_still_loads_after_errors(window, qtbot, tmp_path):
    """The checks above are not simply refusing everything: errors first, then a good copy loads."""
    expect_one_error(window, qtbot, lambda: window.open_checkpoint(make_truncated_data(tmp_path)))
    good = tmp_path / "good-copy.safetensors"
    shutil.copyfile(_bundled(), good)
    with qtbot.waitSignal(window.session.loaded, timeout=60000):
        window.open_checkpoint(good)
    assert not window.banner.isVisible()
    assert window.session.model_data.source == good
    assert_still_decodes(window)


# ----- broken datasets ---------------------------------------------------------------------------

def idx_bytes(magic: int, shape: tuple[int, ...], fill: int = 0) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in shape)
    return head + bytes([fill]) * int(np.prod(shape))


def spec_unknown(tmp_path):
    return "nosuch:thing", ("nosuch",)


def spec_missing_folder(tmp_path):
    return f"mnist:{tmp_path / 'no-such-folder'}", ("no-such-folder",)


def spec_idx_wrong_magic(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(2052, (10, 28, 28)))  # 2051 is right
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(2049, (10,)))
    return f"mnist:{folder}", ("train-images-idx3-ubyte", "magic")


def spec_empty_image_folder(tmp_path):
    folder = tmp_path / "no-images"
    (folder / "cats").mkdir(parents=True)
    (folder / "readme.txt").write_text("nothing here")
    return f"images:{folder}", ("no-images",)


def spec_npz_nan(tmp_path):
    path = tmp_path / "has-nan.npz"
    x = np.random.default_rng(0).random((50, 8, 8)).astype(np.float32)
    x[3, 4, 4] = np.nan
    np.savez(path, x=x, y=np.arange(50) % 10)
    return f"npz:{path}", ("has-nan.npz", "nan")


def spec_npz_missing(tmp_path):
    return f"npz:{tmp_path / 'gone.npz'}", ("gone.npz",)


DATASETS = {
    "unknown spec": spec_unknown,
    "missing folder": spec_missing_folder,
    "IDX with a wrong magic number": spec_idx_wrong_magic,
    "empty image folder": spec_empty_image_folder,
    "npz with NaN": spec_npz_nan,
    "missing npz": spec_npz_missing,
}


@pytest.mark.parametrize("case", list(DATASETS))
def test_broken_dataset_says_one_sentence_and_keeps_data_and_model(window, qtbot, tmp_path, case):
    spec, fragments = DATASETS[case](tmp_path)
    data = window.session.model_data.data
    msg = expect_one_error(window, qtbot, lambda: window.open_dataset_spec(spec))
    for fragment in fragments:
        assert fragment.lower() in msg.lower(), msg
    assert window.session.model_data.data is data and window.session.model_data.dataset_spec == "digits"
    assert window.latent.plot.cloud.count() == len(data.x_train)


def test_broken_dataset_typed_into_the_dataset_box(window, qtbot, tmp_path):
    """The same through the real widget: type a spec into the Dataset combo box and press Enter.
    Keys go to the combo box itself, which is the focus widget there (its line edit is internal)."""
    spec, _ = spec_missing_folder(tmp_path)
    box = window.controls.dataset

    def type_spec():
        box.setFocus()
        QTest.keyClick(box, QtCore.Qt.Key.Key_A, QtCore.Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(box, spec)
        QTest.keyClick(box, QtCore.Qt.Key.Key_Return)

    expect_one_error(window, qtbot, type_spec)


# ----- out of memory -----------------------------------------------------------------------------

def off_main_thread() -> bool:
    return threading.current_thread() is not threading.main_thread()


def test_out_of_memory_while_training_stops_cleanly_and_keeps_the_model(window, qtbot, monkeypatch):
    from latentlab.core.models import vae as model_mod

    real_decode = model_mod.VAE.decode
    lock = threading.Lock()
    calls = {"n": 0}

    def decode(self, z):
        # Only the training copy, in the worker: the GUI thread decodes clicks with the same class,
        # and the full-dataset encode after the run uses an eval-mode copy.
        if self.training and off_main_thread():
            with lock:
                calls["n"] += 1
                n = calls["n"]
            if n > 5:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total)")
        return real_decode(self, z)

    monkeypatch.setattr(model_mod.VAE, "decode", decode)
    s = window.session
    window.controls.epochs.setValue(50)
    msg = expect_one_error(window, qtbot, lambda: QTest.mouseClick(window.controls.button, LEFT))
    assert "memory" in msg.lower(), msg
    assert calls["n"] > 5
    assert not s.runs.training
    assert window.controls.button.text() == "Train" and not window.progress.isVisible()
    assert all(torch.isfinite(p).all() for p in s.model_data.model.parameters())
    # And it trains again once memory is there.
    monkeypatch.undo()
    window.controls.epochs.setValue(1)
    QTest.mouseClick(window.controls.button, LEFT)
    wait_idle(s)
    assert window.session.runs.last_snapshot.done and not window.session.runs.last_snapshot.error
    assert_still_decodes(window, (-0.5, 1.2))


def patch_encode_to_run_out_of_memory(monkeypatch):
    import latentlab.core.inference.analysis as analysis

    real = analysis.encode
    calls = {"n": 0}

    def encode(*args, **kwargs):
        if off_main_thread():
            calls["n"] += 1
            raise MemoryError()  # what CPython raises when an allocation fails
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "encode", encode)
    return calls


def test_out_of_memory_while_encoding_after_training_keeps_the_app_working(window, qtbot, monkeypatch):
    s = window.session
    calls = patch_encode_to_run_out_of_memory(monkeypatch)
    window.controls.epochs.setValue(1)
    model = s.model_data.model
    messages = []
    s.errorRaised.connect(messages.append)
    with qtbot.waitSignal(s.errorRaised, timeout=30000):
        QTest.mouseClick(window.controls.button, LEFT)
    wait_idle(s)
    assert calls["n"] >= 1 and len(messages) == 1, messages
    assert window.banner.isVisible() and window.banner.label.text() == messages[0]
    assert "\n" not in messages[0] and "Traceback" not in messages[0]
    assert not s.runs.training and s.model_data.model is model
    assert s.latent.points is not None and np.isfinite(s.latent.points).all()  # the run's live points stay
    assert_still_decodes(window)
    monkeypatch.undo()  # memory again: the next run encodes everything
    QTest.mouseClick(window.controls.button, LEFT)
    wait_idle(s)
    assert s.latent.logvars is not None and s.latent.points.shape == (len(s.model_data.data.x_train), 2)


def test_out_of_memory_while_encoding_a_loaded_checkpoint_keeps_the_model(window, qtbot, monkeypatch):
    calls = patch_encode_to_run_out_of_memory(monkeypatch)
    expect_one_error_lenient(window, qtbot, lambda: window.open_checkpoint(_bundled()))
    assert calls["n"] >= 1


@pytest.mark.parametrize("when", ["after training", "after loading"])
def test_out_of_memory_while_encoding_says_one_clear_sentence(window, qtbot, monkeypatch, when):
    patch_encode_to_run_out_of_memory(monkeypatch)
    if when == "after training":
        window.controls.epochs.setValue(1)
        action = lambda: QTest.mouseClick(window.controls.button, LEFT)  # noqa: E731
    else:
        action = lambda: window.open_checkpoint(_bundled())  # noqa: E731
    messages = []
    window.session.errorRaised.connect(messages.append)
    with qtbot.waitSignal(window.session.errorRaised, timeout=30000):
        action()
    wait_idle(window.session)
    assert len(messages) == 1, messages
    assert_one_sentence(messages[0])
    assert "memory" in messages[0].lower()


def expect_one_error_lenient(window, qtbot, action) -> str:
    """expect_one_error without the wording checks (those are the xfailed test above)."""
    s = window.session
    model, data = s.model_data.model, s.model_data.data
    messages = []
    s.errorRaised.connect(messages.append)
    with qtbot.waitSignal(s.errorRaised, timeout=30000):
        action()
    wait_idle(s)
    assert len(messages) == 1, messages
    assert "\n" not in messages[0] and "Traceback" not in messages[0]
    assert window.banner.isVisible() and window.banner.label.text() == messages[0]
    assert s.model_data.model is model and s.model_data.data is data
    assert_still_decodes(window)
    return messages[0]
