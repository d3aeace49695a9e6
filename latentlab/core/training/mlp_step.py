"""The gradient of latentlab's MLP VAE, written out: one training step's forward and backward pass
without autograd.

Through autograd a step of the 784-400-20 model at batch 128 is about 370 ATen calls, and on a CPU
the framework's work per call (dispatch, Python bindings, allocation, the graph) cost about as much
as everything but the matrix products; with two threads it is a third of the step. Written out, the
same step is about 60 calls: the same matrix products (weight gradients straight into persistent
`.grad` buffers), the ELBO's terms and their derivatives in closed form. The maths is the one
`core.inference.objectives.elbo_terms` and `kl_penalty` define, so losses and weights agree with
the autograd step to float32 rounding (tests/core/training/test_mlp_step.py checks it after many
steps). Only this exact architecture takes this path: `for_model` says None for anything else
(conv layers, a user's model, a model wrapped for several processes), which steps through autograd.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from latentlab.core.models.vae import VAE

LOG_2PI = math.log(2 * math.pi)
# VAE.log_likelihood clamps the Gaussian's log σ to this range.
LOG_SIGMA_RANGE = (-7.0, 2.0)


# The step below is the gradient of exactly these; a model whose own are replaced (on the class or the
# instance: a wrapper, an instrumented copy) steps through autograd, which follows whatever runs.
_WRITTEN_OUT = {name: getattr(VAE, name) for name in ("encode", "decode", "log_likelihood")}


def for_model(model, free_bits: float):
    """The written-out step for `model`, or None when it must step through autograd."""
    if type(model) is not VAE or model.cfg.arch != "mlp" or model.cfg.likelihood not in ("bernoulli", "gaussian"):
        return None
    if any(getattr(VAE, name) is not fn or name in vars(model) for name, fn in _WRITTEN_OUT.items()):
        return None
    params = list(model.parameters())
    first = params[0]
    if any(p.dtype != torch.float32 or p.device != first.device or not p.requires_grad for p in params):
        return None
    return MlpStep(model, free_bits)


def _linears(seq: nn.Sequential) -> list[nn.Linear]:
    return [m for m in seq if isinstance(m, nn.Linear)]


class MlpStep:
    """step(x, eps, beta) -> (reconstruction NLL per example (B,), KL per example and dimension (B, K)),
    with every parameter's gradient of rec.mean() + beta · kl_penalty(kl, free_bits) left in its .grad."""

    def __init__(self, model: VAE, free_bits: float):
        self.model = model
        self.free_bits = float(free_bits)
        self.encoder = [*_linears(model.encoder), model.enc_out]
        self.decoder = [*_linears(model.decoder), model.dec_out]
        self.k = model.latent_dim
        self.lo, self.hi = model.cfg.logvar_min, model.cfg.logvar_max
        self.gaussian = model.cfg.likelihood == "gaussian"
        for p in model.parameters():   # persistent buffers: each step writes every gradient in place
            p.grad = torch.zeros_like(p)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, eps: torch.Tensor, beta: float):
        batch, k = x.shape[0], self.k
        x = x.reshape(batch, -1)
        # forward, keeping each layer's input for its weight gradient
        enc_in = [x]
        h = x
        for lin in self.encoder[:-1]:
            h = torch.addmm(lin.bias, h, lin.weight.t()).relu_()
            enc_in.append(h)
        out = self.encoder[-1]
        stats = torch.addmm(out.bias, h, out.weight.t())
        mu, raw_logvar = stats[:, :k], stats[:, k:]
        logvar = raw_logvar.clamp(self.lo, self.hi)
        std = torch.exp(0.5 * logvar)
        z = torch.addcmul(mu, std, eps)
        dec_in = [z]
        d = z
        for lin in self.decoder[:-1]:
            d = torch.addmm(lin.bias, d, lin.weight.t()).relu_()
            dec_in.append(d)
        out = self.decoder[-1]
        params = torch.addmm(out.bias, d, out.weight.t())

        # the ELBO's terms and the loss's gradient with respect to the decoder's output
        if self.gaussian:
            rec, grad = self._gaussian(x, params, batch)
        else:
            # Bernoulli logits: -log p(x|z) = softplus(l) - x·l per pixel; d/dl = sigmoid(l) - x
            rec = F.softplus(params).sum(1) - torch.linalg.vecdot(x, params)
            grad = torch.sigmoid(params).sub_(x).mul_(1.0 / batch)
        var = torch.exp(logvar)
        kl = 0.5 * (var + mu * mu - 1.0 - logvar)

        # backward through the decoder, down to z
        for lin, inp in zip(reversed(self.decoder), reversed(dec_in)):
            torch.mm(grad.t(), inp, out=lin.weight.grad)
            torch.sum(grad, 0, out=lin.bias.grad)
            grad = grad.mm(lin.weight)
            if inp is not z:
                grad = torch.ops.aten.threshold_backward(grad, inp, 0)
        # z = mu + std·eps, plus the KL penalty's own gradient (β / B per example, none for a dimension
        # held at its free-bits floor)
        scale = beta / batch
        if self.free_bits > 0:
            scale = scale * (kl.mean(0) >= self.free_bits)   # clamp's gradient mask
        g_mu = grad + scale * mu
        g_logvar = grad.mul_(eps).mul_(0.5 * std).add_(0.5 * scale * (var - 1.0))
        g_logvar = torch.where((raw_logvar >= self.lo) & (raw_logvar <= self.hi), g_logvar, 0.0)
        grad = torch.cat((g_mu, g_logvar), 1)
        # backward through the encoder; the data needs no gradient
        for lin, inp in zip(reversed(self.encoder), reversed(enc_in)):
            torch.mm(grad.t(), inp, out=lin.weight.grad)
            torch.sum(grad, 0, out=lin.bias.grad)
            if inp is not x:
                grad = torch.ops.aten.threshold_backward(grad.mm(lin.weight), inp, 0)
        return rec, kl

    def _gaussian(self, x, params, batch):
        """-log N(x; params, σ²) summed over pixels, and its gradient with respect to params (log σ's
        own gradient goes to its .grad)."""
        log_sigma = self.model.log_sigma
        ls = log_sigma.clamp(*LOG_SIGMA_RANGE)
        diff = x - params
        inv_var = torch.exp(-2.0 * ls)
        sq = diff.square().sum(1) * inv_var
        n = params.shape[1]
        rec = 0.5 * sq + n * (ls + 0.5 * LOG_2PI)
        inside = (log_sigma >= LOG_SIGMA_RANGE[0]) & (log_sigma <= LOG_SIGMA_RANGE[1])
        log_sigma.grad.copy_((n - sq.mean()) * inside)
        return rec, diff.mul_(inv_var * (-1.0 / batch))
