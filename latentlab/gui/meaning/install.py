"""Puts the meaning panels in the main window: the Vector, Factors and Outliers tabs, and the window
that compares two models with its File menu entry."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtGui, QtWidgets

from .compare import CompareView
from .factors import FactorsView
from .outliers import OutliersView
from .vector import VectorView


@dataclass
class MeaningPanels:
    vector: VectorView
    factors: FactorsView
    outliers: OutliersView
    compare: CompareView


def add_meaning_panels(window, open_dialog) -> MeaningPanels:
    """Add the tabs to window.tools and "Compare with a second model…" to its File menu, before the
    first separator; `open_dialog()` makes the dialog that asks for a model SPEC, weights and likelihood."""
    s = window.session
    panels = MeaningPanels(VectorView(s), FactorsView(s), OutliersView(s), CompareView(s, window))
    window.tools.addTab(panels.vector, "Vector")
    window.tools.addTab(panels.factors, "Factors")
    window.tools.addTab(panels.outliers, "Outliers")

    def compare() -> None:
        dialog = open_dialog()
        dialog.setWindowTitle("Compare with a second model")
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            spec, weights, likelihood = dialog.values()
            if spec:
                s.comparison.open_spec(spec, weights, likelihood)
                show_compare(panels)

    file_menu = next(a.menu() for a in window.menuBar().actions() if a.menu() is not None)
    action = QtGui.QAction("Compare with a second &model…", window)
    action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+M"))
    action.triggered.connect(compare)
    separator = next((a for a in file_menu.actions() if a.isSeparator()), None)
    file_menu.insertAction(separator, action)
    show = QtGui.QAction("Show the &comparison window", window)
    show.triggered.connect(lambda: show_compare(panels))
    file_menu.insertAction(separator, show)
    return panels


def show_compare(panels: MeaningPanels) -> None:
    panels.compare.show()
    panels.compare.raise_()
    panels.compare.activateWindow()
