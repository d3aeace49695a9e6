"""The MLP VAE's written-out training step and the fused Adam call give what autograd and
torch.optim.Adam give: the same losses and weights after many steps, to float32 rounding."""

import numpy as np
import pytest
import torch

from latentlab.core.data.specs import load_dataset
from latentlab.core.inference.objectives import elbo_terms, kl_penalty
from latentlab.core.models import vae as vae_mod
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training import mlp_step
from latentlab.core.training.adam import FusedAdam, adam
from latentlab.core.training.loop import train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def trained(data, model_cfg, train_cfg, written: bool, monkeypatch):
    model = build_model(model_cfg, seed=0)
    with monkeypatch.context() as m:
        if not written:
            m.setattr(mlp_step, "for_model", lambda *_: None)
        snaps = list(train(model, data, train_cfg))
    assert snaps[-1].error is None
    return snaps, model


CASES = [
    # likelihood, hidden widths, β, free bits, warm-up steps, log-variance bounds
    ("bernoulli", (64,), 1.0, 0.0, 0, (-12.0, 6.0)),
    ("bernoulli", (48, 24), 4.0, 0.3, 7, (-12.0, 6.0)),
    ("bernoulli", (32,), 0.5, 0.0, 0, (-0.2, 0.2)),   # the clamp holds most log-variances
    ("gaussian", (64,), 1.0, 0.0, 0, (-12.0, 6.0)),
    ("gaussian", (40, 20, 10), 2.0, 0.2, 5, (-1.0, 0.5)),
]


@pytest.mark.parametrize("likelihood, hidden, beta, free_bits, warmup, bounds", CASES)
def test_written_out_step_trains_as_autograd_does(digits, monkeypatch, likelihood, hidden, beta, free_bits, warmup,
                                                  bounds):
    model_cfg = ModelConfig(image_shape=digits.image_shape, latent_dim=3, hidden=hidden, likelihood=likelihood,
                            logvar_min=bounds[0], logvar_max=bounds[1])
    train_cfg = TrainConfig(epochs=3, batch_size=100, lr=2e-3, beta=beta, free_bits=free_bits, warmup_steps=warmup,
                            seed=3, device="cpu", scatter_points=0, snapshot_every=4)
    assert mlp_step.for_model(build_model(model_cfg), free_bits) is not None
    fast, fast_model = trained(digits, model_cfg, train_cfg, True, monkeypatch)
    slow, slow_model = trained(digits, model_cfg, train_cfg, False, monkeypatch)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):   # every snapshot's window of losses, and every epoch's test pass
        np.testing.assert_allclose([a.recon, a.kl], [b.recon, b.kl], rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(a.kl_per_dim, b.kl_per_dim, rtol=2e-5, atol=1e-5)
    for a, b in zip(fast[-1].history, slow[-1].history):
        for key in ("recon", "kl", "test_recon", "test_kl"):
            assert a[key] == pytest.approx(b[key], rel=2e-5, abs=1e-5), key
    for (name, p), q in zip(fast_model.state_dict().items(), slow_model.state_dict().values()):
        scale = float(q.abs().max()) + 1e-3
        assert float((p - q).abs().max()) <= 2e-4 * scale, name
        assert not torch.equal(p, build_model(model_cfg, seed=0).state_dict()[name]), name   # it did train


def test_one_step_gradients_match_autograd(digits):
    """Before Adam: each parameter's gradient of the loss, and the loss terms, for one batch."""
    cfg = ModelConfig(image_shape=digits.image_shape, latent_dim=4, hidden=(32, 16), likelihood="gaussian",
                      logvar_min=-0.5, logvar_max=0.5)
    x = torch.from_numpy(digits.x_train[:64])
    eps = torch.randn((64, 4), generator=torch.Generator().manual_seed(0))
    auto, written = build_model(cfg, seed=1), build_model(cfg, seed=1)
    with torch.no_grad():
        written.log_sigma.fill_(2.5)   # above its clamp: no gradient reaches it either way
        auto.log_sigma.fill_(2.5)
    terms = elbo_terms(auto, x, eps)
    rec, kl = terms.rec, terms.kl_dim
    (rec.mean() + 2.5 * kl_penalty(kl, 0.1)).backward()
    rec2, kl2 = mlp_step.for_model(written, 0.1)(x, eps, 2.5)
    torch.testing.assert_close(rec2, rec.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(kl2, kl.detach(), rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(written.named_parameters(), auto.parameters()):
        # float32 sums over the batch in another order: equal to a few units in the last place of
        # the tensor's largest entries
        assert float((p.grad - q.grad).abs().max()) <= 1e-5 * (float(q.grad.abs().max()) + 1e-6), name
    assert float(written.log_sigma.grad) == 0.0


def test_other_models_step_through_autograd(digits, monkeypatch):
    mlp = ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,))
    assert mlp_step.for_model(build_model(mlp), 0.0) is not None
    conv = ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,), arch="conv", conv_channels=(4,))
    assert mlp_step.for_model(build_model(conv), 0.0) is None

    class Wrapped(vae_mod.VAE):
        pass

    assert mlp_step.for_model(Wrapped(mlp), 0.0) is None
    patched = build_model(mlp)
    patched.decode = lambda z: vae_mod.VAE.decode(patched, z)   # an instrumented instance
    assert mlp_step.for_model(patched, 0.0) is None
    monkeypatch.setattr(vae_mod.VAE, "log_likelihood", lambda self, x, p: vae_mod.VAE.log_likelihood(self, x, p))
    assert mlp_step.for_model(build_model(mlp), 0.0) is None
    assert mlp_step.for_model(build_model(mlp).double(), 0.0) is None


def test_fused_adam_gives_torch_optim_adams_weights_bit_for_bit():
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    frozen = [torch.nn.Parameter(torch.ones(2)) for _ in range(2)]   # never gets a gradient: no state, no change
    opts = [torch.optim.Adam([*nets[0].parameters(), frozen[0]], lr=3e-3, fused=True),
            FusedAdam([*nets[1].parameters(), frozen[1]], lr=3e-3)]
    assert isinstance(adam(list(nets[1].parameters()), 1e-3), FusedAdam)
    x = torch.randn(32, 7)
    for step in range(25):
        for net, opt in zip(nets, opts):
            for p in net.parameters():
                p.grad = None
            net(x * (1 + step)).square().mean().backward()
            if step < 5:   # the last layer's bias joins late: its moments start when its gradient does
                net[2].bias.grad = None
            if 10 <= step < 13 or step == 20:   # the first layer's weight skips steps: its count stops
                net[0].weight.grad = None
            opt.step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)
    assert torch.equal(frozen[1], torch.ones(2))


@pytest.mark.parametrize("pixels", [784, 127, 3 * 32 * 32])   # 127 is prime: runs of one pixel
def test_bernoulli_term_is_softplus_to_float32_rounding(pixels):
    """The step's Bernoulli NLL (no softplus: a log per run of pixels) against float64 softplus, for
    logits from ±0.1 to ±300: overflowed sigmoids, saturated pixels and all."""
    g = torch.Generator().manual_seed(0)
    for scale in (0.1, 4.0, 30.0, 300.0):
        logits = torch.randn(64, pixels, generator=g) * scale
        x = torch.rand(64, pixels, generator=g).round_() if scale > 10 else torch.rand(64, pixels, generator=g)
        ref = (torch.nn.functional.softplus(logits.double()) - x.double() * logits.double()).sum(1)
        rec, grad = mlp_step._bernoulli(x, logits.clone(), 64)
        assert torch.isfinite(rec).all()
        # float32 sums of this many terms of this size: a few units in the last place of the total
        tol = 4 * pixels ** 0.5 * torch.finfo(torch.float32).eps * ref.abs().max().item() + 1e-4
        assert float((rec.double() - ref).abs().max()) <= tol, scale
        torch.testing.assert_close(grad, (torch.sigmoid(logits) - x) / 64, rtol=0, atol=0)
