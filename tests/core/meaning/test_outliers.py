"""Ranking the images a model explains worst: planted outliers come first, on latentlab's model and a
user's; the scores are the model's own numbers."""

import numpy as np
import pytest

from latentlab.core.errors import Cancelled
from latentlab.core.meaning.outliers import image_scores, rank_outliers, worst


@pytest.fixture(scope="module")
def digits():
    from latentlab.core.data.specs import load_dataset

    return load_dataset("digits")


def with_planted(data, count=3):
    """The test images with `count` noise images at known rows."""
    x = data.x_test[:200].copy()
    rows = np.array([17, 90, 150][:count])
    x[rows] = np.random.default_rng(0).random((count, *x.shape[1:])).astype(np.float32)
    return x, rows


@pytest.mark.parametrize("which", ["bundled", "adapter"])
@pytest.mark.parametrize("by", ["recon", "iw"])
def test_planted_noise_images_rank_first(digits, which, by, tmp_path):
    from model_specs import open_spec

    model = open_spec(which, digits, tmp_path)
    x, planted = with_planted(digits)
    found = rank_outliers(model, x, by=by, n=5, iw_samples=20)
    assert set(found.rows[:3]) == set(planted)
    order = found.scores
    assert list(order) == sorted(order, reverse=(by == "recon"))
    assert found.all_scores.shape == (200,) and found.by == by


def test_scores_are_the_models_own_numbers(digits):
    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.model_spec import load_model
    from latentlab.core.inference.analysis import encode, evaluate, reconstruction_nll

    model = load_model(str(default_checkpoint()))
    x = digits.x_test[:100]
    recon = image_scores(model, x, by="recon")
    np.testing.assert_allclose(recon, reconstruction_nll(model, x, encode(model, x)[0]), rtol=1e-4)
    iw = image_scores(model, x, by="iw", iw_samples=200)
    # The mean of the per-image estimates is the evaluation's (other draws: within Monte Carlo noise).
    assert iw.mean() == pytest.approx(evaluate(model, x, iw_samples=200)["log_px_iw"], abs=0.05)
    assert np.all(iw < 0)


def test_the_conv_model_a_user_brings_on_sprites():
    from model_specs import open_spec

    from latentlab.core.data.specs import load_dataset

    data = load_dataset("sprites")
    model = open_spec("conv", data)
    x = data.x_test[:64].copy()
    x[5] = 1.0   # an all-white image: far from every sprite
    assert rank_outliers(model, x, n=1).rows[0] == 5


def test_non_finite_scores_are_the_worst_and_stop_is_heard(digits):
    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.model_spec import load_model

    ranked = worst(np.array([1.0, np.nan, 5.0, 2.0]), "recon", 3)
    assert list(ranked.rows) == [1, 2, 3]
    assert list(worst(np.array([-1.0, -9.0, -3.0]), "iw", 2).rows) == [1, 2]
    with pytest.raises(Cancelled):
        image_scores(load_model(str(default_checkpoint())), digits.x_test, should_stop=lambda: True)
