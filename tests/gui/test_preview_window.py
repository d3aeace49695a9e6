"""The window with a checkpoint's latent preview: drawn before torch is imported, a click made
meanwhile decoded once the model has loaded, another dataset's preview not shown, and Save storing
the means the window shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from gui_helpers import wait_idle

from latentlab.core.files.preview import read_preview

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
    from latentlab.gui.state.session import Session

    s = Session()
    assert not s.show_preview(None, "sprites")   # the bundled default's means are of digits
    assert s.latent.preview is None
    assert s.show_preview(None, "digits") and len(s.latent.preview.means) == 1438
    s.shutdown()


def test_saving_from_the_window_stores_the_shown_means(window, tmp_path):
    s = window.session
    wait_idle(s)
    s.save_checkpoint(tmp_path / "w.safetensors")
    assert s.analyses.saver.wait()
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
    from latentlab.gui.state.session import Session

    s = Session()
    assert s.show_preview()
    s.set_view_point(1.0, 1.0)
    assert s._pending_point == (1.0, 1.0) and "click" in s.cursor.waiting
    with qtbot.waitSignal(s.errorRaised, timeout=60000):
        s.load(tmp_path / "missing.safetensors")
    s.wait_until_idle()
    assert s._pending_point is None and s.cursor.waiting == ""
    s.shutdown()
