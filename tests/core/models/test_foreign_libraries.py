"""The libraries themselves, where they install in the test extra: pythae's VAE, VAMP and AE from
their `final_model/` folders, and diffusers' AutoencoderKL and AutoencoderTiny as objects handed to
the Python API and as folders. latentlab's numbers must be the libraries' own where both measure
the same thing, and say what differs where they do not."""

import math

import numpy as np
import pytest
import torch

import latentlab
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.files.model_spec import load_model, open_model, spec_kind
from latentlab.core.inference import analysis
from latentlab.core.models.adapters import validate


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# --------------------------------------------------------------------------------------------
# pythae

pythae_models = pytest.importorskip("pythae.models")


def pythae_folder(tmp_path, model):
    model.save(str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def vamp_folder(tmp_path_factory):
    torch.manual_seed(0)
    cfg = pythae_models.VAMPConfig(input_dim=(1, 8, 8), latent_dim=2, number_components=6, reconstruction_loss="bce")
    vamp = pythae_models.VAMP(cfg)
    with torch.no_grad():   # spread and narrow posteriors, pseudo-inputs far from the data: the priors differ
        vamp.encoder.embedding.weight.mul_(8.0)
        vamp.encoder.log_var.bias.sub_(2.0)
        vamp.pseudo_inputs[0].weight.fill_(1.0)
    return pythae_folder(tmp_path_factory.mktemp("vamp"), vamp)


def test_pythae_spec_opens_a_vae_folder_with_its_own_likelihood(tmp_path, digits):
    torch.manual_seed(0)
    cfg = pythae_models.VAEConfig(input_dim=(1, 8, 8), latent_dim=3, reconstruction_loss="bce")
    folder = pythae_folder(tmp_path, pythae_models.VAE(cfg))
    assert spec_kind(f"pythae:{folder}") == "pythae"
    model = validate(load_model(f"pythae:{folder}"), digits.x_train[:8])
    assert model.latent_dim == 3 and str(model.likelihood) == "bernoulli-probs" and model.likelihood_note == ""
    assert model.display_name() == "VAE" and model.latent_prior().declared and not model.notes()
    x = torch.from_numpy(digits.x_test[:16])
    with torch.no_grad():
        out = model.pythae_model.encoder(x)
        mu, lv = model.encode(x)
        torch.testing.assert_close(mu, out.embedding)
        # reconstruction at z: pythae's own BCE on the decoder's probabilities
        recon = model.pythae_model.decoder(mu)["reconstruction"]
        bce = torch.nn.functional.binary_cross_entropy(recon.flatten(1), x.flatten(1), reduction="none").sum(1)
        torch.testing.assert_close(-model.log_likelihood(x, model.decode(mu)), bce, rtol=1e-4, atol=1e-3)


def test_vamp_is_measured_against_its_own_prior(vamp_folder, digits):
    model = validate(load_model(f"pythae:{vamp_folder}"), digits.x_train[:8])
    prior = model.latent_prior()
    assert prior.declared and not prior.closed_form and prior.can_sample
    vamp = model.pythae_model
    x = torch.from_numpy(digits.x_test[:64])
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mu, lv = model.encode(x)
        z = mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=gen)
        recon = model.decode(z)
        _, _, kld = vamp.loss_function(recon.flatten(1), x, mu, lv, z, epoch=0)
        ours = prior.kl(mu, lv, z)
    # the same KL as pythae's loss on the same z (pythae averages it over the batch)
    assert float(ours.mean()) == pytest.approx(float(kld), rel=1e-5)
    # and evaluate reports that number, not the N(0, I) one
    stats = analysis.evaluate(model, digits.x_test, iw_samples=0)
    with torch.no_grad():
        kl_standard = float(analysis.point_kl(*[a.numpy() for a in model.encode(torch.from_numpy(digits.x_test[:]))]).mean())
    reference = []
    with torch.no_grad():
        for _ in range(20):
            xt = torch.from_numpy(digits.x_test[:])
            m, v = model.encode(xt)
            zz = m + torch.exp(0.5 * v) * torch.randn(m.shape, generator=gen)
            reference.append(float(vamp.loss_function(model.decode(zz).flatten(1), xt, m, v, zz, epoch=0)[2]))
    assert stats["kl"] == pytest.approx(np.mean(reference), rel=0.05)   # one z per image against 20
    assert abs(stats["kl"] - kl_standard) > 0.5
    assert stats["kl_method"] == "Monte Carlo" and stats["prior_declared"]


def test_vamp_prior_samples_follow_its_pseudo_inputs(vamp_folder, digits):
    model = validate(load_model(f"pythae:{vamp_folder}"), digits.x_train[:8])
    z = model.latent_prior().sample(20_000, 2, generator=torch.Generator().manual_seed(0))
    vamp = model.pythae_model
    with torch.no_grad():
        pseudo = vamp.pseudo_inputs(vamp.idle_input).reshape(6, 1, 8, 8)
        centres = vamp.encoder(pseudo).embedding
    np.testing.assert_allclose(z.mean(0).numpy(), centres.mean(0).numpy(), atol=0.05)


def test_fine_tuning_vamp_keeps_its_prior(vamp_folder, digits):
    from latentlab.core.inference.objectives import elbo_terms

    model = validate(load_model(f"pythae:{vamp_folder}"), digits.x_train[:8])
    x = torch.from_numpy(digits.x_train[:32])
    eps = torch.randn((32, 2), generator=torch.Generator().manual_seed(0))
    terms = elbo_terms(model, x, eps)
    z = terms.mu + torch.exp(0.5 * terms.logvar) * eps
    _, _, kld = model.pythae_model.loss_function(model.decode(z).flatten(1), x, terms.mu, terms.logvar, z, epoch=0)
    assert float(terms.kl.mean()) == pytest.approx(float(kld), rel=1e-5)
    # the prior's pseudo-inputs get gradients: training moves the prior as pythae's does
    terms.kl.mean().backward()
    assert model.pythae_model.pseudo_inputs[0].weight.grad.abs().sum() > 0


def test_pythae_ae_opens_as_a_deterministic_autoencoder(tmp_path, digits):
    torch.manual_seed(0)
    folder = pythae_folder(tmp_path, pythae_models.AE(pythae_models.AEConfig(input_dim=(1, 8, 8), latent_dim=2)))
    model = validate(load_model(f"pythae:{folder}"), digits.x_train[:8])
    assert model.deterministic and "deterministic autoencoder" in model.notes()[0]
    stats = analysis.evaluate(model, digits.x_test, iw_samples=10)
    assert stats["deterministic"] and stats["elbo"] is None and stats["kl"] is None and "iw_samples" not in stats
    assert math.isfinite(stats["recon"])


def test_pythae_models_that_are_not_gaussian_are_refused(tmp_path):
    cfg = pythae_models.SVAEConfig(input_dim=(1, 8, 8), latent_dim=3)
    folder = pythae_folder(tmp_path, pythae_models.SVAE(cfg))
    with pytest.raises(LatentLabError, match="hyperspherical"):
        load_model(f"pythae:{folder}")
    with pytest.raises(LatentLabError, match="is not a folder"):
        load_model(f"pythae:{tmp_path / 'nothing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentLabError, match="not a pythae model folder"):
        load_model(f"pythae:{tmp_path / 'empty'}")


def test_a_pythae_object_through_the_api_gets_the_same_numbers(vamp_folder, digits):
    from pythae.models import AutoModel

    obj = AutoModel.load_from_folder(str(vamp_folder))
    with pytest.warns(UserWarning, match="Monte Carlo"):
        stats = latentlab.evaluate(obj, digits, iw_samples=0)
    spec = latentlab.evaluate(f"pythae:{vamp_folder}", digits, iw_samples=0)
    assert stats["elbo"] == pytest.approx(spec["elbo"], rel=1e-6)


# --------------------------------------------------------------------------------------------
# diffusers

diffusers = pytest.importorskip("diffusers")


def tiny_kl():
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=2,
        norm_num_groups=4, sample_size=8, layers_per_block=1)


def tiny_taesd():
    torch.manual_seed(0)
    return diffusers.AutoencoderTiny(in_channels=1, out_channels=1, encoder_block_out_channels=(8, 8),
                                     decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                                     num_decoder_blocks=(1, 1), latent_channels=2)


def test_an_autoencoderkl_object_gives_the_numbers_of_its_folder(tmp_path, digits):
    vae = tiny_kl()
    vae.save_pretrained(str(tmp_path))
    from_object = latentlab.evaluate(vae, digits, iw_samples=5)
    from_folder = latentlab.evaluate(f"diffusers:{tmp_path}", digits, iw_samples=5)
    for key in ("elbo", "recon", "kl", "log_px_iw"):
        assert from_object[key] == pytest.approx(from_folder[key], rel=1e-6), key
    assert from_object["prior_declared"] and not any("assumed" in n for n in from_object["notes"])


def test_autoencoder_tiny_opens_with_the_views_that_apply(tmp_path, digits):
    tiny_taesd().save_pretrained(str(tmp_path))
    opened = open_model(f"diffusers:{tmp_path}")
    model = validate(opened.model, digits.x_train[:8])
    assert model.deterministic and model.latent_shape[0] == 2
    mu, _ = analysis.encode(model, digits.x_test[:4])
    imgs = analysis.decode(model, mu)
    assert imgs.shape == (4, 1, 8, 8) and np.isfinite(imgs).all()
    stats = analysis.evaluate(model, digits.x_test[:20])
    assert stats["deterministic"] and stats["elbo"] is None
