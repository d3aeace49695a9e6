"""Point colours: a categorical palette for labels, a colormap for continuous values, both as the
packed ARGB words the point cloud takes, and the colour bar that explains the colormap."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui

# Tableau's 10 categorical colours: distinct for the common 10-class datasets.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def label_colors(n: int) -> list[QtGui.QColor]:
    if n <= len(TAB10):
        return [QtGui.QColor(c) for c in TAB10[:n]]
    return [pg.intColor(i, hues=n, values=1, maxValue=230) for i in range(n)]


def argb(colors: list[QtGui.QColor]) -> np.ndarray:
    return np.array([c.rgba() for c in colors], dtype=np.uint32)


def colormap_argb(values: np.ndarray, name: str = "viridis") -> tuple[np.ndarray, float, float]:
    """Continuous values -> packed ARGB colours, with the range used (robust 1..99 percentiles)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint32)
    idx = np.clip(((v - lo) / (hi - lo) * 255).round(), 0, 255).astype(np.intp)
    rgb = lut[idx]
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32), float(lo), float(hi)


def show_colorbar(plot: pg.PlotItem, bar: pg.ColorBarItem | None, lo, hi, label: str) -> pg.ColorBarItem | None:
    """The plot's viridis colour bar for values lo..hi (made or updated), or none when lo is None;
    returns the bar now shown."""
    if lo is None:
        if bar is not None:
            plot.layout.removeItem(bar)
            bar.setParentItem(None)
        return None
    if bar is None:
        bar = pg.ColorBarItem(values=(lo, hi), colorMap=pg.colormap.get("viridis"), interactive=False, width=12,
                              label=label)
        plot.layout.addItem(bar, 2, 5)
    bar.setLevels((lo, hi))
    return bar


def fill_legend(legend: pg.LegendItem, names) -> None:
    """One square swatch per label, in the label colours (names shortened: they come from files)."""
    from latentlab.core.text import short

    for name, color in zip(names, label_colors(len(names))):
        legend.addItem(pg.ScatterPlotItem(symbol="s", size=9, pen=None, brush=pg.mkBrush(color)), short(name, 40))
