"""The latent scatter: posterior means, the prior's circles, the decode marker, hover thumbnails,
rectangle and lasso selections."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.core.text import short
from latentlab.gui.state.parts import AnchorMode
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.density_cloud import DensityCloudItem, DensityLayer
from latentlab.gui.widgets.images import HoverCard, to_pixmap
from latentlab.gui.widgets.latent_picking import DirectPicks, DirectPickView, FewPoints, PickViewBox, SelectionLayer
from latentlab.gui.widgets.manifold import ManifoldLayer
from latentlab.gui.widgets.palette import argb, colormap_argb, fill_legend, label_colors, show_colorbar
from latentlab.gui.widgets.prior_circles import PriorCircles
from latentlab.gui.widgets.small_screens import FlowLayout

FIT_POINTS = 200_000  # tell the view's extent: each 0.1% tail is 200 (a million took 50 ms at 10M rows)
HOVER_PX = 12  # the hover card shows the nearest point only if it is this close on screen
PROJECTIONS = (("pair", "pair of dims"), ("pca", "PCA of means"), ("umap", "UMAP"), ("tsne", "t-SNE"),
               ("vector", "attribute vector"))


class LatentPlot(DirectPickView, pg.PlotWidget):
    """The plot itself (object name `latentView`)."""

    def __init__(self, session: Session, parent=None):
        self.viewbox = PickViewBox()
        super().__init__(parent, viewBox=self.viewbox, background="w")
        self.setObjectName("latentView")
        self.session = session
        plot = self.getPlotItem()
        plot.setAspectLocked(True)
        plot.setMenuEnabled(False)  # no grid: the prior circles are the reference, and grid lines cost ~3 ms a frame
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen(60, 60, 60))
            axis.setTextPen(pg.mkPen(30, 30, 30))
            # Replaying an axis' text costs ~8 ms per frame; a pixmap cache redraws it only when it changes.
            axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)

        def put(item, z=None):
            if z is not None:
                item.setZValue(z)
            plot.addItem(item)
            return item

        self.circles = put(PriorCircles())
        self.cloud = put(DensityCloudItem(size=3))
        self.marker = put(FewPoints(size=18, symbol="+", pen=pg.mkPen("k", width=2.5), brush=None), 10)
        self.path_item = put(pg.PlotDataItem([], [], pen=pg.mkPen((20, 20, 20), width=2), symbol="o", symbolSize=6,
                                             symbolBrush=pg.mkBrush(255, 255, 255), symbolPen=pg.mkPen((20, 20, 20))), 9)
        self.path_labels = [put(pg.TextItem(name, color=(0, 0, 0), anchor=(1.1, 1.1), fill=pg.mkBrush(255, 255, 255, 200)), 11)
                            for name in ("A", "B")]
        for label in self.path_labels:
            label.hide()
        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setColorMap(pg.ColorMap(pos=[0.0, 1.0], color=[(255, 255, 255, 0), (40, 90, 200, 170)]))
        self.holes = pg.IsocurveItem(level=0.5, pen=pg.mkPen((200, 30, 30), width=2))
        self.holes.setParentItem(self.density)
        put(self.density, -10).hide()
        self.samples = put(FewPoints(size=8), 12)
        self.selected = put(FewPoints(size=16, symbol="d", pen=pg.mkPen((0, 0, 0), width=2),
                                      brush=pg.mkBrush(255, 255, 0, 160)), 11)
        self.prior_wanted = True   # the View menu's switch; the circles also need a linear projection
        self.manifold = ManifoldLayer(self, session)
        self.legend = plot.addLegend(offset=(-8, 8), labelTextColor=(30, 30, 30), brush=pg.mkBrush(255, 255, 255, 200))
        self.colorbar = None
        self.color_by = "label"
        self.hover = HoverCard(self)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        # pyqtgraph sends hover events to every item under the mouse on each move and after each
        # click (1–3 ms of a click here); nothing on this plot uses them: the hover card follows
        # sigMouseMoved, and the auto-range button they would reveal is hidden (Fit and Home do that).
        self.scene().sendHoverEvents = lambda *args, **kwargs: None
        plot.hideButtons()
        self.viewbox.picked.connect(self._on_picked)
        self.latent, self.cursor, self.model_data = session.latent, session.cursor, session.model_data
        self.selection = session.selection
        self.latent.changed.connect(self.refresh_points)
        self.latent.statsChanged.connect(self.refresh_points)
        self.latent.projectionChanged.connect(self._on_projection)
        self.latent.aggregateChanged.connect(self.refresh_aggregate)
        self.latent.priorChanged.connect(lambda: self.circles.set_contours(self.latent.prior_contours))
        self.cursor.changed.connect(self.refresh_marker)
        self.model_data.datasetChanged.connect(self._rebuild_legend)
        session.path.changed.connect(self.refresh_path)
        for signal in (self.cursor.selectionChanged, self.model_data.weightsChanged, self.model_data.modelChanged):
            signal.connect(self.refresh_selected)
        self.selection_layer = SelectionLayer(plot, self.viewbox, self.cloud, session)
        self.pyramid = DensityLayer(self.cloud, session, self._show_colorbar, lambda: self._fitted or self.fit())
        self.presses = DirectPicks(self, self.viewbox, avoid=lambda: (self.legend,), on_press=self.hover.hide)
        self.setRange(xRange=(-3.5, 3.5), yRange=(-3.5, 3.5), padding=0)
        self._fitted = False

    # ----- drawing ------------------------------------------------------------------------
    def refresh_points(self) -> None:
        s = self.latent
        if s.points is None and s.preview is not None and s.projection is not None:
            p = s.preview   # the checkpoint's stored means while its model loads: label colours only
            self.cloud.setData(s.projection.to2d(p.means), argb(label_colors(len(p.label_names)))[p.labels])
            return
        if s.points is None or s.projection is None or self.model_data.data is None:
            self.cloud.setData(np.zeros((0, 2)), np.zeros(0, np.uint32))   # no data open: no points
            return
        if self.pyramid.wanted():   # millions: drawn from their density pyramid, aggregated off the GUI thread
            return self.pyramid.refresh(self.color_by)
        pos = s.projection.to2d(s.points)
        colors = self._colors()
        if len(colors) != len(pos):
            return   # a new dataset has arrived and its points are on their way
        self.cloud.setData(pos, colors)
        if not self._fitted and len(pos):
            self.fit()

    def fit(self) -> None:
        """Show the prior's 3σ circle (where it means something) and every point, with a margin."""
        s = self.latent
        lo, hi = (np.full(2, np.inf), np.full(2, -np.inf)) if s.shows_map else (np.full(2, -3.3), np.full(2, 3.3))
        points = s.points if s.points is not None else s.preview.means if s.preview is not None else None
        if points is not None and len(points) and s.projection is not None:
            pos = s.projection.to2d(points[::max(1, -(-len(points) // FIT_POINTS))])
            pos = pos[np.isfinite(pos).all(axis=1)]
            if len(pos) > 100_000:   # millions: the odd far point should not shrink the rest to a dot
                lo, hi = np.minimum(lo, np.percentile(pos, 0.1, axis=0)), np.maximum(hi, np.percentile(pos, 99.9, axis=0))
            elif len(pos):
                lo, hi = np.minimum(lo, pos.min(axis=0)), np.maximum(hi, pos.max(axis=0))
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            self.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.05)
        self._fitted = True

    def _colors(self) -> np.ndarray:
        s, data = self.latent, self.model_data.data
        values = s.values(self.color_by, data) if self.color_by != "label" else None
        if values is None and s.missing_stat(self.color_by):
            self.session.analyses.request_stat(self.color_by)   # label colours until it arrives
        if values is not None:
            packed, lo, hi = colormap_argb(values)
            self._show_colorbar(lo, hi)
            return packed
        self._show_colorbar(None, None)
        labels = s.labels(data)
        palette = argb(label_colors(len(data.label_names)))
        return palette[labels]

    def set_color_by(self, name: str) -> None:
        self.color_by = name
        self._rebuild_legend()
        self.refresh_points()

    def _show_colorbar(self, lo, hi) -> None:
        self.colorbar = show_colorbar(self.getPlotItem(), self.colorbar, lo, hi, self.color_by)

    def _rebuild_legend(self) -> None:
        self.legend.clear()
        data, preview = self.model_data.data, self.latent.preview
        names = data.label_names if data is not None else preview.label_names if preview is not None else None
        if names is None or self.color_by != "label" or len(names) > 20:
            return
        fill_legend(self.legend, names)

    def _on_projection(self) -> None:
        x_label, y_label = self.latent.projection.axis_labels
        self.getPlotItem().setLabel("bottom", x_label)
        self.getPlotItem().setLabel("left", y_label)
        self._fitted = False
        self.circles.setVisible(self.prior_wanted and not self.latent.shows_map)
        if self.latent.preview is not None:
            self._rebuild_legend()
        self.refresh_points()
        self.refresh_marker()
        self.refresh_path()
        self.refresh_selected()

    def set_prior_visible(self, on: bool) -> None:
        """The View menu's switch for the prior circles (never drawn on a UMAP or t-SNE map)."""
        self.prior_wanted = bool(on)
        self.circles.setVisible(self.prior_wanted and not self.latent.shows_map)

    def refresh_aggregate(self) -> None:
        s = self.latent
        agg = s.aggregate if s.show_overlay else None
        if agg is None:
            self.density.hide()
        else:
            xs, ys = agg["xs"], agg["ys"]
            step = xs[1] - xs[0]
            # Log density over 8 nats of range: the tails, where holes are, stay visible next to dense clusters.
            log_d = np.log(np.maximum(agg["density"], 1e-300))
            top = float(log_d.max())
            self.density.setImage(log_d, levels=(top - 8.0, top))
            self.density.setRect(QtCore.QRectF(xs[0] - step / 2, ys[0] - step / 2, step * len(xs), step * len(ys)))
            self.holes.setData(agg["holes"].astype(float))
            self.density.show()
        r = s.prior_samples if s.show_overlay else None   # the samples belong to the overlay: unticked, both go
        if r is None:
            self.samples.setData([], [])
            return
        hole_pen, covered_pen = pg.mkPen((220, 30, 30), width=2), pg.mkPen((20, 20, 20), width=1.5)
        self.samples.setData(r["z2"][:, 0], r["z2"][:, 1], symbol=["x" if h else "o" for h in r["in_hole"]],
                             pen=[hole_pen if h else covered_pen for h in r["in_hole"]],
                             brush=[pg.mkBrush(220, 30, 30) if h else None for h in r["in_hole"]])

    def refresh_selected(self) -> None:
        projection, row = self.latent.projection, self.cursor.selected
        if self.latent.shows_map and row is not None and self.latent.rows is None and row < len(self.latent.points):
            self.selected.setData([self.cloud.position(row)[0]], [self.cloud.position(row)[1]])
            return
        mean = self.session.selected_mean() if projection is not None else None
        if mean is None or len(mean) != projection.latent_dim:
            self.selected.setData([], [])
            return
        u, v = projection.to2d(mean)
        self.selected.setData([u], [v])

    def refresh_marker(self) -> None:
        z, projection = self.cursor.z, self.latent.projection
        if z is None or projection is None or projection.latent_dim != len(z):
            self.marker.setData([], [])
            return
        u, v = projection.to2d(z)
        self.marker.setData([u], [v])

    def event(self, ev) -> bool:
        # Esc clears a selection when the plot has the focus, before the window's Esc (stop) sees it.
        if ev.type() == QtCore.QEvent.Type.ShortcutOverride and ev.key() == QtCore.Qt.Key.Key_Escape \
                and len(self.selection.rows):
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev) -> None:
        if ev.key() == QtCore.Qt.Key.Key_Escape and len(self.selection.rows):
            self.selection.clear()
            ev.accept()
            return
        super().keyPressEvent(ev)

    # ----- interaction ----------------------------------------------------------------------
    def _on_picked(self, x: float, y: float, modifiers) -> None:
        if modifiers & QtCore.Qt.KeyboardModifier.ShiftModifier:
            self.session.pick_endpoint_at(x, y)
        else:
            self.session.set_view_point(x, y)
            if self.session.awaiting_model:
                self.marker.setData([x], [y])   # where the click will be decoded once the model is ready

    def refresh_path(self) -> None:
        projection = self.latent.projection
        path = self.session.path.codes() if projection is not None else None
        if path is None or projection.latent_dim != path.shape[1]:
            self.path_item.setData([], [])
            self.path_labels[0].hide()
            self.path_labels[1].hide()
            return
        pos = projection.to2d(path)
        self.path_item.setData(pos[:, 0], pos[:, 1])
        for label, p in zip(self.path_labels, (pos[0], pos[-1])):
            label.setPos(*p)
            label.show()

    def _on_mouse_moved(self, scene_pos) -> None:
        s, data = self.latent, self.model_data.data
        if not self.viewbox.sceneBoundingRect().contains(scene_pos) or not self.cloud.count() or s.points is None:
            self.hover.hide()
            return
        p = self.viewbox.mapSceneToView(scene_pos)
        i = self.cloud.nearest(p.x(), p.y())
        near = self.viewbox.mapViewToScene(QtCore.QPointF(*self.cloud.position(i)))
        if (near - scene_pos).manhattanLength() > 2 * HOVER_PX:
            self.hover.hide()
            return
        image = s.image(i, data)   # None for a latent table opened without its dataset
        self.hover.show_near(self.mapFromScene(scene_pos), to_pixmap(image, 64), f"label {short(data.label_names[int(s.labels(data)[i])], 40)}"
                             + ("" if image is not None else " · no image (no dataset)"))

    def leaveEvent(self, ev) -> None:
        self.hover.hide()
        super().leaveEvent(ev)


class LatentPanel(QtWidgets.QWidget):
    """The plot with its bar of view options: colouring, the shown pair of dimensions, PCA."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.plot = LatentPlot(session, self)
        self.color_combo = QtWidgets.QComboBox()
        self.color_combo.setToolTip("What the point colours show")
        self.dim_x = QtWidgets.QSpinBox(prefix="x: z", minimum=1)
        self.dim_y = QtWidgets.QSpinBox(prefix="y: z", minimum=1)
        self.projection_combo = QtWidgets.QComboBox()
        self.projection_combo.setObjectName("projectionCombo")
        for method, text in PROJECTIONS:
            self.projection_combo.addItem(text, method)
        self.projection_combo.setToolTip("What the plane shows: a pair of latent dimensions, the PCA plane of the "
                                         "means, a UMAP or t-SNE map of them (no prior circles on a map), or the "
                                         "plane of the attribute vector built in the Vector tab")
        self.anchor_label = QtWidgets.QLabel("others from")
        self.anchor_combo = QtWidgets.QComboBox()
        self.anchor_combo.addItems([m.value for m in AnchorMode])
        self.anchor_combo.setToolTip("A click sets the two shown coordinates; the others come from this anchor.")
        self.manifold = QtWidgets.QCheckBox("Manifold")
        self.manifold.setToolTip("Decoded images on a grid behind the points; redrawn when zoom or pan settles")
        self.quantile = QtWidgets.QCheckBox("prior quantiles")
        self.quantile.setToolTip("Place the manifold grid at the prior's quantiles (inverse normal CDF)")
        fit = QtWidgets.QToolButton(text="Fit")
        fit.setToolTip("Zoom to the prior's 3σ circle and all points (Home)")
        fit.clicked.connect(self.plot.fit)
        bar = FlowLayout()   # wraps on a narrow window rather than widening it
        bar.addWidget(QtWidgets.QLabel("Colour by"))
        bar.addWidget(self.color_combo)
        for w in (self.projection_combo, self.dim_x, self.dim_y, self.anchor_label, self.anchor_combo):
            bar.addWidget(w)
        bar.addWidget(self.manifold)
        bar.addWidget(self.quantile)
        bar.addWidget(fit)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)
        self.color_combo.currentTextChanged.connect(lambda t: t and self.plot.set_color_by(t))
        self.dim_x.valueChanged.connect(self._dims_changed)
        self.dim_y.valueChanged.connect(self._dims_changed)
        self.projection_combo.activated.connect(lambda i: self.set_method(self.projection_combo.itemData(i)))
        self.anchor_combo.currentTextChanged.connect(session.cursor.set_anchor_mode)
        self.manifold.toggled.connect(lambda on: self.plot.manifold.set_enabled(on, self.quantile.isChecked()))
        self.quantile.toggled.connect(lambda q: self.plot.manifold.set_enabled(self.manifold.isChecked(), q))
        session.latent.changed.connect(self._refresh_color_options)
        session.model_data.datasetChanged.connect(self._on_dataset)
        session.model_data.modelChanged.connect(self._on_model)
        session.latent.projectionChanged.connect(self._on_projection)

    def _on_dataset(self) -> None:
        self._refresh_color_options()
        self.color_combo.setCurrentText("label")
        self.plot.set_color_by("label")

    def _refresh_color_options(self) -> None:
        options = ["label", *self.session.latent.color_options(self.session.model_data.data)]
        if options == [self.color_combo.itemText(i) for i in range(self.color_combo.count())]:
            return
        current = self.color_combo.currentText()
        self.color_combo.blockSignals(True)
        self.color_combo.clear()
        self.color_combo.addItems(options)
        self.color_combo.setCurrentText(current if current in options else "label")
        self.color_combo.blockSignals(False)
        if self.color_combo.currentText() != self.plot.color_by:
            self.plot.set_color_by(self.color_combo.currentText())

    def _on_model(self) -> None:
        self._show_latent_size(self.session.model_data.model.latent_dim)

    def _show_latent_size(self, k: int) -> None:
        wide = k > 2
        for w in (self.dim_x, self.dim_y, self.anchor_label, self.anchor_combo):
            w.setVisible(wide)
        self.projection_combo.setVisible(k >= 2)
        for w in (self.dim_x, self.dim_y):
            w.blockSignals(True)
            w.setMaximum(k)
            w.blockSignals(False)

    def set_method(self, method: str) -> None:
        """Show a pair of dimensions, the PCA plane, a UMAP or a t-SNE map."""
        self.session.analyses.set_projection_method(method)
        self._on_projection()

    def _on_projection(self) -> None:
        lp = self.session.latent
        p = lp.projection
        if lp.colour_hint and self.color_combo.findText(lp.colour_hint) >= 0:   # a newly opened model's best colouring
            self.color_combo.setCurrentText(lp.colour_hint)
        lp.colour_hint = ""
        self.projection_combo.blockSignals(True)   # a wide latent opens on PCA without a click
        self.projection_combo.setCurrentIndex(max(0, self.projection_combo.findData(lp.method)))
        self.projection_combo.blockSignals(False)
        if p is None:
            return
        if lp.preview is not None and self.session.model_data.model is None:
            self._show_latent_size(p.latent_dim)   # a checkpoint's preview, before its model has loaded
            self._refresh_color_options()
        for w, d in ((self.dim_x, p.dims[0]), (self.dim_y, p.dims[1])):
            w.blockSignals(True)
            w.setValue(d + 1)
            w.setEnabled(p.kind == "dims")
            w.blockSignals(False)
        self.anchor_label.setEnabled(not lp.shows_map)
        self.anchor_combo.setEnabled(not lp.shows_map)

    def _dims_changed(self) -> None:
        i, j = self.dim_x.value() - 1, self.dim_y.value() - 1
        if i != j:
            self.session.latent.set_projection(pair=(i, j))
