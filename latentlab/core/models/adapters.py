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

from latentlab.core.errors import ModelError, with_cause

from .likelihoods import LIKELIHOOD_FORMS, Likelihood, last_layer, likelihood_mismatch, resolve_likelihood
from .priors import Prior, declared_prior, standard_normal
from .user_outputs import decoder_tensor, deterministic_code, image_shape_of, kind_of, one_line, posterior_params, real_values, user_error

__all__ = ["LIKELIHOOD_FORMS", "POINT_LOGVAR", "LatentModel", "Likelihood", "TorchVAE", "as_latent_model",
           "decoder_tensor", "likelihood_mismatch", "one_line", "posterior_params", "real_values",
           "resolve_likelihood", "standard_strides", "validate"]

# A deterministic autoencoder's code is a point: the views that draw q(z|x) see it as a Gaussian this
# narrow, and every number that needs a real q(z|x) (ELBO, KL, IWAE) is refused for it.
POINT_LOGVAR = -18.0


class LatentModel(nn.Module):
    """Base class of every model latentlab explores; see the module docstring for the contract."""

    input_range: tuple[float, float] = (0.0, 1.0)
    trainable: bool = True
    latent_shape: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] | None = None
    # True when the latent and image shapes are learned from the data by `validate`.
    learns_shapes: bool = False
    # True for an autoencoder whose encoder gives one code, not a distribution (no ELBO applies).
    deterministic: bool = False
    # One sentence from `validate` when the decoder's outputs do not look like what the likelihood reads.
    likelihood_note: str = ""

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

    def latent_prior(self) -> Prior:
        """p(z): the one the model declares (a `prior` distribution or `log_prior(z)`), else N(0, I)
        marked as assumed (see core.models.priors)."""
        return declared_prior(self, self.latent_shape) or standard_normal(False)

    def notes(self) -> tuple[str, ...]:
        """Sentences every report of this model's numbers carries (an assumed prior, a deterministic
        encoder); empty when there is nothing to say."""
        out = [self.likelihood_note] if self.likelihood_note else []
        if self.deterministic:
            out.append(f"{self.display_name()} is a deterministic autoencoder (its encoder gives one code, not "
                       "q(z|x)), so the ELBO, KL and log p(x) do not apply; reconstruction is at the code")
        else:
            note = self.latent_prior().note()
            if note:
                out.append(note)
        return tuple(out)

    def display_name(self) -> str:
        return type(self).__name__

    def weights_module(self) -> nn.Module:
        return self

    def copy(self) -> LatentModel:
        return copy.deepcopy(self)

    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


# --------------------------------------------------------------------------------------------
# a user's nn.Module, by duck typing

class TorchVAE(LatentModel):
    """Any nn.Module with encode(x) and decode(z), as described in the README.

    Shapes are learned from one batch by `validate` (the model's own `image_shape` attribute, if it
    has one, is checked against the data there), and so is whether the encoder gives a distribution
    or one code (a deterministic autoencoder)."""

    def __init__(self, net: nn.Module, *, likelihood=None, name: str = ""):
        super().__init__()
        name = name or type(net).__name__
        for method in ("encode", "decode"):
            if not callable(getattr(net, method, None)):
                raise ModelError(_missing_method(net, name, method))
        self.net = net
        self.learns_shapes = True
        self.name = name
        self.input_range = _range(getattr(net, "input_range", (0.0, 1.0)), self.name)
        self.declared_image_shape = image_shape_of(getattr(net, "image_shape", None), self.name)
        # The model's own log p(x|z) wins unless the caller names a likelihood.
        self.own_log_lik = callable(getattr(net, "log_likelihood", None)) and likelihood is None
        attr = getattr(net, "likelihood", None)
        attr = attr if isinstance(attr, (str, Likelihood)) else None
        self.likelihood = resolve_likelihood(likelihood, attr)
        # Named by the user or the model: the mismatch check then questions only the data's range.
        self.likelihood_chosen = likelihood is not None or attr is not None
        self.trainable = any(p.requires_grad for p in net.parameters())
        self.deterministic = False
        self._encoder_kind: str | None = None   # "gaussian" or "point", fixed by the first encode
        self._prior_cache: tuple | None = None

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
        x = standard_strides(self._as_net_dtype(x))
        where = f"{self.name}.encode(x)"
        out = self._user("encode(x)", x, f"encoding images of shape {tuple(x.shape[1:])}",
                         lambda: self.net.encode(self.to_model(x)))
        if self._encoder_kind is None:
            self._encoder_kind = "point" if deterministic_code(out) is not None else "gaussian"
            self.deterministic = self._encoder_kind == "point"
            if self.deterministic:   # the ELBO latentlab trains with needs q(z|x)
                self.trainable = False
        if self.deterministic:
            mu = deterministic_code(out)
            if mu is None:
                raise ModelError(f"{where} returned a distribution this time, after one code the first time.")
            mu = real_values(mu, f"{where}'s code")
            lv = torch.full_like(mu, POINT_LOGVAR)
        else:
            mu, lv = posterior_params(out, where)
        if mu.dim() < 2 or mu.shape != lv.shape:
            raise ModelError(f"{where} gave a mean of shape {tuple(mu.shape)} and a log-variance of "
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
        x = standard_strides(self._as_net_dtype(x))
        if self.own_log_lik:
            return self._user("log_likelihood(x, params)", x, "computing log p(x|z)",
                              lambda: self.net.log_likelihood(self.to_model(x).expand_as(params), params))
        return self.likelihood.log_prob(self, x, params)

    def mean_image(self, params):
        own = getattr(self.net, "mean_image", None)
        if callable(own):
            return self._user("mean_image(params)", params, "computing the mean image",
                              lambda: real_values(own(params), f"{self.name}.mean_image(params)")).clamp(0.0, 1.0)
        return self.likelihood.mean(self, params)

    def latent_prior(self) -> Prior:
        # Kept while the declaration is the same object: the check for N(0, I) reads its tensors.
        key = (getattr(self.net, "prior", None), getattr(self.net, "log_prior", None), self.latent_shape)
        if self._prior_cache is None or any(a is not b for a, b in zip(self._prior_cache[0], key)):
            try:
                p = next(self.net.parameters(), None)
                dtype = p.dtype if p is not None and p.is_floating_point() else None
                prior = declared_prior(self.net, self.latent_shape, dtype) or standard_normal(False)
            except ValueError as exc:
                raise ModelError(f"{self.name}: {exc}.") from None
            self._prior_cache = (key, prior)
        return self._prior_cache[1]

    def display_name(self) -> str:
        return self.name

    def describe(self) -> str:
        lik = "its own log_likelihood" if self.own_log_lik else str(self.likelihood)
        kind = ", deterministic" if self.deterministic else ""
        return f"{self.name} (K = {self.latent_dim}, {lik}{kind})"

    def weights_module(self) -> nn.Module:
        return self.net


def _missing_method(net, name: str, method: str) -> str:
    halves = [h for h in ("encoder", "decoder") if callable(getattr(net, h, None))]
    if len(halves) == 2:
        return (f"{name} has .encoder and .decoder but no {method}() method; latentlab calls encode(x) -> "
                "(mu, logvar) and decode(z) -> images, so give the class those two methods (e.g. `def encode(self, x): "
                "return self.encoder(x)`) or return a small wrapper from your PATH.py:NAME callable.")
    return (f"{name} has no {method}() method, so it is not a VAE latentlab can open (it needs encode(x) and "
            "decode(z)).")


def standard_strides(t: torch.Tensor) -> torch.Tensor:
    """t with the strides of a plain contiguous NCHW tensor. torch calls a (B, 1, H, W) view of
    channels-last memory contiguous, yet its convolutions then answer in channels-last layout, where
    a model's `x.view(B, -1)` fails: models are handed the plain layout, always."""
    if not t.is_contiguous():
        return t.contiguous()
    want, acc = [], 1
    for size in reversed(t.shape):
        want.append(acc)
        acc *= size
    want = tuple(reversed(want))
    return t if t.stride() == want else t.as_strided(t.shape, want)


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
    x = standard_strides(x)
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
        if not model.deterministic:
            lp = _call(lambda: model.latent_prior().log_prob(mu), "computing the declared prior's log p(z)")
            if not isinstance(lp, torch.Tensor) or lp.shape != (len(x),):
                got = tuple(lp.shape) if isinstance(lp, torch.Tensor) else type(lp).__name__
                raise ModelError(f"The model's prior gave log p(z) of shape {got}; expected one value per code, ({len(x)},).")
            _finite(lp, "The declared prior's log p(z)")
        model.likelihood_note = likelihood_mismatch(
            getattr(model, "likelihood", None) if not getattr(model, "own_log_lik", False) else None,
            x, params, chosen=getattr(model, "likelihood_chosen", True), last_layer=last_layer(model.weights_module()))
    finally:
        model.train(was_training)
    return model


def _call(fn, doing: str):
    try:
        return fn()
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code can raise anything: one sentence says what
        raise with_cause(ModelError(f"The model failed while {doing}: {type(exc).__name__}: {one_line(exc)}."),
                         exc) from None


def _finite(t: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ModelError(f"{what} has NaN or infinite values on the data's first images.")
