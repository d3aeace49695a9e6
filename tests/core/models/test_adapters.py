"""The model protocol: every accepted encode/decode return form, the one validation on a batch,
and a foreign linear-Gaussian model checked against closed forms through the inspector's code."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from linear_gaussian import (  # the same closed forms the inspector is tested on
    SIGMA,
    B,
    W,
    X,
    gauss_kl,
    lg_exact,
)
from torch import nn

from latentlab.core.errors import ModelError
from latentlab.core.inference import analysis
from latentlab.core.inference.posterior import posterior_for_image
from latentlab.core.models.adapters import Likelihood, TorchVAE, as_latent_model, validate

X8 = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))


class Tiny(nn.Module):
    """A linear VAE on 1×4×4 images; `enc_form` / `dec_form` pick what encode / decode return."""

    def __init__(self, enc_form="tuple", dec_form="image", k=3):
        super().__init__()
        self.enc = nn.Linear(16, 2 * k)
        self.dec = nn.Linear(k, 16)
        self.enc_form, self.dec_form = enc_form, dec_form

    def encode(self, x):
        mu, lv = self.enc(x.flatten(1)).chunk(2, 1)
        f = self.enc_form
        if f == "tuple":
            return mu, lv
        if f == "normal":
            return torch.distributions.Normal(mu, torch.exp(0.5 * lv))
        if f == "dict":
            return {"mean": mu, "logvar": lv}
        if f == "std":
            return SimpleNamespace(mean=mu, std=torch.exp(0.5 * lv))
        if f == "var":
            return SimpleNamespace(mean=mu, var=torch.exp(lv))
        if f == "latent_dist":
            return SimpleNamespace(latent_dist=SimpleNamespace(mean=mu, logvar=lv))
        return f  # a wrong type, on purpose

    def decode(self, z):
        out = self.dec(z)
        if self.dec_form == "image":
            return out.view(-1, 1, 4, 4)
        if self.dec_form == "flat":
            return out
        if self.dec_form == "sample":
            return SimpleNamespace(sample=out.view(-1, 1, 4, 4))
        if self.dec_form == "wrong_shape":
            return out[:, :10]
        if self.dec_form == "nan":
            return out * math.nan
        return "not a tensor"


def reference(model):
    """log p(x|z) and q computed by hand for the Tiny model at z = mu."""
    mu, lv = model.enc(X8.flatten(1)).chunk(2, 1)
    logits = model.dec(mu)
    ll = -nn.functional.binary_cross_entropy_with_logits(logits, X8.flatten(1), reduction="none").sum(1)
    return mu, lv, ll


@pytest.mark.parametrize("form", ["tuple", "normal", "dict", "std", "var", "latent_dist"])
def test_every_encoder_form_gives_the_same_posterior(form):
    torch.manual_seed(0)
    net = Tiny(enc_form=form)
    m = validate(as_latent_model(net), X8)
    mu, lv = m.encode(X8)
    ref_mu, ref_lv, _ = reference(net)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(lv, ref_lv, atol=1e-5, rtol=1e-5)
    assert m.latent_shape == (3,) and m.latent_dim == 3 and m.image_shape == (1, 4, 4)


@pytest.mark.parametrize("form", ["image", "flat", "sample"])
def test_every_decoder_form_gives_images_and_the_same_likelihood(form):
    torch.manual_seed(0)
    net = Tiny(dec_form=form)
    m = validate(as_latent_model(net), X8)
    mu, _ = m.encode(X8)
    params = m.decode(mu)
    assert params.shape == (6, 1, 4, 4)
    torch.testing.assert_close(m.log_likelihood(X8, params), reference(net)[2])
    img = analysis.decode(m, mu.detach().numpy())
    assert img.shape == (6, 1, 4, 4) and img.min() >= 0 and img.max() <= 1


def test_latents_of_any_shape_are_flattened_and_reshaped_back():
    class Spatial(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Conv2d(1, 4, 2, 2)   # (B, 4, 2, 2): mean and logvar, 2 channels each
            self.dec = nn.ConvTranspose2d(2, 1, 2, 2)

        def encode(self, x):
            return self.enc(x).chunk(2, 1)

        def decode(self, z):
            assert z.shape[1:] == (2, 2, 2)
            return self.dec(z)

    m = validate(as_latent_model(Spatial()), X8)
    assert m.latent_shape == (2, 2, 2) and m.latent_dim == 8
    mu, logvar = analysis.encode(m, X8.numpy())
    assert mu.shape == logvar.shape == (6, 8)
    assert analysis.decode(m, mu).shape == (6, 1, 4, 4)


def test_likelihood_precedence_and_forms():
    torch.manual_seed(0)
    net = Tiny()
    assert str(as_latent_model(net).likelihood) == "bernoulli"
    net.likelihood = "gaussian:0.2"
    assert str(as_latent_model(net).likelihood) == "gaussian:0.2"
    assert str(as_latent_model(net, likelihood="bernoulli-probs").likelihood) == "bernoulli-probs"
    for bad in ("poisson", "gaussian:-1", "gaussian:x"):
        with pytest.raises(ModelError, match="likelihood|SIGMA"):
            Likelihood.parse(bad)
    # Gaussian in a model range of [-1, 1]: densities are per unit of [0, 1] pixels.
    params = torch.zeros(1, 1, 4, 4)
    x01 = torch.full((1, 1, 4, 4), 0.5)
    m = as_latent_model(Tiny(), likelihood="gaussian:0.1")
    m.input_range = (-1.0, 1.0)
    expect = 16 * (-math.log(0.1) - 0.5 * math.log(2 * math.pi))
    assert float(m.log_likelihood(x01, params)) == pytest.approx(expect, rel=1e-6)
    assert float(m.mean_image(params).mean()) == pytest.approx(0.5)


def test_a_model_may_bring_its_own_log_likelihood():
    class Own(Tiny):
        def log_likelihood(self, x, params):
            return -(x - params).square().flatten(1).sum(1)

    m = validate(as_latent_model(Own()), X8)
    mu, _ = m.encode(X8)
    params = m.decode(mu)
    torch.testing.assert_close(m.log_likelihood(X8, params), -(X8 - params).square().flatten(1).sum(1))
    assert "own log_likelihood" in m.describe()


@pytest.mark.parametrize("net, message", [
    (Tiny(enc_form=7), "encode\\(x\\) returned a int"),
    (Tiny(dec_form="wrong_shape"), "decode\\(z\\) returned shape \\(4, 10\\); expected \\(4, 1, 4, 4\\) or flat \\(4, 16\\)"),
    (Tiny(dec_form="nan"), "NaN or infinite"),
    (Tiny(dec_form="str"), "decode\\(z\\) returned a str"),
])
def test_bad_outputs_give_one_sentence(net, message):
    with pytest.raises(ModelError, match=message) as info:
        validate(as_latent_model(net), X8)
    assert "\n" not in str(info.value)


def test_a_model_that_does_not_fit_the_images_says_the_shapes():
    with pytest.raises(ModelError, match=r"failed while encoding images of shape \(1, 8, 8\): RuntimeError"):
        validate(as_latent_model(Tiny()), torch.rand(3, 1, 8, 8))
    net = Tiny()
    net.image_shape = (1, 28, 28)
    with pytest.raises(ModelError, match=r"expects images of shape \(1, 28, 28\), but the data has \(1, 4, 4\)"):
        validate(as_latent_model(net), X8)


def test_not_a_vae_is_refused():
    with pytest.raises(ModelError, match="no encode\\(\\) method"):
        as_latent_model(nn.Linear(2, 2))
    with pytest.raises(ModelError, match="not a torch nn.Module"):
        as_latent_model(42)


def test_copy_is_independent_and_keeps_its_shapes():
    m = validate(as_latent_model(Tiny()), X8)
    c = m.copy()
    with torch.no_grad():
        next(c.parameters()).add_(1.0)
    assert not torch.equal(next(c.parameters()), next(m.parameters()))
    assert c.latent_shape == m.latent_shape and isinstance(c, TorchVAE)
    assert set(m.state_dict()) == {"net." + k for k in m.weights_module().state_dict()}


# --------------------------------------------------------------------------------------------
# the linear-Gaussian decoder of test_posterior as a foreign model, through the inspector's own code

class LinearGaussian(nn.Module):
    likelihood = f"gaussian:{SIGMA}"

    def __init__(self, q_mu, q_logvar):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(W))
        self.b = nn.Parameter(torch.tensor(B))
        self.q = nn.Parameter(torch.tensor(np.stack([q_mu, q_logvar])))

    def encode(self, x):
        return self.q[0].expand(len(x), 2), self.q[1].expand(len(x), 2)

    def decode(self, z):
        return (z @ self.w.T + self.b).view(-1, 1, 1, 3)


def test_foreign_linear_gaussian_gives_closed_form_log_px_posterior_and_gap():
    log_px, post_mean, post_cov = lg_exact()
    q_mu, q_var = post_mean + np.array([0.12, -0.08]), np.diag(post_cov) * np.array([0.6, 1.4])
    model = validate(as_latent_model(LinearGaussian(q_mu, np.log(q_var))), torch.tensor(X).view(1, 1, 1, 3))

    g = posterior_for_image(model, X.reshape(1, 1, 3))
    assert g.log_px == pytest.approx(log_px, abs=1e-6)
    np.testing.assert_allclose(g.mean, post_mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.cov, post_cov, rtol=1e-6, atol=1e-8)
    kl = gauss_kl(q_mu, np.diag(q_var), post_mean, post_cov)
    assert kl > 0.1
    assert g.gap == pytest.approx(kl, abs=1e-6)

    stats = analysis.evaluate(model, X.reshape(1, 1, 1, 3), iw_samples=20000, elbo_samples=20000)
    assert stats["log_px_iw"] == pytest.approx(log_px, abs=0.02)
    assert stats["gap"] == pytest.approx(kl, abs=0.1)


def test_evaluate_splits_decoding_by_image_size(monkeypatch):
    """Large images decode in small pieces: no decoder call holds more than DECODE_BUDGET pixels."""
    from latentlab.core.inference import analysis as an

    class Big(Tiny):
        def decode(self, z):
            calls.append(z.shape[0])
            return super().decode(z)

    calls = []
    monkeypatch.setattr(an, "DECODE_BUDGET", 16 * 40)   # 40 decoded 4×4 images per call
    m = validate(as_latent_model(Big()), X8)
    calls.clear()
    stats = an.evaluate(m, torch.rand(30, 1, 4, 4).numpy(), iw_samples=8)
    assert max(calls) <= 40 and sum(calls) == 30 + 30 * 8
    assert np.isfinite(stats["log_px_iw"])


def test_encode_and_decode_batches_shrink_for_large_images(monkeypatch):
    from latentlab.core.inference import analysis as an

    class Counting(Tiny):
        def encode(self, x):
            sizes.append(len(x))
            return super().encode(x)

    sizes = []
    monkeypatch.setattr(an, "DECODE_BUDGET", 16 * 7)
    m = validate(as_latent_model(Counting().double()), X8)
    sizes.clear()
    mu, _ = an.encode(m, torch.rand(20, 1, 4, 4).numpy())
    assert max(sizes) == 7 and sum(sizes) == 20 and mu.dtype == np.float32
    assert an.decode(m, mu).dtype == np.float32
