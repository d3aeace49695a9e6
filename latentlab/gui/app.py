"""Starting the GUI: the window first, then the model and data loading behind it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def run(checkpoint: Path | None = None, dataset: str | None = None, screenshot: Path | None = None, *,
        model: str | None = None, weights: Path | None = None, likelihood: str | None = None,
        projection: str | None = None, table: Path | None = None) -> int:
    """The window on a checkpoint (default: the bundled model) or on a model SPEC with optional
    fine-tuned weights and likelihood, showing its dataset or a latent `table`; with `screenshot`,
    render it off screen and exit."""
    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a screenshot needs no screen
    elif sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                   or os.environ.get("QT_QPA_PLATFORM")):
        print("latentlab: error: no display found (DISPLAY is not set); run it in a desktop session, "
              "or use `latentlab gui --screenshot out.png` to render off screen.", file=sys.stderr)
        return 2
    missing = _missing_display_library(screenshot is not None)
    if missing:
        print(f"latentlab: error: {missing}", file=sys.stderr)
        return 2
    from PySide6 import QtCore

    app = _application()
    splash = _splash() if screenshot is None else None
    from .main_window import MainWindow

    window = MainWindow()
    if screenshot is not None:
        window.resize(1280, 860)  # the same picture whatever size the window was last left at
    window.show()
    if splash is not None:
        splash.close()
    exit_code = {"code": 0}
    if screenshot is not None:
        def shoot() -> None:
            QtCore.QTimer.singleShot(200, lambda: _save_and_quit(window, screenshot, exit_code))

        def failed(message: str) -> None:
            print(f"latentlab: error: {message}", file=sys.stderr)
            exit_code["code"] = 2
            QtCore.QTimer.singleShot(0, window.close)

        when_shown(window, projection, shoot)
        window.session.errorRaised.connect(failed)
    if projection is not None:
        start_with_projection(window, projection)
    if table is not None:   # a latent table's means, no images encoded (gui/state/table_source.py)
        QtCore.QTimer.singleShot(0, lambda: window.session.open_table(table, checkpoint, model, weights, likelihood, dataset))
    elif model is not None:
        QtCore.QTimer.singleShot(0, lambda: window.session.open_model(model, weights, likelihood, dataset))
    else:
        # The checkpoint's stored latent means are on screen with the window's first paint; the model
        # itself (and torch) loads behind them.
        window.session.show_preview(checkpoint, dataset)
        # Paint first: importing torch on the loading thread holds the interpreter for long stretches.
        app.processEvents()
        QtCore.QTimer.singleShot(0, lambda: window.session.load(checkpoint=checkpoint, dataset=dataset))
    app.exec()
    # Free the widgets while Qt is still up; interpreter shutdown would free them in any order.
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    if QtCore.QThreadPool.globalInstance().activeThreadCount():
        # A job that cannot be interrupted (reading one large file) outlived the window's wait for
        # it: its result has nowhere to go. Leave now instead of waiting for it to report to objects
        # that no longer exist. Settings are written on the GUI thread and checkpoints were waited for
        # before the window closed: both are already on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code["code"])
    return exit_code["code"]


def _save_and_quit(window, path: Path, exit_code: dict) -> None:
    from PySide6 import QtWidgets

    QtWidgets.QApplication.processEvents()
    if not window.grab().save(str(path)):
        print(f"latentlab: error: could not write {path}.", file=sys.stderr)
        exit_code["code"] = 2
    window.close()


# What Qt's X11 plugin links against (Qt 6.5+), with the Debian/Ubuntu package of each.
X11_LIBRARIES = {
    "libX11-xcb.so.1": "libx11-xcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
}


def _missing_display_library(offscreen: bool) -> str | None:
    """One sentence when Qt's X11 plugin would abort the process for want of a system library,
    instead of Qt's own multi-line abort (which names only one of them)."""
    import ctypes

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if offscreen or not sys.platform.startswith("linux") or not os.environ.get("DISPLAY") or \
            platform not in ("", "xcb") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    missing = []
    for soname, package in X11_LIBRARIES.items():
        try:
            ctypes.CDLL(soname)   # what Qt's plugin would load a moment later anyway
        except OSError:
            missing.append(package)
    if missing:
        return (f"Qt needs system libraries to open a window on X11 that this machine lacks; install them "
                f"(Debian/Ubuntu: apt-get install {' '.join(missing)}) or render off screen with --screenshot.")
    return None


def _splash():
    """A small window on screen at once, while the plotting libraries import (about a second),
    closed as soon as the main window is shown."""
    from PySide6 import QtCore, QtGui, QtWidgets

    pixmap = QtGui.QPixmap(420, 120)
    pixmap.fill(QtGui.QColor("#f7f7f7"))
    painter = QtGui.QPainter(pixmap)
    painter.setPen(QtGui.QColor("#bbbbbb"))
    painter.drawRect(0, 0, 419, 119)
    painter.setPen(QtGui.QColor("#222222"))
    font = painter.font()
    font.setPointSize(18)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QtCore.QRect(0, 18, 420, 50), QtCore.Qt.AlignmentFlag.AlignCenter, "latentlab")
    font.setPointSize(10)
    font.setBold(False)
    painter.setFont(font)
    painter.setPen(QtGui.QColor("#555555"))
    painter.drawText(QtCore.QRect(0, 66, 420, 30), QtCore.Qt.AlignmentFlag.AlignCenter, "Opening the window…")
    painter.end()
    # A label with the splash flags rather than QSplashScreen, whose show() waits up to a second
    # for the window system to report the window exposed.
    splash = QtWidgets.QLabel(windowFlags=QtCore.Qt.WindowType.SplashScreen | QtCore.Qt.WindowType.FramelessWindowHint)
    splash.setObjectName("startupSplash")
    splash.setPixmap(pixmap)
    splash.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    splash.show()
    QtWidgets.QApplication.processEvents()
    return splash


def _application():
    from PySide6 import QtWidgets

    # The CPU counters' first reading: training's thread count later comes from what else kept the
    # cores busy since (core.cpu_load), with nothing to wait for then on the GUI thread.
    from latentlab.core import cpu_load  # noqa: F401

    app = QtWidgets.QApplication.instance()
    if app is None:
        install_message_filter()
        app = QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("latentlab")
    app.setOrganizationName("latentlab")
    return app


# What Qt's offscreen platform says about every window it cannot show the way a screen would: true
# and harmless there (`--screenshot`), so not printed. Everything else Qt says is printed as before.
OFFSCREEN_NOISE = ("This plugin does not support propagateSizeHints()",)


def install_message_filter() -> None:
    """Qt's messages to stderr in Qt's own format, less the offscreen platform's OFFSCREEN_NOISE."""
    from PySide6 import QtCore, QtGui

    def handler(mode, context, message: str) -> None:
        if message in OFFSCREEN_NOISE and QtGui.QGuiApplication.platformName() == "offscreen":
            return
        sys.stderr.write(QtCore.qFormatLogMessage(mode, context, message) + "\n")

    QtCore.qInstallMessageHandler(handler)


def open_window(model, dataset):
    """A shown window on `model` (a LatentModel already checked on `dataset`'s images) and
    `dataset` (a core.data.Dataset): what latentlab.explore opens. The caller runs the event loop
    (app.exec() in a script; IPython's integrated loop in a notebook). Closing the window frees it."""
    from PySide6 import QtCore

    _application()
    from .main_window import MainWindow

    window = MainWindow()
    window.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    # Held here until closed: in a notebook the caller may drop its reference while the window is up.
    _open_windows.add(window)
    window.destroyed.connect(lambda *_: _open_windows.discard(window))
    window.show()
    window.session.open_model_object(model, dataset)
    return window


_open_windows: set = set()


def start_with_projection(window, method: str) -> None:
    """Show `method` (pair, pca, umap, tsne) once the first model is loaded."""
    session = window.session

    def apply() -> None:
        session.loaded.disconnect(apply)
        window.latent.set_method(method)

    session.loaded.connect(apply)


def when_shown(window, method: str | None, callback) -> None:
    """Call back once the window shows the loaded model, in the projection asked for (a UMAP or t-SNE
    map arrives after the load)."""
    from PySide6 import QtCore

    session = window.session
    if method not in ("umap", "tsne"):
        def loaded() -> None:   # millions of points: once their density pyramid is drawn
            if session.density.wanted() and session.density.pyramid is None:
                session.density.ready.connect(callback, QtCore.Qt.ConnectionType.SingleShotConnection)
            else:
                callback()

        session.loaded.connect(loaded)
        return

    def check() -> None:
        if session.latent.shows_map:
            session.latent.projectionChanged.disconnect(check)
            callback()

    session.latent.projectionChanged.connect(check)
