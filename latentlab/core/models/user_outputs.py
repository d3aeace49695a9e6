"""Reading what a user's model returns: the encoder's posterior and the decoder's tensor, from any of
the forms the README lists (tuples, torch Normals, dicts and ModelOutput-like dicts such as pythae's
`embedding` / `log_covariance` and `reconstruction`, diffusers' `latent_dist`, `.sample` and
`.latents`)."""

from __future__ import annotations

import torch

from latentlab.core.errors import ModelError

MEAN_KEYS = ("mean", "mu", "loc", "embedding")            # pythae's encoders say `embedding`
LOGVAR_KEYS = ("logvar", "log_var", "log_covariance")      # ... and `log_covariance`
CODE_KEYS = ("latents", "embedding", "z")                  # a deterministic encoder's code
IMAGE_KEYS = ("sample", "reconstruction", "recon_x", "x_recon")


def posterior_params(out, where: str = "encode(x)") -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) from any of the accepted encoder outputs, unflattened."""
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
    """The tensor inside any accepted decoder output."""
    if isinstance(out, torch.Tensor):
        return out
    sample = getattr(out, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(out, dict):
        found = _first(out, IMAGE_KEYS)
        if found is not None:
            return found
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
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
