"""Reading what a user's model returns and raises: encoder outputs in any of the forms the README
lists (tuples, torch Normals, dicts and ModelOutput-like dicts such as pythae's `embedding` /
`log_covariance` and `reconstruction`, diffusers' `latent_dist`, `.sample` and `.latents`), decoder
outputs, the image shape it declares, and the one sentence for an error its code raises.

Everything a user's model hands back is checked here before latentlab computes with it: real
floating-point values that exist (integer, complex or meta-device latents would fail later, deep
inside an analysis, with a traceback).
"""

from __future__ import annotations

import operator

import torch

from latentlab.core.errors import ModelError
from latentlab.core.text import quote, short

MEAN_KEYS = ("mean", "mu", "loc", "embedding")            # pythae's encoders say `embedding`
LOGVAR_KEYS = ("logvar", "log_var", "log_covariance")      # ... and `log_covariance`
CODE_KEYS = ("latents", "embedding", "z")                  # a deterministic encoder's code
IMAGE_KEYS = ("sample", "reconstruction", "recon_x", "x_recon")


def posterior_params(out, where: str = "encode(x)") -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) from any of the accepted encoder outputs, unflattened, each real floating-point
    values that exist (not on the meta device)."""
    mu, lv = _posterior_params(out, where)
    return real_values(mu, f"{where}'s mean"), real_values(lv, f"{where}'s log-variance")


def real_values(t: torch.Tensor, what: str) -> torch.Tensor:
    """`t` when it holds real floating-point values on a device that stores them, else one sentence:
    integer, boolean or complex latents and outputs, or tensors on the meta device (shapes without
    values), would fail later deep inside an analysis."""
    if t.device.type == "meta":
        raise ModelError(f"{what} is a tensor on the meta device, which holds no values.")
    if not t.is_floating_point():
        raise ModelError(f"{what} holds {str(t.dtype).replace('torch.', '')} values; latentlab needs "
                         "real floating-point numbers.")
    return t


def _posterior_params(out, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out):
        return out[0], out[1]
    if isinstance(out, torch.distributions.Normal):
        return out.loc, 2 * torch.log(out.scale)
    dist = getattr(out, "latent_dist", None)  # a diffusers encoder output (itself a dict)
    if dist is not None:
        out = dist
    elif isinstance(out, dict):
        mu = _first(out, MEAN_KEYS)
        lv = _first(out, LOGVAR_KEYS)
        if mu is not None and lv is not None:
            return mu, lv
        raise ModelError(f"{where} returned a dict with keys {sorted(map(str, out))[:6]}; "
                         "latentlab needs 'mean' (or 'mu') and 'logvar'.")
    mu = getattr(out, "mean", None)
    if isinstance(mu, torch.Tensor):
        for name, to_logvar in (("logvar", lambda t: t), ("std", lambda t: 2 * torch.log(t)),
                                ("var", lambda t: torch.log(t)), ("scale", lambda t: 2 * torch.log(t))):
            v = getattr(out, name, None)
            if isinstance(v, torch.Tensor):
                return mu, to_logvar(v)
    raise ModelError(f"{where} returned {kind_of(out)}; latentlab needs (mu, logvar), a torch.distributions.Normal, "
                     "a dict with mean and logvar, or an object with .mean and .logvar, .std or .var.")


def decoder_tensor(out, where: str = "decode(z)") -> torch.Tensor:
    """The tensor inside any accepted decoder output (real floating-point values, see real_values)."""
    if isinstance(out, torch.Tensor):
        return real_values(out, where)
    sample = getattr(out, "sample", None)
    if isinstance(sample, torch.Tensor):
        return real_values(sample, where)
    if isinstance(out, dict):
        found = _first(out, IMAGE_KEYS)
        if found is not None:
            return real_values(found, where)
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return real_values(out[0], where)
    raise ModelError(f"{where} returned {kind_of(out)}; latentlab needs a tensor or an object with .sample.")


def deterministic_code(out) -> torch.Tensor | None:
    """The code of an encoder that gives one point, not a distribution (a tensor, diffusers'
    AutoencoderTiny `.latents`, pythae's AE `embedding` alone), else None."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and _first(out, LOGVAR_KEYS) is None:
        return _first(out, CODE_KEYS)
    if not isinstance(out, dict):
        code = getattr(out, "latents", None)
        return code if isinstance(code, torch.Tensor) else None
    return None


def _first(d: dict, names):
    return next((d[n] for n in names if isinstance(d.get(n), torch.Tensor)), None)


def kind_of(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)} items"
    return f"a {type(v).__name__}"


def user_error(where: str, batch: int, doing: str, exc: BaseException) -> str:
    """The one sentence for an error raised by a user's model code."""
    return f"{where} on a batch of {batch:,} failed while {doing}: {type(exc).__name__}: {one_line(exc)}."


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, short, without a final full stop."""
    text = str(exc)[:2000].strip()
    return short(text.splitlines()[0] if text else type(exc).__name__, 200).rstrip(".:")


def image_shape_of(value, name) -> tuple[int, int, int] | None:
    """A model's declared `image_shape`: None, or (C, H, W) of positive whole numbers."""
    if value is None:
        return None
    try:
        shape = tuple(operator.index(v) for v in value if not isinstance(v, bool))
        if len(shape) == 3 == len(value) and min(shape) > 0:
            return shape
    except TypeError:   # not a sequence, or not of whole numbers
        pass
    raise ModelError(f"{name}.image_shape must be three positive whole numbers (C, H, W), not {quote(value, 40)}.")
