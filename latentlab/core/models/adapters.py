"""The VAE protocol every view and core function talks to, and the wrapper for a user's model.

A `LatentModel` is an nn.Module with this surface (all tensors on the model's device):

    encode(x)              x (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, K), flat
    decode(z)              z (B, K) -> likelihood parameters (whatever log_likelihood reads)
    log_likelihood(x, p)   log p(x | z) summed over pixels, (B,), in nats for x in [0, 1]
    mean_image(p)          E[x | z] as (B, C, H, W) in [0, 1], for display
    latent_dim             K = prod(latent_shape)
    latent_shape           the model's own latent shape (a diffusers VAE: (C, h, w))
    image_shape            (C, H, W) of the images it reads
    input_range            (lo, hi) the model's own pixel range; `to_model` maps [0, 1] onto it
    trainable              whether latentlab may fine-tune a copy of it
    describe()             one short line for labels and reports
    weights_module()       the module whose state_dict is the user's weights file

Every method takes latentlab's [0, 1] images and flat latents: scaling and reshaping happen inside
the adapter, so analysis, training, the posterior inspector and the GUI have one code path for
latentlab's own VAE (which is a LatentModel), a user's nn.Module (`TorchVAE`) and a diffusers
AutoencoderKL (`diffusers_adapter.DiffusersVAE`). `copy()` gives an independent copy for worker
threads and fine-tuning; `state_dict()` / `load_state_dict()` are nn.Module's.

A user who needs more than duck typing subclasses `LatentModel` directly and returns an instance
from their `PATH.py:NAME` callable (examples/ has one).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from latentlab.core.errors import ModelError

from .user_outputs import decoder_tensor, image_shape_of, kind_of, one_line, posterior_params, real_values, user_error

__all__ = ["LatentModel", "Likelihood", "TorchVAE", "as_latent_model", "decoder_tensor", "one_line",
           "posterior_params", "real_values", "resolve_likelihood", "validate"]

LOG_2PI = math.log(2 * math.pi)
LIKELIHOOD_FORMS = "bernoulli, bernoulli-probs, gaussian or gaussian:SIGMA"
DEFAULT_SIGMA = 0.1


class LatentModel(nn.Module):
    """Base class of every model latentlab explores; see the module docstring for the contract."""

    input_range: tuple[float, float] = (0.0, 1.0)
    trainable: bool = True
    latent_shape: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] | None = None
    # True when the latent and image shapes are learned from the data by `validate`.
    learns_shapes: bool = False

    @property
    def latent_dim(self) -> int:
        return math.prod(self.latent_shape)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the model's own input range."""
        lo, hi = self.input_range
        return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own pixel range -> [0, 1]."""
        lo, hi = self.input_range
        return x if (lo, hi) == (0.0, 1.0) else (x - lo) / (hi - lo)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{type(self).__name__} (K = {self.latent_dim})"

    def weights_module(self) -> nn.Module:
        return self

    def copy(self) -> LatentModel:
        return copy.deepcopy(self)

    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


# --------------------------------------------------------------------------------------------
# likelihoods for models that do not bring their own

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

    def log_prob(self, model: LatentModel, x01: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
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

    def mean(self, model: LatentModel, params: torch.Tensor) -> torch.Tensor:
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


# --------------------------------------------------------------------------------------------
# a user's nn.Module, by duck typing

class TorchVAE(LatentModel):
    """Any nn.Module with encode(x) and decode(z), as described in the README.

    Shapes are learned from one batch by `validate` (the model's own `image_shape` attribute, if it
    has one, is checked against the data there)."""

    def __init__(self, net: nn.Module, *, likelihood=None, name: str = ""):
        super().__init__()
        for method in ("encode", "decode"):
            if not callable(getattr(net, method, None)):
                raise ModelError(f"{name or type(net).__name__} has no {method}() method, so it is not a VAE "
                                 "latentlab can open (it needs encode(x) and decode(z)).")
        self.net = net
        self.learns_shapes = True
        self.name = name or type(net).__name__
        self.input_range = _range(getattr(net, "input_range", (0.0, 1.0)), self.name)
        self.declared_image_shape = image_shape_of(getattr(net, "image_shape", None), self.name)
        # The model's own log p(x|z) wins unless the caller names a likelihood.
        self.own_log_lik = callable(getattr(net, "log_likelihood", None)) and likelihood is None
        attr = getattr(net, "likelihood", None)
        attr = attr if isinstance(attr, (str, Likelihood)) else None
        self.likelihood = resolve_likelihood(likelihood, attr)
        self.trainable = any(p.requires_grad for p in net.parameters())

    def _as_net_dtype(self, t: torch.Tensor) -> torch.Tensor:
        """latentlab's float32 images and codes in the dtype of the user's weights (e.g. float64)."""
        p = next(self.net.parameters(), None)
        return t.to(p.dtype) if p is not None and p.is_floating_point() and t.dtype != p.dtype else t

    def _user(self, method: str, t: torch.Tensor, doing: str, fn):
        """Call into the user's code: whatever it raises (SystemExit included) becomes one sentence
        naming the method, the batch size and the first line of its message. Running out of memory
        stays what it is (training keeps its last good weights on it)."""
        try:
            return fn()
        except (ModelError, MemoryError, torch.OutOfMemoryError):
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code can raise anything
            raise ModelError(user_error(f"{self.name}.{method}", len(t), doing, exc)) from None

    def encode(self, x):
        x = self._as_net_dtype(x)
        where = f"{self.name}.encode(x)"
        mu, lv = self._user("encode(x)", x, f"encoding images of shape {tuple(x.shape[1:])}",
                            lambda: posterior_params(self.net.encode(self.to_model(x)), where))
        if mu.dim() < 2 or mu.shape != lv.shape:
            raise ModelError(f"{self.name}.encode(x) gave a mean of shape {tuple(mu.shape)} and a log-variance of "
                             f"shape {tuple(lv.shape)}; expected two tensors of the same shape (B, K) or (B, C, h, w).")
        if not self.latent_shape:
            self.latent_shape = tuple(mu.shape[1:])
        return mu.flatten(1), lv.flatten(1)

    def decode(self, z):
        z = self._as_net_dtype(z).reshape(z.shape[0], *self.latent_shape)
        out = self._user("decode(z)", z, "decoding latent codes",
                         lambda: decoder_tensor(self.net.decode(z), f"{self.name}.decode(z)"))
        if self.image_shape is not None:
            c, h, w = self.image_shape
            if out.shape[1:] == (c * h * w,):
                out = out.view(-1, c, h, w)
            elif tuple(out.shape[1:]) != (c, h, w):
                raise ModelError(f"{self.name}.decode(z) returned shape {tuple(out.shape)}; expected "
                                 f"({out.shape[0]}, {c}, {h}, {w}) or flat ({out.shape[0]}, {c * h * w}) "
                                 "to match the images.")
        return out

    def log_likelihood(self, x, params):
        if self.own_log_lik:
            return self._user("log_likelihood(x, params)", x, "computing log p(x|z)", lambda: self.net.log_likelihood(
                self.to_model(self._as_net_dtype(x)).expand_as(params), params))
        return self.likelihood.log_prob(self, self._as_net_dtype(x), params)

    def mean_image(self, params):
        own = getattr(self.net, "mean_image", None)
        if callable(own):
            return self._user("mean_image(params)", params, "computing the mean image",
                              lambda: real_values(own(params), f"{self.name}.mean_image(params)")).clamp(0.0, 1.0)
        return self.likelihood.mean(self, params)

    def describe(self) -> str:
        lik = "its own log_likelihood" if self.own_log_lik else str(self.likelihood)
        return f"{self.name} (K = {self.latent_dim}, {lik})"

    def weights_module(self) -> nn.Module:
        return self.net


def _range(value, name) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ModelError(f"{name}.input_range must be two numbers (lo, hi), not {value!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ModelError(f"{name}.input_range must be (lo, hi) with hi > lo, not {value!r}.")
    return lo, hi


def as_latent_model(obj, *, likelihood=None, name: str = "") -> LatentModel:
    """A LatentModel for whatever the user handed over: a LatentModel as is, a VAE nn.Module wrapped."""
    if isinstance(obj, LatentModel):
        if likelihood is not None:
            if not hasattr(obj, "likelihood") or not isinstance(obj.likelihood, Likelihood):
                raise ModelError(f"{obj.describe()} sets its own likelihood, which a likelihood override cannot change.")
            obj.likelihood = Likelihood.parse(likelihood) if isinstance(likelihood, str) else likelihood
        return obj
    if isinstance(obj, nn.Module):
        return TorchVAE(obj, likelihood=likelihood, name=name)
    raise ModelError(f"{name or 'The model'} is {kind_of(obj)}, not a torch nn.Module with encode() and decode().")


# --------------------------------------------------------------------------------------------
# the one check on a batch of data

@torch.no_grad()
def validate(model: LatentModel, x_batch) -> LatentModel:
    """Run the model once on a few images (C, H, W in [0, 1]) and check every output's type,
    shape and finiteness; fills in latent_shape and image_shape. Raises ModelError with one sentence."""
    x = torch.as_tensor(x_batch[:4]).float() if not isinstance(x_batch, torch.Tensor) else x_batch[:4].float()
    if x.dim() != 4 or len(x) == 0:
        raise ModelError(f"validate needs a batch of images (B, C, H, W), got shape {tuple(x.shape)}.")
    shape = tuple(x.shape[1:])
    name = model.describe() if model.latent_shape else type(model).__name__
    declared = getattr(model, "declared_image_shape", None) if model.learns_shapes else model.image_shape
    if declared is not None and tuple(declared) != shape:
        raise ModelError(f"{name} expects images of shape {tuple(declared)}, but the data has {shape}.")
    x = x.to(model.device())
    was_training = model.training
    model.eval()
    try:
        if model.learns_shapes:
            model.image_shape, model.latent_shape = shape, ()
        mu, lv = _call(lambda: model.encode(x), f"encoding images of shape {shape}")
        if mu.shape != (len(x), model.latent_dim) or lv.shape != mu.shape:
            raise ModelError(f"encode(x) gave shapes {tuple(mu.shape)} and {tuple(lv.shape)}; expected "
                             f"({len(x)}, {model.latent_dim}) each.")
        _finite(mu, "encode(x)'s mean")
        _finite(lv, "encode(x)'s log-variance")
        params = _call(lambda: model.decode(mu), "decoding the encoded images")
        if params.shape[0] != len(x):
            raise ModelError(f"decode(z) returned {params.shape[0]} outputs for {len(x)} codes.")
        _finite(params, "decode(z)")
        img = model.mean_image(params)
        if tuple(img.shape) != (len(x), *shape):
            raise ModelError(f"The decoded images have shape {tuple(img.shape[1:])}, but the data's images are {shape}.")
        ll = _call(lambda: model.log_likelihood(x, params), "computing log p(x|z)")
        if not isinstance(ll, torch.Tensor) or ll.shape != (len(x),):
            got = tuple(ll.shape) if isinstance(ll, torch.Tensor) else type(ll).__name__
            raise ModelError(f"log_likelihood(x, params) returned {got}; expected one value per image, ({len(x)},).")
        _finite(ll, "log p(x|z)")
    finally:
        model.train(was_training)
    return model


def _call(fn, doing: str):
    try:
        return fn()
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code can raise anything: one sentence says what
        raise ModelError(f"The model failed while {doing}: {type(exc).__name__}: {one_line(exc)}.") from None


def _finite(t: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ModelError(f"{what} has NaN or infinite values on the data's first images.")
