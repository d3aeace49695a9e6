"""The point renderer, judged by the pixels it draws: density shading, colour per label, crisp stamps."""

import itertools

import numpy as np
import pytest
from PySide6 import QtGui

from latentlab.gui.points import PointCloudItem, PriorCircles, argb, label_colors

W, H = 200, 160
SCALE = 10.0   # pixels per data unit; data (0, 0) at pixel (20, 20), y up like a plot


@pytest.fixture(autouse=True)
def _app(qapp):
    return qapp


def render(pos, colors, size=3, scale=SCALE, item=None):
    """The item painted on white through a plot-like transform; (H, W, 3) uint8 RGB and the item."""
    item = item or PointCloudItem(size=size)
    item.setData(np.asarray(pos, np.float64), np.asarray(colors, np.uint32))
    img = QtGui.QImage(W, H, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(255, 255, 255))
    painter = QtGui.QPainter(img)
    painter.setTransform(QtGui.QTransform(scale, 0, 0, -scale, 20, H - 20))
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
