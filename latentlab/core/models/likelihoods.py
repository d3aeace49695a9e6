"""Decoder likelihoods for models that do not bring their own, and the check that the one in effect
fits what the decoder puts out.

`Likelihood` reads the decoder's output as Bernoulli logits, Bernoulli probabilities or Gaussian
means with a fixed scale; log p(x|z) is reported in nats for latentlab's [0, 1] pixels whatever the
model's own input range. `likelihood_mismatch` looks at one decoded batch: outputs that all lie in
[0, 1] (probabilities) or in [−1, 1] with negatives (a Tanh range) are not what Bernoulli logits
look like, and a number computed that way would be wrong without a word, so it names the
`--likelihood` that fits instead.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from latentlab.core.errors import ModelError

LOG_2PI = math.log(2 * math.pi)
LIKELIHOOD_FORMS = "bernoulli, bernoulli-probs, gaussian or gaussian:SIGMA"
DEFAULT_SIGMA = 0.1



class Likelihood:
    """A decoder likelihood on the model's output scale, reported in nats for [0, 1] pixels.

    bernoulli: outputs are logits; bernoulli-probs: outputs are probabilities in [0, 1];
    gaussian:SIGMA: outputs are means with a fixed scale SIGMA (in [0, 1] pixel units)."""

    def __init__(self, kind: str, sigma: float = DEFAULT_SIGMA):
        self.kind, self.sigma = kind, float(sigma)

    @classmethod
    def parse(cls, text: str) -> Likelihood:
        text = str(text).strip().lower()
        if text in ("bernoulli", "bernoulli-probs"):
            return cls(text)
        if text == "gaussian" or text.startswith("gaussian:"):
            sigma = DEFAULT_SIGMA
            if ":" in text:
                try:
                    sigma = float(text.split(":", 1)[1])
                except ValueError:
                    sigma = math.nan
            if not (math.isfinite(sigma) and sigma > 0):
                raise ModelError(f"The Gaussian likelihood needs a positive SIGMA, as in gaussian:0.1, not {text!r}.")
            return cls("gaussian", sigma)
        raise ModelError(f"Unknown likelihood {text!r}; use {LIKELIHOOD_FORMS}.")

    def __str__(self) -> str:
        return f"gaussian:{self.sigma:g}" if self.kind == "gaussian" else self.kind

    def log_prob(self, model, x01: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        x01 = x01.expand_as(params)
        if self.kind == "bernoulli":
            return -F.binary_cross_entropy_with_logits(params, x01, reduction="none").flatten(1).sum(1)
        if self.kind == "bernoulli-probs":  # probabilities whatever the model's input range
            p = params.clamp(1e-6, 1 - 1e-6)
            return (x01 * torch.log(p) + (1 - x01) * torch.log1p(-p)).flatten(1).sum(1)
        # Gaussian on [0, 1] pixels: the mean mapped back from the model's range, so densities are
        # per unit of latentlab's pixel scale and comparable across models.
        sq = ((x01 - model.from_model(params)) / self.sigma).square().flatten(1).sum(1)
        n = params[0].numel()
        return -0.5 * sq - n * (math.log(self.sigma) + 0.5 * LOG_2PI)

    def mean(self, model, params: torch.Tensor) -> torch.Tensor:
        if self.kind == "bernoulli":
            return torch.sigmoid(params)
        if self.kind == "bernoulli-probs":
            return params.clamp(0.0, 1.0)
        return model.from_model(params).clamp(0.0, 1.0)


def resolve_likelihood(override, model_attr, default: str = "bernoulli") -> Likelihood | None:
    """The likelihood in effect: the explicit override, else the model's own `likelihood` attribute,
    else the default (None when the model computes log p(x|z) itself and no override is given)."""
    if override is not None:
        return override if isinstance(override, Likelihood) else Likelihood.parse(override)
    if model_attr is not None:
        return model_attr if isinstance(model_attr, Likelihood) else Likelihood.parse(model_attr)
    return Likelihood.parse(default) if default else None


@torch.no_grad()
def likelihood_mismatch(likelihood: Likelihood | None, x01: torch.Tensor, params: torch.Tensor,
                        *, chosen: bool = False, last_layer: str = "") -> str:
    """One sentence when the decoder's outputs `params` on images `x01` (in [0, 1]) do not look like
    what `likelihood` reads, naming the `--likelihood` that fits; '' when they do. `chosen`: the user
    named this likelihood, so only the data's own range is checked. `last_layer`: the class name of
    the model's last layer ("Tanh", "Sigmoid"), evidence besides the values: an untrained decoder's
    logits are small too, and only a Tanh layer (or outputs pressed against ±1) tells them apart."""
    if likelihood is None or likelihood.kind != "bernoulli" or not params.is_floating_point():
        return ""
    lo, hi = float(x01.min()), float(x01.max())
    if lo < 0.0 or hi > 1.0:
        return (f"The data lies in [{lo:.3g}, {hi:.3g}], outside [0, 1], so a Bernoulli likelihood does not fit it; "
                "pass --likelihood gaussian:SIGMA")
    if chosen or params.numel() < 16:
        return ""
    plo, phi = float(params.min()), float(params.max())
    tanh = (f"Decoder outputs in [-1, 1], a Tanh range ({plo:.2g} to {phi:.2g}), "
            "are read as Bernoulli logits, so reconstruction and ELBO would be wrong; pass --likelihood gaussian:SIGMA "
            "(e.g. gaussian:0.1)")
    within = plo >= -1.0 and phi <= 1.0
    if within and last_layer == "Tanh":
        return tanh
    if plo >= 0.0 and phi <= 1.0:
        return (f"Decoder outputs all in [0, 1] ({plo:.2g} to {phi:.2g}), like probabilities, are read as Bernoulli "
                "logits, so reconstruction and ELBO would be wrong; pass --likelihood bernoulli-probs (or gaussian:SIGMA "
                "for a squared-error decoder)")
    if within and max(-plo, phi) >= 0.99:   # pressed against ±1: saturating, as only a Tanh does
        return tanh
    return ""


def last_layer(net: torch.nn.Module) -> str:
    """The class name of the last leaf module a network registers (its output layer, in the usual
    order of a constructor), or ''."""
    last = ""
    for m in net.modules():
        if next(m.children(), None) is None:
            last = type(m).__name__
    return last
