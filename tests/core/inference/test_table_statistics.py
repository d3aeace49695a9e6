"""Statistics a latent table's millions of rows are summarised by when it opens, against float64 closed forms."""

import numpy as np

from latentlab.core.inference.analysis import STAT_SLICE_VALUES, mean_kl_per_dim


def test_mean_kl_per_dim_matches_the_closed_form_over_many_slices():
    rng = np.random.default_rng(0)
    n, k = 3 * STAT_SLICE_VALUES // 4 + 17, 5   # several row slices, the last one short
    mu = rng.normal(0, 1.5, (n, k)).astype(np.float32)
    logvar = rng.normal(-1, 1, (n, k)).astype(np.float32)
    m, lv = mu.astype(np.float64), logvar.astype(np.float64)
    want = (0.5 * (m ** 2 + np.exp(lv) - lv - 1)).mean(0)
    np.testing.assert_allclose(mean_kl_per_dim(mu, logvar), want, rtol=1e-7)   # float32 inputs: their own precision
    np.testing.assert_allclose(mean_kl_per_dim(np.asfortranarray(mu), np.asfortranarray(logvar)), want, rtol=1e-7)
    assert np.isnan(mean_kl_per_dim(mu[:0], logvar[:0])).all()
