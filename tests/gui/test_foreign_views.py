"""Other libraries' models in the window: a spatial latent keeps its layout in the Spatial tab, a
deterministic autoencoder opens with the views that apply, and what the numbers assume (an N(0, I)
prior, a Tanh decoder read as logits) is said in the banner."""

import numpy as np
import pytest
import torch
from gui_helpers import wait_idle

from latentlab.core.inference.spatial import channel_pca, kl_maps, pca_image, position_traversal


def open_spec(window, qtbot, spec, **kwargs):
    with qtbot.waitSignal(window.session.loaded, timeout=60000):
        window.open_model(spec, **kwargs)
    wait_idle(window.session)


def tiny_kl(path, channels=4):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    diffusers.AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=channels,
        norm_num_groups=4, sample_size=8, layers_per_block=1).save_pretrained(str(path))
    return path


def test_the_spatial_tab_keeps_a_diffusers_latent_in_its_layout(window, qtbot, tmp_path):
    s = window.session
    open_spec(window, qtbot, f"diffusers:{tiny_kl(tmp_path / 'ae')}")
    view = window.findChild(type(window.spatial), "spatialView")
    window.tools.setCurrentWidget(view)
    s.select_point(5)
    wait_idle(s)
    assert view.mode.isEnabled() and view.channel.maximum() == 3 and view.row.maximum() == 3
    items = [i for i in view.maps.ci.items]
    assert len(items) == 4   # one map per channel
    # KL per channel and per position: the session's KL per dimension, reshaped
    view.mode.setCurrentText("KL per channel and position")
    kl, _ = s.dimension_stats()
    per_channel, per_position = kl_maps(kl, (4, 4, 4))
    assert per_channel.sum() == pytest.approx(per_position.sum()) == pytest.approx(kl.sum())
    # a traversal of one channel at one position decodes a strip of images
    view.mode.setCurrentText("Traversal at a position")
    view.row.setValue(2)
    wait_idle(s)
    assert view.strip.pixmap() is not None and not view.strip.pixmap().isNull()
    view.mode.setCurrentText("PCA over channels")
    wait_idle(s)
    assert view._pca is not None and view._pca[2].shape == (3, 4)


def test_the_spatial_tab_says_why_it_is_off_for_a_flat_latent(window, qtbot):
    view = window.spatial
    window.tools.setCurrentWidget(view)
    assert not view.mode.isEnabled() and "C×h×w" in view.message.text()


def test_spatial_maths():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(50, 3 * 2 * 5)).astype(np.float32)
    codes = position_traversal(mu[0], (3, 2, 5), 1, 1, 4, [-1.0, 0.0, 2.0])
    assert codes.reshape(3, 3, 2, 5)[:, 1, 1, 4].tolist() == [-1.0, 0.0, 2.0]
    assert np.array_equal(np.delete(codes, (1 * 2 + 1) * 5 + 4, axis=1), np.delete(np.repeat(mu[:1], 3, 0), 19, axis=1))
    mean, comps, ratio = channel_pca(mu, (3, 2, 5))
    vectors = mu.reshape(50, 3, 10).transpose(0, 2, 1).reshape(-1, 3)
    np.testing.assert_allclose(mean, vectors.mean(0), atol=1e-6)
    np.testing.assert_allclose(np.abs(comps @ comps.T), np.eye(3), atol=1e-6)
    assert ratio.sum() == pytest.approx(1.0)
    img = pca_image(mu[0], (3, 2, 5), mean, comps)
    assert img.shape == (3, 2, 5) and img.min() >= 0 and img.max() <= 1


def test_a_deterministic_autoencoder_opens_with_the_views_that_apply(window, qtbot, tmp_path):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    diffusers.AutoencoderTiny(in_channels=1, out_channels=1, encoder_block_out_channels=(8, 8),
                              decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1),
                              latent_channels=2).save_pretrained(str(tmp_path / "taesd"))
    s = window.session
    open_spec(window, qtbot, f"diffusers:{tmp_path / 'taesd'}")
    assert s.model_data.model.deterministic and s.latent.points is not None
    assert "deterministic autoencoder" in window.banner.label.text()
    window.tools.setCurrentWidget(window.posterior)
    wait_idle(s)
    assert "deterministic autoencoder" in window.posterior.numbers.text()
    window.tools.setCurrentWidget(window.aggregate)
    assert not window.aggregate.sample.isEnabled() and "no q(z|x)" in window.aggregate.sample.toolTip()
    window.tools.setCurrentWidget(window.traversals)
    wait_idle(s)
    assert window.traversals.images is not None


def test_an_assumed_prior_and_a_tanh_decoder_are_said_in_the_banner(window, qtbot):
    open_spec(window, qtbot, "foreign_models:AntixKVanillaVAE")
    text = window.banner.label.text()
    assert window.banner.isVisible() and "N(0, I) is assumed" in text and "Tanh" in text
    assert "N(0, I) assumed" in window.decoded.z_label.text()


def test_a_declared_prior_is_drawn_as_its_contours_instead_of_the_circles(window, qtbot):
    circles = window.latent.plot.circles
    assert circles.boundingRect().width() == pytest.approx(6.0)   # the N(0, I) circles of radius 3
    open_spec(window, qtbot, "foreign_models:MixturePriorVAE")
    s = window.session
    wait_idle(s)
    contours = s.latent.prior_contours
    assert contours is not None and len(contours["lines"]) >= 3 and set(contours["masses"]) == {0.39, 0.86, 0.99}
    rect = circles.boundingRect()
    # the mixture's components at (±3, 0) and (0, 3) lie inside its 99% contour
    assert rect.left() < -3 and rect.right() > 3 and rect.bottom() > 3
    assert "N(0, I) assumed" not in window.decoded.z_label.text() and "log p(z)" in window.decoded.z_label.text()
    assert "N(0, I) is assumed" not in window.banner.label.text()
