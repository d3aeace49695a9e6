"""The density pyramid against brute force: the nearest point, the points in a rectangle or a lasso,
the counts behind its pictures, the points outside its grid; and the chunked plane helpers against
numpy's own."""

import numpy as np
import pytest

from latentlab.core.inference.density_pyramid import INDEX_BITS, build_pyramid, grid_extent
from latentlab.core.inference.plane import covariance, plane_coords
from latentlab.core.inference.projection import dims_projection, pca_projection
from latentlab.core.inference.selection import in_polygon


def points(n=60_000, seed=0, outliers=0):
    rng = np.random.default_rng(seed)
    xy = np.concatenate([rng.normal(0, 1, (n // 2, 2)), rng.normal((3, -1), 0.3, (n - n // 2, 2))]).astype(np.float32)
    if outliers:
        xy[rng.choice(n, outliers, replace=False)] = rng.uniform(50, 80, (outliers, 2))
    colors = np.where(xy[:, 0] > 1.5, 0xFFD62728, 0xFF1F77B4).astype(np.uint32)
    return xy, colors


def pyramid(xy, colors, **kw):
    p = build_pyramid(xy[:, 0], xy[:, 1], colors, **kw)
    p.coords = lambda i: xy[i]
    return p


@pytest.mark.parametrize("outliers", [0, 4])
def test_nearest_matches_brute_force(outliers):
    xy, c = points(outliers=outliers)
    p = pyramid(xy, c)
    assert int((np.abs(xy[p.far]).max(1) > 40).sum()) == outliers   # kept apart (with a few tail points)
    rng = np.random.default_rng(1)
    queries = np.concatenate([rng.normal(0, 2, (150, 2)), [[500.0, -400.0], [60.0, 60.0], [-9.0, 0.0]]])
    for x, y in queries:
        d = (xy[:, 0].astype(np.float64) - x) ** 2 + (xy[:, 1].astype(np.float64) - y) ** 2
        got = p.nearest(float(x), float(y))
        assert d[got] == pytest.approx(d.min(), rel=1e-6, abs=1e-9)


def test_rectangles_and_lassos_match_brute_force():
    xy, c = points(outliers=3)
    p = pyramid(xy, c)
    rng = np.random.default_rng(2)
    for _ in range(40):
        a, b = rng.normal(0, 2, 2), rng.normal(0, 2, 2)
        x, y = xy[:, 0], xy[:, 1]
        want = np.flatnonzero((x >= min(a[0], b[0])) & (x <= max(a[0], b[0])) & (y >= min(a[1], b[1])) & (y <= max(a[1], b[1])))
        np.testing.assert_array_equal(p.select_rectangle(a, b), want)
    everything = p.select_rectangle((-1e3, -1e3), (1e3, 1e3))
    np.testing.assert_array_equal(everything, np.arange(len(xy)))
    lasso = np.array([(-1.0, -1.0), (2.5, -0.5), (3.5, 1.5), (0.0, 2.0), (-2.0, 0.5)])
    np.testing.assert_array_equal(p.select_polygon(lasso), np.flatnonzero(in_polygon(xy, lasso)))


def test_counts_and_pictures_hold_every_point_of_the_grid():
    xy, c = points(outliers=5)
    p = pyramid(xy, c, bits=10)
    assert int(p.counts.sum()) == p.total - len(p.far) and len(p.far) >= 5
    assert [im.shape for im in p.images] == [(1 << level, 1 << level) for level in range(11)]
    # the 1×1 level is one opaque pixel whose colour mixes the two colours by their shares of points
    pixel = int(p.images[0][0, 0])
    alpha, red, blue = pixel >> 24, (pixel >> 16) & 255, pixel & 255
    assert alpha == 255
    share_red = float((c == 0xFFD62728)[p.order].mean())
    mix = share_red * np.array([0xD6, 0x28]) + (1 - share_red) * np.array([0x1F, 0xB4])   # (red, blue) of each colour
    assert red / blue == pytest.approx(mix[0] / mix[1], rel=0.03)


def test_a_view_holding_few_points_finds_them_without_the_others():
    xy, c = points(200_000)
    p = pyramid(xy, c)
    box = (2.9, 3.0, -1.05, -0.95)
    found = p.sorted_in(*box)
    inside = (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[1]) & (xy[:, 1] >= box[2]) & (xy[:, 1] <= box[3])
    assert set(np.flatnonzero(inside)) <= set(p.order[found])   # a superset of the view's points...
    assert len(found) < len(xy) / 50                            # ...read from a few cells only
    assert p.count_in(*box) >= inside.sum()
    assert p.offsets[-1] == len(xy) and len(p.offsets) == (1 << 2 * INDEX_BITS) + 1


def test_points_with_nan_are_left_out():
    xy, c = points(5000)
    xy[[3, 4], 0] = np.nan
    p = pyramid(xy, c)
    assert p.total == 4998 and not np.isin([3, 4], p.order).any()
    assert p.nearest(float(xy[3, 1]), float(xy[3, 1])) not in (3, 4)


def test_identical_points_fill_one_cell_exactly():
    xy = np.zeros((3000, 2), np.float32)
    p = pyramid(xy, np.full(3000, 0xFF2CA02C, np.uint32))
    assert int(p.counts.sum()) == 3000 and p.nearest(5.0, 5.0) in range(3000)
    x0, y0, side = grid_extent(xy[:, 0], xy[:, 1])
    assert side > 0 and x0 <= 0 <= x0 + side


def test_chunked_covariance_and_plane_match_numpy():
    rng = np.random.default_rng(3)
    means = (rng.normal(size=(70_000, 6)) @ rng.normal(size=(6, 6))).astype(np.float32)
    np.testing.assert_allclose(covariance(means), np.cov(means.astype(np.float64), rowvar=False), rtol=1e-6, atol=1e-8)
    pca = pca_projection(means)
    _, _, vt = np.linalg.svd(means - means.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(pca.basis.T @ vt[:2].T), np.eye(2), atol=1e-5)   # the same plane
    for projection in (pca, dims_projection(6, 4, 1)):
        x, y = plane_coords(projection, means)
        assert x.dtype == np.float32
        np.testing.assert_allclose(np.c_[x, y], projection.to2d(means), rtol=1e-5, atol=1e-5)
    x, _ = plane_coords(dims_projection(6, 4, 1), means)
    assert np.shares_memory(x, means)   # a pair of coordinates is a view, not a copy
