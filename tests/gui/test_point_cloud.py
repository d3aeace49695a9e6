"""The point renderer, judged by the pixels it draws: density shading, colour per label, crisp stamps."""

import itertools

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui, QtWidgets

from latentlab.gui.widgets.palette import argb, label_colors
from latentlab.gui.widgets.point_cloud import PointCloudItem
from latentlab.gui.widgets.prior_circles import PriorCircles

W, H = 200, 160
SCALE = 10.0   # pixels per data unit; data (0, 0) at pixel (20, 20), y up like a plot


@pytest.fixture(autouse=True)
def _app(qapp):
    return qapp


def render(pos, colors, size=3, scale=SCALE, item=None, background=(255, 255, 255), transform=None):
    """The item painted on `background` through a plot-like transform; (H, W, 3) uint8 RGB and the item."""
    item = item or PointCloudItem(size=size)
    item.setData(np.asarray(pos, np.float64), np.asarray(colors, np.uint32))
    img = QtGui.QImage(W, H, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(*background))
    painter = QtGui.QPainter(img)
    painter.setTransform(transform or QtGui.QTransform(scale, 0, 0, -scale, 20, H - 20))
    item.paint(painter)
    painter.end()
    raw = np.frombuffer(img.constBits(), np.uint32, img.sizeInBytes() // 4).reshape(H, img.bytesPerLine() // 4)[:, :W]
    rgb = np.stack([(raw >> 16) & 255, (raw >> 8) & 255, raw & 255], -1).astype(np.uint8)
    return rgb, item


def pixel(x, y, scale=SCALE):
    """Row and column of data point (x, y)."""
    return int(H - 20 - y * scale), int(20 + x * scale)


def luminance(rgb):
    return rgb.astype(float) @ np.array([0.299, 0.587, 0.114])


BLUE, ORANGE = argb(label_colors(2))


def test_more_points_on_a_pixel_draw_it_darker_monotonically():
    counts = [1, 2, 4, 8, 16, 32]
    pos = np.concatenate([np.full((c, 2), (1.0 + 2.5 * i, 5.0)) for i, c in enumerate(counts)])
    rgb, item = render(pos, np.full(len(pos), BLUE))
    lum = [luminance(rgb[pixel(1.0 + 2.5 * i, 5.0)]) for i in range(len(counts))]
    assert all(a > b for a, b in itertools.pairwise(lum)), lum
    assert lum[0] < 250   # a lone point is still clearly visible
    assert item.stats["exact"] is False


def test_dense_region_is_darker_than_sparse_region_of_the_same_class():
    rng = np.random.default_rng(0)
    dense = rng.normal((4.0, 6.0), 0.3, (4000, 2))
    sparse = rng.normal((12.0, 6.0), 0.3, (200, 2))
    rgb, _ = render(np.concatenate([dense, sparse]), np.full(4200, BLUE), size=1)
    assert luminance(rgb[pixel(4.0, 6.0)]) < luminance(rgb[pixel(12.0, 6.0)]) - 20


def test_each_label_keeps_its_colour_and_overlaps_mix():
    a = np.full((5, 2), (3.0, 3.0))
    b = np.full((5, 2), (8.0, 3.0))
    both = np.concatenate([np.full((5, 2), (13.0, 3.0)), np.full((5, 2), (13.0, 3.0))])
    colors = np.array([BLUE] * 5 + [ORANGE] * 5 + [BLUE] * 5 + [ORANGE] * 5, np.uint32)
    rgb, _ = render(np.concatenate([a, b, both]), colors)
    blue, orange, mixed = (rgb[pixel(x, 3.0)].astype(int) for x in (3.0, 8.0, 13.0))
    assert blue[2] > blue[0] and orange[0] > orange[2]          # blue is blue, orange is orange
    # the mixed pixel lies between the two in red and blue
    assert min(blue[0], orange[0]) < mixed[0] < max(blue[0], orange[0]) + 1
    assert min(blue[2], orange[2]) - 1 < mixed[2] < max(blue[2], orange[2])


def test_lone_points_are_crisp_opaque_squares():
    pos = np.array([(2.0, 2.0), (6.0, 2.0), (10.0, 2.0)])
    rgb, _ = render(pos, np.full(3, ORANGE), size=3)
    want = np.array([(ORANGE >> 16) & 255, (ORANGE >> 8) & 255, ORANGE & 255])
    r, c = pixel(2.0, 2.0)
    block = rgb[r - 1:r + 2, c - 1:c + 2].reshape(-1, 3).astype(int)
    assert np.abs(block - want).max() <= 5          # the full stamp in the label's colour, opaque
    ring = np.concatenate([rgb[r - 2, c - 2:c + 3], rgb[r + 2, c - 2:c + 3], rgb[r - 1:r + 2, c - 2], rgb[r - 1:r + 2, c + 2]])
    assert (ring == 255).all()                      # and nothing around it
    assert int((luminance(rgb) < 250).sum()) == 3 * 9


def test_zooming_in_separates_a_pile_into_single_points():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 1, (40, 2)) + 0.1
    far, _ = render(pos, np.full(40, BLUE), size=1, scale=2.0)
    near, _ = render(pos, np.full(40, BLUE), size=1, scale=100.0)
    assert int((luminance(far) < 250).sum()) < 10      # a few pixels carry the whole pile
    assert int((luminance(near) < 250).sum()) >= 38    # each point its own pixel (rare exact overlaps)


def test_very_concentrated_points_use_the_exact_sums():
    pos = np.concatenate([np.full((3000, 2), (3.0, 3.0)), np.full((1, 2), (9.0, 3.0))])
    colors = np.array([BLUE] * 1500 + [ORANGE] * 1500 + [BLUE], np.uint32)
    rgb, item = render(pos, colors)
    assert item.stats["exact"] is True
    mixed = rgb[pixel(3.0, 3.0)].astype(int)
    blue, orange = (np.array([(c >> 16) & 255, (c >> 8) & 255, c & 255]) for c in (BLUE, ORANGE))
    # an even mix of the two colours, darkened for density: red and blue near their averages' ratio
    assert abs(mixed[0] / max(mixed[2], 1) - (blue[0] + orange[0]) / (blue[2] + orange[2])) < 0.15
    assert luminance(rgb[pixel(9.0, 3.0)]) > luminance(rgb[pixel(3.0, 3.0)])


@pytest.mark.parametrize("pile", [600, 1100, 2100, 5000])
def test_piles_beyond_the_packed_fields_use_the_exact_sums(pile):
    # 600 overflows the colour fields; from 1024 on the count itself leaves the packed float's exact range.
    half = pile // 2
    pos = np.concatenate([np.full((2 * half, 2), (3.0, 3.0)), np.full((1, 2), (9.0, 3.0))])
    colors = np.array([BLUE] * half + [ORANGE] * half + [BLUE], np.uint32)
    rgb, item = render(pos, colors)
    assert item.stats["exact"] is True and item.stats["max"] == 2 * half
    mixed = rgb[pixel(3.0, 3.0)].astype(int)
    blue, orange = (np.array([(c >> 16) & 255, (c >> 8) & 255, c & 255]) for c in (BLUE, ORANGE))
    assert abs(mixed[0] / max(mixed[2], 1) - (blue[0] + orange[0]) / (blue[2] + orange[2])) < 0.15


def test_white_points_keep_their_bytes_from_one_point_to_hundreds():
    # Channel sums × factor must stay within a byte: an overflow would wrap white to black.
    counts = [1, 7, 60, 500]
    pos = np.concatenate([np.full((c, 2), (1.0 + 2.5 * i, 5.0)) for i, c in enumerate(counts)])
    rgb, item = render(pos, np.full(len(pos), 0xFFFFFFFF, np.uint32), background=(0, 0, 0))
    shades = [rgb[pixel(1.0 + 2.5 * i, 5.0)].astype(int) for i in range(len(counts))]
    assert item.stats["exact"] is False
    assert all(s[0] == s[1] == s[2] for s in shades), shades          # still grey: no channel wrapped
    assert all(s[0] > 120 for s in shades), shades                     # and far from black
    lone, _ = render([(2.0, 2.0)], [0xFFFFFFFF], background=(0, 0, 0))
    assert (lone[pixel(2.0, 2.0)] == 255).all()                        # a lone white point is exactly white


def test_a_pile_outside_the_view_changes_nothing_inside_it():
    pile = np.full((3000, 2), (-30.0, 3.0))                             # left of the view, on the same rows
    rgb, item = render(np.concatenate([pile, [(6.0, 3.0)]]), np.full(3001, ORANGE))
    assert item.stats["exact"] is False and item.stats["max"] == 1
    assert int((luminance(rgb) < 250).sum()) == 9                      # only the lone point, opaque and crisp
    want = np.array([(ORANGE >> 16) & 255, (ORANGE >> 8) & 255, ORANGE & 255])
    assert np.abs(rgb[pixel(6.0, 3.0)].astype(int) - want).max() <= 5


def test_stamps_across_the_views_edges_are_drawn_up_to_them():
    # Points on the first and last pixel rows and columns: the half of each stamp inside the view shows.
    corners = np.array([(0.05, 0.05), (W - 0.95, 0.05), (0.05, H - 0.95), (W - 0.95, H - 0.95)])
    pos = (corners - (20, H - 20)) * (1, -1) / SCALE
    rgb, _ = render(pos, np.full(4, BLUE))
    dark = luminance(rgb) < 250
    assert int(dark.sum()) == 4 * 4
    assert dark[:2, :2].all() and dark[:2, -2:].all() and dark[-2:, :2].all() and dark[-2:, -2:].all()


def test_a_new_raster_keeps_nothing_of_the_previous_one():
    item = PointCloudItem(size=3)
    render([(2.0, 2.0), (12.0, 9.0), (16.0, 1.0)], np.full(3, BLUE), item=item)
    rgb, _ = render([(6.0, 4.0)], np.full(1, ORANGE), item=item)
    assert int((luminance(rgb) < 250).sum()) == 9
    r, c = pixel(6.0, 4.0)
    assert (luminance(rgb[r - 1:r + 2, c - 1:c + 2]) < 250).all()


def test_a_rotated_view_puts_points_where_the_painter_maps_them_and_nan_nowhere():
    t = QtGui.QTransform().translate(100, 80).rotate(90).scale(SCALE, -SCALE)
    pos = np.array([(2.0, 3.0), (np.nan, 1.0), (np.inf, np.inf)])
    rgb, _ = render(pos, np.full(3, BLUE), transform=t)
    x, y = t.map(2.0, 3.0)
    assert int((luminance(rgb) < 250).sum()) == 9
    assert luminance(rgb[int(y), int(x)]) < 250


@pytest.mark.parametrize("far", [(1e9, 1e9), (1e30, 5.0), (3e38, -3e38), (5.0, -1e12)])
def test_points_only_far_outside_the_view_draw_nothing_and_do_not_fail(far):
    # Their bounds in device pixels are beyond a QRect's int range.
    rgb, item = render([far, far], np.full(2, BLUE))
    assert (rgb == 255).all() and item.stats["max"] == 0


def test_points_off_the_view_and_nan_draw_nothing_and_do_not_fail():
    pos = np.array([(-1e9, 0.0), (1e9, 1e9), (np.nan, 1.0), (-50.0, -50.0)])
    rgb, _ = render(pos, np.full(4, BLUE))
    assert (rgb == 255).all()


def test_the_raster_is_reused_while_the_view_does_not_move():
    pos = np.array([(2.0, 2.0)])
    _, item = render(pos, np.full(1, BLUE))
    first = item._cache
    img = QtGui.QImage(W, H, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(img)
    painter.setTransform(QtGui.QTransform(SCALE, 0, 0, -SCALE, 20, H - 20))
    item.paint(painter)
    assert item._cache is first
    painter.translate(1, 0)
    item.paint(painter)
    painter.end()
    assert item._cache is not first


def test_nearest_and_count_keep_the_callers_order():
    item = PointCloudItem()
    item.setData(np.array([(0.0, 0.0), (5.0, 5.0), (1.0, 0.0)]), np.full(3, BLUE))
    assert item.count() == 3
    assert item.nearest(0.9, 0.1) == 2
    assert item.nearest(4.0, 4.0) == 1


def test_prior_circles_sit_above_the_points():
    assert PriorCircles().zValue() > PointCloudItem().zValue()


@pytest.mark.parametrize("half", [3.5, 3.02, 50.0])
def test_cached_prior_circles_draw_the_same_pixels_as_uncached_ones(qtbot, half):
    # 3.02: the radius-3 circle runs along the view's edges, where the half of the pen outside the circles' bounds
    # must survive the cache too.
    def shot(cached):
        widget = pg.PlotWidget(background="w")
        qtbot.addWidget(widget)
        widget.getPlotItem().setAspectLocked(True)
        widget.resize(400, 320)
        circles = PriorCircles()
        if not cached:
            circles.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.NoCache)
        widget.addItem(circles)
        widget.setRange(xRange=(-half, half), yRange=(-half, half), padding=0)
        widget.show()
        qtbot.waitExposed(widget)
        img = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
        return widget, circles.cacheMode(), np.frombuffer(img.constBits(), np.uint32, img.sizeInBytes() // 4).copy()

    _, mode, cached = shot(True)
    assert mode == QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
    _, _, plain = shot(False)
    assert int(((plain & 255) < 200).sum()) > 500                      # the circles are there
    assert np.array_equal(cached, plain)
