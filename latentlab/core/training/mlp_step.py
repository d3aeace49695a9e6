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

import functools
import math

import torch
from torch import nn

from latentlab.core.models.vae import VAE

LOG_2PI = math.log(2 * math.pi)
# Pixels per product in the Bernoulli term: a product of this many numbers in [0.5, 1] stays a normal
# float32 (0.5^120 is 7.5e-37; the smallest normal is 1.2e-38).
PRODUCT_SPAN = 120
# VAE.log_likelihood clamps the Gaussian's log σ to this range.
LOG_SIGMA_RANGE = (-7.0, 2.0)


# The step below is the gradient of exactly these; a model whose own are replaced (on the class or the
# instance: a wrapper, an instrumented copy) steps through autograd, which follows whatever runs. Told
# by where the function was defined, not by identity with what the class held when this module was
# imported: this module is imported lazily, possibly after such a replacement.
_WRITTEN_OUT = ("encode", "decode", "log_likelihood")


def _own(name: str) -> bool:
    fn = getattr(VAE, name, None)
    return getattr(fn, "__module__", None) == VAE.__module__ and getattr(fn, "__qualname__", None) == f"VAE.{name}"


def for_model(model, free_bits: float):
    """The written-out step for `model`, or None when it must step through autograd."""
    if type(model) is not VAE or model.cfg.arch != "mlp" or model.cfg.likelihood not in ("bernoulli", "gaussian"):
        return None
    if any(not _own(name) or name in vars(model) for name in _WRITTEN_OUT):
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
        # (weight, bias) per layer, looked up once: Module attribute access costs on every step
        self.encoder = [(lin.weight, lin.bias) for lin in [*_linears(model.encoder), model.enc_out]]
        self.decoder = [(lin.weight, lin.bias) for lin in [*_linears(model.decoder), model.dec_out]]
        self.k = model.latent_dim
        self.lo, self.hi = model.cfg.logvar_min, model.cfg.logvar_max
        self.gaussian = model.cfg.likelihood == "gaussian"
        for p in model.parameters():   # persistent buffers: each step writes every gradient in place
            p.grad = torch.zeros_like(p)
        self._buffers: dict[int, list[torch.Tensor]] = {}

    def _outputs(self, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
        """One reused output per layer (and one for the encoder's gradient) for this batch size, so a
        step allocates little: fresh large tensors each step cost the allocator and page faults."""
        bufs = self._buffers.get(batch)
        if bufs is None:
            widths = [w.shape[0] for w, _ in (*self.encoder, *self.decoder)] + [2 * self.k]
            bufs = self._buffers[batch] = [like.new_empty((batch, n)) for n in widths]
            if len(self._buffers) > 2:   # a full batch and the last, shorter one
                self._buffers.pop(next(iter(self._buffers)))
        return bufs

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, eps: torch.Tensor, beta: float):
        batch, k = x.shape[0], self.k
        x = x.reshape(batch, -1)
        outs = iter(self._outputs(batch, x))
        # forward, keeping each layer's input for its weight gradient
        enc_in = [x]
        h = x
        for w, b in self.encoder[:-1]:
            h = torch.addmm(b, h, w.t(), out=next(outs)).relu_()
            enc_in.append(h)
        w, b = self.encoder[-1]
        stats = torch.addmm(b, h, w.t(), out=next(outs))
        mu, raw_logvar = stats[:, :k], stats[:, k:]
        logvar = raw_logvar.clamp(self.lo, self.hi)
        std = logvar.mul(0.5).exp_()
        z = torch.addcmul(mu, std, eps)
        dec_in = [z]
        d = z
        for w, b in self.decoder[:-1]:
            d = torch.addmm(b, d, w.t(), out=next(outs)).relu_()
            dec_in.append(d)
        w, b = self.decoder[-1]
        params = torch.addmm(b, d, w.t(), out=next(outs))

        # the ELBO's terms and the loss's gradient with respect to the decoder's output
        if self.gaussian:
            rec, grad = self._gaussian(x, params, batch)
        else:
            rec, grad = _bernoulli(x, params, batch)
        var = torch.exp(logvar)
        kl = torch.addcmul(var - logvar, mu, mu).sub_(1.0).mul_(0.5)   # 0.5·(σ² + μ² − 1 − log σ²)

        # backward through the decoder, down to z
        for (w, b), inp in zip(reversed(self.decoder), reversed(dec_in)):
            torch.mm(grad.t(), inp, out=w.grad)
            torch.sum(grad, 0, out=b.grad)
            grad = grad.mm(w)
            if inp is not z:
                grad = torch.ops.aten.threshold_backward(grad, inp, 0)
        # z = mu + σ·ε and the KL penalty's own gradient, β / B per example (none for a dimension
        # held at its free-bits floor), into one (B, 2K) gradient of the encoder's output
        g = next(outs)
        g_mu, g_logvar = g[:, :k], g[:, k:]
        scale = beta / batch
        if self.free_bits > 0:
            scale = (kl.mean(0) >= self.free_bits).to(mu.dtype).mul_(scale)   # clamp's gradient mask
            torch.addcmul(grad, scale, mu, out=g_mu)
            kl_grad = (var - 1.0).mul_(scale).mul_(0.5)
        else:
            torch.add(grad, mu, alpha=scale, out=g_mu)
            kl_grad = (var - 1.0).mul_(0.5 * scale)
        torch.addcmul(kl_grad, grad.mul_(eps), std, value=0.5, out=g_logvar)
        g_logvar.masked_fill_(raw_logvar != logvar, 0.0)   # the clamp passes no gradient where it held
        grad = g
        # backward through the encoder; the data needs no gradient
        for (w, b), inp in zip(reversed(self.encoder), reversed(enc_in)):
            torch.mm(grad.t(), inp, out=w.grad)
            torch.sum(grad, 0, out=b.grad)
            if inp is not x:
                grad = torch.ops.aten.threshold_backward(grad.mm(w), inp, 0)
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


@functools.lru_cache(maxsize=16)   # asked on every step, for the few image sizes a process trains on
def _product_span(d: int) -> int:
    """The largest divisor of d up to PRODUCT_SPAN: pixels multiplied together before one logarithm."""
    return next(c for c in range(min(d, PRODUCT_SPAN), 0, -1) if d % c == 0)


def _bernoulli(x, logits, batch):
    """-log Bernoulli(x; sigmoid(l)) summed over pixels, (B,), and its gradient with respect to the
    logits, divided by the batch (computed in place of `logits`).

    Per pixel the term is softplus(l) - x·l = relu(l) - x·l - log sigmoid(|l|), and sigmoid(|l|) is
    max(s, 1 - s) for the s = sigmoid(l) the gradient needs anyway. So the step takes no softplus
    (an exp and a log1p per pixel, the costliest element-wise work of the step): it multiplies those
    maxima in runs of up to PRODUCT_SPAN pixels and takes one logarithm per run. Each pixel's term is
    then exact to about 6e-8 nats (float32's spacing at 1), far inside the rounding of a sum of
    hundreds of pixels; the gradient, sigmoid(l) - x, is what it always was."""
    rec = torch.clamp_min(logits, 0.0).sum(1).sub_(torch.linalg.vecdot(x, logits))
    s = torch.sigmoid(logits, out=logits)
    peak = torch.maximum(torch.rsub(s, 1.0), s)
    span = _product_span(peak.shape[1])
    rec.sub_(peak.view(batch, -1, span).prod(2).log_().sum(1))
    return rec, s.sub_(x).mul_(1.0 / batch)
