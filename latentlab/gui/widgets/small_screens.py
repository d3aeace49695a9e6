"""What keeps the panels usable on a small screen (down to 1024×640): a row of controls that wraps
onto a second line instead of squeezing its widgets over each other or widening the window (Qt's
flow layout example, in Python), a body that scrolls instead of being squashed, and plot axis labels
that are shortened to fit instead of being clipped."""

from __future__ import annotations

import pyqtgraph as pg
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets


class FlowLayout(QtWidgets.QLayout):
    """Items left to right at their preferred width, wrapping to a new line where the next does not
    fit; each line's items are centred vertically. Its height follows its width (heightForWidth)."""

    def __init__(self, parent=None, spacing: int = 6):
        super().__init__(parent)
        self._items: list[QtWidgets.QLayoutItem] = []
        self.setSpacing(spacing)
        self.setContentsMargins(2, 2, 2, 2)

    def addItem(self, item: QtWidgets.QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> QtCore.Qt.Orientation:
        return QtCore.Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._lay_out(QtCore.QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QtCore.QRect) -> None:
        super().setGeometry(rect)
        self._lay_out(rect, move=True)

    def sizeHint(self) -> QtCore.QSize:
        """All on one line."""
        shown = [i.sizeHint() for i in self._items if not i.isEmpty()]
        m = self.contentsMargins()
        width = sum(s.width() for s in shown) + self.spacing() * max(0, len(shown) - 1)
        height = max((s.height() for s in shown), default=0)
        return QtCore.QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QtCore.QSize:
        """As narrow as the widest item: the rest wraps."""
        size = QtCore.QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QtCore.QSize(m.left() + m.right(), m.top() + m.bottom())

    def _lay_out(self, rect: QtCore.QRect, move: bool) -> int:
        """Place the items in rect (when `move`); the height they take."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        lines: list[list[tuple[QtWidgets.QLayoutItem, QtCore.QSize]]] = [[]]
        x = area.x()
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint().boundedTo(QtCore.QSize(area.width(), 1 << 20)).expandedTo(item.minimumSize())
            if lines[-1] and x + hint.width() > area.right() + 1:
                lines.append([])
                x = area.x()
            lines[-1].append((item, hint))
            x += hint.width() + self.spacing()
        y = area.y()
        for line in lines:
            height = max((hint.height() for _, hint in line), default=0)
            x = area.x()
            for item, hint in line:
                if move:
                    item.setGeometry(QtCore.QRect(QtCore.QPoint(x, y + (height - hint.height()) // 2), hint))
                x += hint.width() + self.spacing()
            y += height + self.spacing()
        return y - self.spacing() - rect.y() + m.bottom() if self._items else m.top() + m.bottom()


class ScrollArea(QtWidgets.QScrollArea):
    """A scroll area that may ask for less height than its body (`hint_height`): where room is short,
    the layout then gives its neighbours their preferred sizes first, and this scrolls."""

    hint_height: int | None = None

    def sizeHint(self) -> QtCore.QSize:
        hint = super().sizeHint()
        return hint if self.hint_height is None else QtCore.QSize(hint.width(), self.hint_height)


def scrolling(body: QtWidgets.QWidget, across: bool = True, hint_height: int | None = None) -> ScrollArea:
    """`body` filling a frameless scroll area: all of it where there is room, a scroll bar where not;
    with `across` False it scrolls only down, and is never narrower than the body can be."""
    area = ScrollArea(widgetResizable=True, frameShape=QtWidgets.QFrame.Shape.NoFrame)
    area.hint_height = hint_height
    area.setWidget(body)
    if not across:
        area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setMinimumWidth(body.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area


def keep_axis_labels_whole(root: QtWidgets.QWidget) -> None:
    """Every plot under `root`: axis values printed as they are (no "×1e-3" hidden in a label), and
    each axis label shortened with an ellipsis whenever the axis is too short for all of it."""
    plots = root.findChildren(pg.PlotWidget) + ([root] if isinstance(root, pg.PlotWidget) else [])
    for plot in plots:
        for entry in plot.getPlotItem().axes.values():
            axis = entry["item"]
            axis.enableAutoSIPrefix(False)
            fit = _LabelFit(axis)
            axis.geometryChanged.connect(fit)
            fit()


class _LabelFit:
    """Keeps one axis' label within the axis' length; remembers the full text the plot last set."""

    MARGIN = 12   # the text item's own margins, and a little air

    def __init__(self, axis: pg.AxisItem):
        self.axis, self.full, self.shown = axis, axis.labelText, axis.labelText

    def __call__(self) -> None:
        axis = self.axis
        if not shiboken6.isValid(axis) or axis.label is None:   # a window being deleted still resizes its axes
            return
        if axis.labelText != self.shown:   # the plot set a new label since
            self.full = axis.labelText
        vertical = axis.orientation in ("left", "right")
        room = (axis.size().height() if vertical else axis.size().width()) - self.MARGIN
        text = QtGui.QFontMetrics(axis.label.font()).elidedText(self.full, QtCore.Qt.TextElideMode.ElideRight,
                                                                 max(0, int(room)))
        if text != axis.labelText:
            self.shown = text
            axis.labelText = text
            axis._updateLabel()   # noqa: SLF001 - pyqtgraph's one way to re-render a label in place
            axis.resizeEvent()    # and to centre it again
