import os

# Qt tests run without a display; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

# Each worker holds torch, Qt and a window or two (about 1 GB), and torch's own threads already use
# every core: past four workers a many-core machine gains little and pays in memory.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


@pytest.fixture
def bare_window(qtbot, tmp_path):
    """The main window with nothing loaded, settings kept in tmp_path."""
    from PySide6 import QtCore

    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path / "settings"))
    from latentlab.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    w.session.shutdown()


@pytest.fixture
def window(bare_window, qtbot):
    """The main window with the bundled model and digits loaded, settings kept in tmp_path."""
    with qtbot.waitSignal(bare_window.session.loaded, timeout=60000):
        bare_window.session.load()
    return bare_window


@pytest.fixture(scope="session", autouse=True)
def _qt_teardown():
    """Delete every widget while the QApplication still exists: left to interpreter shutdown,
    PySide6 and pyqtgraph objects are freed in arbitrary order, which can crash the process."""
    yield
    import gc
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        return
    QtCore.QThreadPool.globalInstance().waitForDone(30000)
    for w in QtWidgets.QApplication.topLevelWidgets():
        w.close()
        w.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    app.processEvents()
    gc.collect()
