"""The main window: layout, menus, shortcuts, status bar, error banner, settings, drag and drop."""

from __future__ import annotations

import platform
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from latentlab._version import __version__
from latentlab.core.files.settings import usable_recent
from latentlab.core.text import short
from latentlab.gui.meaning.install import add_meaning_panels
from latentlab.gui.state.session import Session
from latentlab.gui.tabs.aggregate import AggregateView
from latentlab.gui.tabs.collapse import CollapseView
from latentlab.gui.tabs.curves import CurvesView
from latentlab.gui.tabs.interpolation import InterpolationView
from latentlab.gui.tabs.posterior import PosteriorView
from latentlab.gui.tabs.selection import SelectionView
from latentlab.gui.tabs.spatial import SpatialView
from latentlab.gui.tabs.sweep import SweepView
from latentlab.gui.tabs.traversals import TraversalView
from latentlab.gui.unsaved import UnsavedWork
from latentlab.gui.views.decoded import DecodedView
from latentlab.gui.views.latent import LatentPanel
from latentlab.gui.views.open_model import OpenModelDialog
from latentlab.gui.views.open_table import OpenTableDialog
from latentlab.gui.views.training import TrainingControls
from latentlab.gui.widgets.plot_export import export_plot
from latentlab.gui.widgets.small_screens import keep_axis_labels_whole
from latentlab.gui.widgets.status import ElidedLabel, ErrorBanner, RunProgress, TaskProgress
from latentlab.gui.window_settings import add_recent_file, recent_files, saved_settings, settings


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, session: Session | None = None):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("latentlab")
        self.setAcceptDrops(True)
        self.session = session or Session(self)
        s = self.session
        self.banner = ErrorBanner()
        self.latent = LatentPanel(s)
        self.decoded = DecodedView(s.cursor)
        self.controls = TrainingControls(s.runs, s.model_data)
        self.curves = CurvesView(s.model_data, s.runs)
        self.interpolation = InterpolationView(s)
        self.traversals = TraversalView(s)
        self.collapse = CollapseView(s.model_data, s.latent)
        self.tools = QtWidgets.QTabWidget()
        self.tools.setObjectName("toolTabs")
        self.tools.addTab(self.curves, "Curves")
        self.tools.addTab(self.interpolation, "Interpolation")
        self.tools.addTab(self.traversals, "Traversals")
        self.tools.addTab(self.collapse, "Collapse")
        self.posterior = PosteriorView(s)
        self.aggregate = AggregateView(s)
        self.sweep = SweepView(s)
        self.tools.addTab(self.posterior, "Posterior")
        self.tools.addTab(self.aggregate, "Aggregate q(z)")
        self.tools.addTab(self.sweep, "β sweep")
        self.selection = SelectionView(s)
        self.tools.addTab(self.selection, "Selection")
        self.spatial = SpatialView(s)
        self.tools.addTab(self.spatial, "Spatial")

        right = QtWidgets.QWidget()
        right_layout = QtWidgets.QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.decoded)        # its preferred size first,
        right_layout.addWidget(self.controls, 1)    # the rest to the form, whose fields scroll when short
        self.hsplit = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal, objectName="topSplitter")
        self.hsplit.addWidget(self.latent)
        self.hsplit.addWidget(right)
        self.hsplit.setStretchFactor(0, 3)
        self.hsplit.setStretchFactor(1, 1)
        self.hsplit.setCollapsible(0, False)
        self.vsplit = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical, objectName="bottomSplitter")
        self.vsplit.addWidget(self.hsplit)
        self.vsplit.addWidget(self.tools)
        self.vsplit.setStretchFactor(0, 3)
        self.vsplit.setStretchFactor(1, 2)
        self.vsplit.setCollapsible(0, False)
        # A tab's content never sets the window's size: each scrolls or shrinks inside the tab area,
        # whose height the splitter sets (and the settings remember).
        self.tools.setMinimumSize(320, 150)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.vsplit, 1)
        self.setCentralWidget(central)

        self.status_label = ElidedLabel()
        self.active_label = QtWidgets.QLabel()
        self.active_label.setObjectName("activeUnitsLabel")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.active_label)
        self.run_progress = RunProgress(self.statusBar(), self.status_label)
        self.progress = self.run_progress.bar
        # Long jobs (opening, encoding, maps, statistics, exports): the newest one's progress, and Stop.
        self.tasks = TaskProgress(self.statusBar())
        self.tasks.stop.clicked.connect(self.stop_tasks)

        self._build_menus()
        self.unsaved = UnsavedWork(self, s)
        self.meaning = add_meaning_panels(self, lambda: OpenModelDialog(self._last_dir(), self))
        keep_axis_labels_whole(self)   # every plot of every panel and tab, now that they are in the window
        s.errorRaised.connect(self.banner.show_message)
        s.errorRaised.connect(self.controls.show_dataset)   # a dataset that failed to open is not shown as open
        s.notice.connect(self.banner.show_message)
        s.status.connect(lambda text: self.status_label.setText(short(text)))
        s.jobs.task.connect(self.tasks.on_task)
        s.selection.changed.connect(self._on_selection)
        s.runs.progress.connect(self.run_progress.on_progress)
        s.runs.sweepProgress.connect(self.run_progress.on_sweep_progress)
        s.runs.trainingChanged.connect(self.run_progress.on_running)
        s.runs.trainingChanged.connect(lambda running: running and self.banner.hide())
        for signal in (s.model_data.modelChanged, s.model_data.datasetChanged, s.model_data.savedChanged,
                       s.runs.sweepChanged):
            signal.connect(self._update_title)
        s.model_data.modelChanged.connect(self._update_save_action)
        s.latent.changed.connect(self._on_points)
        self.controls.openDatasetRequested.connect(self.open_dataset_spec)
        self.resize(1280, 860)
        self._restore_settings()

    # ----- menus ------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "Open &dataset…", self.open_dataset_dialog, "Ctrl+D")
        self._action(file, "&Open checkpoint…", self.open_checkpoint_dialog, QtGui.QKeySequence.StandardKey.Open)
        self._action(file, "Open &model…", self.open_model_dialog, "Ctrl+Shift+O")
        self._action(file, "Open latent &table…", self.open_table_dialog)
        self.save_action = self._action(file, "&Save checkpoint as…", self.save_checkpoint_dialog,
                                        QtGui.QKeySequence.StandardKey.Save)
        file.setToolTipsVisible(True)  # a disabled Save says why
        self.recent_menu = file.addMenu("Open &recent")
        self._build_examples_menu(file.addMenu("E&xamples"))
        self.recent_menu.aboutToShow.connect(self._refresh_recent)   # files are checked when the list is used
        file.addSeparator()
        self._action(file, "&Export latent view as PNG or SVG…", self.export_view_dialog, "Ctrl+E")
        self._action(file, "Export latent &means (CSV or NPZ)…", self.export_means_dialog)
        self.export_selection_action = self._action(file, "Export se&lection as CSV…", self.selection.export_dialog)
        self.export_selection_action.setEnabled(False)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)

        train = bar.addMenu("&Train")
        self._action(train, "&Train", lambda: None if self.session.runs.training else self.controls.toggle(), "Ctrl+T")
        self._action(train, "&Stop", self.session.runs.stop, "Esc")

        view = bar.addMenu("&View")
        self._action(view, "&Fit latent view", self.latent.plot.fit, "Home")
        prior = self._action(view, "Show &prior circles", self.latent.plot.set_prior_visible, "Ctrl+P")
        prior.setCheckable(True)
        prior.setChecked(True)
        tools = self._action(view, "Show &tools panel", self.tools.setVisible, "Ctrl+L")
        tools.setCheckable(True)
        tools.setChecked(True)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About latentlab", self.about)
        self._refresh_recent()

    def _build_examples_menu(self, menu) -> None:
        from latentlab.core.files.bundled import examples

        menu.setToolTipsVisible(True)
        for example in examples():
            action = menu.addAction(example.title)
            action.setToolTip(f"{example.about} Made with: {example.command}")
            action.triggered.connect(lambda _=False, e=example: self.session.load(e.file, e.dataset))
        menu.setEnabled(bool(menu.actions()))
        self.examples_menu = menu

    def _action(self, menu, text, slot, shortcut=None) -> QtGui.QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        return action

    # ----- files ------------------------------------------------------------------------------
    def open_checkpoint(self, path) -> None:
        self.banner.hide()
        self._add_recent(str(path))
        self.session.load(checkpoint=path)

    def open_model(self, spec: str, weights=None, likelihood=None, dataset=None) -> None:
        """A model SPEC (your VAE); the current model stays if it cannot be opened."""
        self.banner.hide()
        self.session.open_model(spec, weights, likelihood, dataset)

    def open_model_dialog(self) -> None:
        dialog = OpenModelDialog(self._last_dir(), self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            spec, weights, likelihood = dialog.values()
            if spec:
                self.open_model(spec, weights, likelihood)

    def open_table_dialog(self) -> None:
        table, spec, weights, dataset = OpenTableDialog.ask(self._last_dir(), self.session.model_data, self)
        if table and spec:
            self.banner.hide()
            self.session.open_table(table, spec=spec, weights=weights, dataset=dataset)

    def open_dataset_spec(self, spec: str) -> None:
        if spec and spec != self.session.model_data.dataset_spec:
            self.banner.hide()
            self.controls.show_loading(spec)
            self.session.open_dataset(spec)

    def open_checkpoint_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open checkpoint", self._last_dir(),
                                                        "latentlab checkpoints (*.safetensors);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def open_dataset_dialog(self) -> None:
        kinds = ["MNIST folder (IDX files)", "Fashion-MNIST folder", "KMNIST folder", "npz file", "image folder (class sub-folders)"]
        kind, ok = QtWidgets.QInputDialog.getItem(self, "Open dataset", "Kind of dataset", kinds, 0, False)
        if not ok:
            return
        if kind.startswith("npz"):
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open npz", self._last_dir(), "NumPy archives (*.npz *.npy)")
            spec = f"npz:{path}" if path else ""
        else:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open dataset folder", self._last_dir())
            prefix = {0: "mnist", 1: "fashion-mnist", 2: "kmnist", 4: "images"}[kinds.index(kind)]
            spec = f"{prefix}:{path}" if path else ""
        if spec:
            self.open_dataset_spec(spec)

    def save_checkpoint_dialog(self) -> None:
        foreign = self.session.model_data.foreign
        title, kind = ("Save fine-tuned weights", "weights files") if foreign else ("Save checkpoint", "latentlab checkpoints")
        path = self._save_path(title, {".safetensors": kind})
        if path:
            self.session.save_checkpoint(path)
            self._add_recent(path)

    def _save_path(self, title: str, kinds: dict[str, str]) -> str:
        """A file name from the save dialog, given the suffix of the kind chosen if it has none of
        `kinds` (suffix → description); "" when cancelled."""
        filters = [f"{label} (*{suffix})" for suffix, label in kinds.items()]
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(self, title, self._last_dir(), ";;".join(filters))
        if path and not path.lower().endswith(tuple(kinds)):
            path += next((sfx for sfx, f in zip(kinds, filters) if f == chosen), next(iter(kinds)))
        return path

    def export_view_dialog(self) -> None:
        path = self._save_path("Export latent view", {".png": "PNG images", ".svg": "SVG drawings"})
        if path:
            self.export_view(path)

    def export_view(self, path) -> bool:
        """The latent view as a PNG picture or, for a .svg name, an SVG drawing."""
        ok = export_plot(self.latent.plot, path)
        if ok:
            self.status_label.setText(short(f"Exported the latent view to {path}."))
        else:
            self.banner.show_message(f"Could not write {short(path, 120)}.")
        return ok

    def export_means_dialog(self) -> None:
        path = self._save_path("Export latent means", {".csv": "CSV tables", ".npz": "NumPy archives"})
        if path:
            self.session.analyses.export_latent_means(path)

    # ----- long jobs --------------------------------------------------------------------------
    def stop_tasks(self) -> None:
        for key in self.session.jobs.tracked_keys():
            self.session.jobs.cancel(key)
        self.status_label.setText("Stopped.")

    def _on_selection(self) -> None:
        has = len(self.session.selection) > 0
        self.export_selection_action.setEnabled(has)
        if has and not self.latent.plot.hasFocus():
            self.latent.plot.setFocus()   # so that Esc clears it

    def _last_dir(self) -> str:
        recent = usable_recent(recent_files())
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _add_recent(self, path: str) -> None:
        add_recent_file(path)
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = usable_recent(recent_files())
        for path in recent:
            action = self.recent_menu.addAction(short(path, 100))
            action.setToolTip(short(path))
            action.triggered.connect(lambda _=False, p=path: self.open_checkpoint(p))
        self.recent_menu.setEnabled(bool(recent))

    # ----- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if any(u.toLocalFile().endswith(".safetensors") for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().endswith(".safetensors"):
                self.open_checkpoint(url.toLocalFile())
                event.acceptProposedAction()
                return

    # ----- state shown in the frame ---------------------------------------------------------------
    def _on_points(self) -> None:
        from latentlab.core.inference.analysis import ACTIVE_THRESHOLD

        if self.session.model_data.model is None:
            return
        _, active = self.session.dimension_stats()
        self.active_label.setText(f"active units {int(active.sum())}/{len(active)}")
        self.active_label.setToolTip("Latent dimensions whose posterior mean varies over the data "
                                     f"(variance > {ACTIVE_THRESHOLD:g})")

    def _update_title(self) -> None:
        """The model's file (or name) and data; a mark while a trained model or a sweep is unsaved."""
        md = self.session.model_data
        if md.model is None:
            return
        data = md.data.name if md.data is not None else "no data"
        self.setWindowTitle(short(f"latentlab — {short(md.title, 80)}[*] on {short(data, 60)}", 160))
        self.setWindowModified(bool(self.unsaved.pending()))

    def _update_save_action(self) -> None:
        md = self.session.model_data
        if md.foreign and not md.spec:
            self.save_action.setEnabled(False)
            self.save_action.setToolTip("This model was handed over as a Python object, not a model SPEC, so saved "
                                        "weights could not say how to reopen it; save its state_dict from Python")
        else:
            self.save_action.setEnabled(True)
            self.save_action.setToolTip("Save the fine-tuned weights as .safetensors with the model SPEC in their "
                                        "metadata (never over your own files)" if md.foreign else
                                        "Save the model as a latentlab checkpoint")

    def about(self) -> None:
        import numpy
        import torch
        from PySide6 import __version__ as pyside_version

        from latentlab.core.training.device import describe, resolve_device

        QtWidgets.QMessageBox.about(self, "About latentlab", (
            f"<b>latentlab {__version__}</b><br>Look inside variational autoencoders.<br><br>"
            f"Python {platform.python_version()} · PyTorch {torch.__version__} · PySide6 {pyside_version} · NumPy {numpy.__version__}<br>"
            f"Training device: {describe(resolve_device('auto'), why=True)}"))

    # ----- settings and closing ---------------------------------------------------------------
    def _restore_settings(self) -> None:
        values, problems = saved_settings()
        if "geometry" in values:
            self.restoreGeometry(QtCore.QByteArray(values["geometry"]))   # False for garbage: size kept
        for splitter in self._splitters():   # restoreState is False for garbage: the sizes are kept
            if splitter.objectName() in values:
                splitter.restoreState(QtCore.QByteArray(values[splitter.objectName()]))
        self.session.runs.set_request(**{k: values[k] for k in ("epochs", "lr", "warm_start") if k in values})
        if problems:
            self.status_label.setText(short(f"Ignored {len(problems)} unreadable saved setting(s); defaults used."))

    def _save_settings(self) -> None:
        st = settings()
        st.setValue("geometry", self.saveGeometry())
        for splitter in self._splitters():
            st.setValue(splitter.objectName(), splitter.saveState())
        r = self.session.runs.request
        st.setValue("epochs", r.epochs)
        st.setValue("lr", r.lr)
        st.setValue("warm_start", r.warm_start)

    def _splitters(self) -> tuple[QtWidgets.QSplitter, ...]:
        return self.vsplit, self.hsplit

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self.unsaved.confirm("quit", "all"):
            event.ignore()
            return
        self._save_settings()
        self.session.shutdown()
        super().closeEvent(event)

