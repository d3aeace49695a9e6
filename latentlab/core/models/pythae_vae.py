"""pythae's autoencoders as LatentModels, for `pythae:DIR` SPECs and pythae models handed to the API.

pythae is optional and imported only to open a `final_model/` folder (`pythae:DIR`); its loader
unpickles the folder's files (cloudpickled encoders and decoders, a torch.save state dict), so that
SPEC counts as code, like `PATH.py:NAME`. A pythae model has no encode/decode: its `.encoder(x)`
returns a ModelOutput with `embedding` (and `log_covariance` for a VAE) and its `.decoder(z)` one
with `reconstruction`, which TorchVAE reads through a small pair of halves.

What differs from each pythae model's own numbers is said in `notes()`:
- the likelihood follows `model_config.reconstruction_loss`: "bce" is Bernoulli on the decoder's
  probabilities, "mse" a Gaussian of scale 1 on [0, 1] pixels, whose normalising constant
  (n/2 · log 2π nats) pythae leaves out of its loss and latentlab keeps;
- VAMP declares its prior (the mixture of the encoder's posteriors at its pseudo-inputs, the
  prior its own loss uses); every other VAE here is measured against N(0, I), as trained;
- flow posteriors (VAE_IAF, VAE_LinNF, HVAE, RHVAE) are read as the encoder's Gaussian before the
  flow; hyperspherical and hyperbolic latents (SVAE, PVAE) and vector quantisation (VQVAE) are
  not diagonal Gaussians and are refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from latentlab.core.errors import ModelError

from .adapters import TorchVAE, one_line
from .priors import CallablePrior, Prior, standard_normal

REFUSED = {"SVAE": "a hyperspherical (von Mises-Fisher) latent", "PVAE": "a hyperbolic (Poincaré ball) latent",
           "VQVAE": "a vector-quantised latent"}
FLOWS = ("VAE_IAF", "VAE_LinNF", "HVAE", "RHVAE")
LIKELIHOODS = {"bce": "bernoulli-probs", "mse": "gaussian:1"}


def is_pythae_model(obj) -> bool:
    return (type(obj).__module__.split(".")[0] == "pythae" and hasattr(obj, "model_config")
            and isinstance(getattr(obj, "encoder", None), nn.Module) and isinstance(getattr(obj, "decoder", None), nn.Module))


class _Halves(nn.Module):
    """encode/decode over a pythae model's encoder and decoder; the model itself holds the weights."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def encode(self, x):
        return self.model.encoder(x)

    def decode(self, z):
        return self.model.decoder(z)


class PythaeVAE(TorchVAE):
    def __init__(self, model: nn.Module, *, likelihood=None, source: str = ""):
        name = str(getattr(model, "model_name", "") or type(model).__name__)
        if name in REFUSED:
            raise ModelError(f"pythae's {name} has {REFUSED[name]}, not a diagonal Gaussian one, which latentlab "
                             "cannot measure.")
        loss = str(getattr(model.model_config, "reconstruction_loss", "mse") or "mse")   # AE and its kin: mse
        self.loss = loss
        super().__init__(_Halves(model), likelihood=likelihood or LIKELIHOODS.get(loss), name=name)
        self.likelihood_chosen = likelihood is not None
        self.pythae_model = model
        self.source = source

    def weights_module(self) -> nn.Module:
        return self.pythae_model

    def latent_prior(self) -> Prior:
        if self.name != "VAMP" or not callable(getattr(self.pythae_model, "_log_p_z", None)):
            return standard_normal(True)   # what every other pythae VAE is trained against
        k = self.latent_dim
        return CallablePrior(self.pythae_model._log_p_z, self.latent_shape, name="VAMP's mixture at its pseudo-inputs",
                             sampler=self._sample_vamp, constant=-0.5 * k * math.log(2 * math.pi),
                             dtype=next(self.pythae_model.parameters()).dtype)

    @torch.no_grad()
    def _sample_vamp(self, n: int, generator=None) -> torch.Tensor:
        """Draws from VAMP's prior: a pseudo-input at random, then its encoder Gaussian."""
        m = self.pythae_model
        c = int(m.number_components)
        pseudo = m.pseudo_inputs(m.idle_input.to(self.device())).reshape((c, *m.model_config.input_dim))
        out = m.encoder(pseudo)
        mu, lv = out["embedding"], out["log_covariance"]
        dev = generator.device if generator is not None else mu.device
        pick = torch.randint(0, c, (n,), generator=generator, device=dev).to(mu.device)
        eps = torch.randn((n, *mu.shape[1:]), generator=generator, device=dev, dtype=mu.dtype).to(mu.device)
        return mu[pick] + torch.exp(0.5 * lv[pick]) * eps

    def notes(self) -> tuple[str, ...]:
        out = list(super().notes())
        if self.name in FLOWS:
            out.append(f"pythae's {self.name} refines q(z|x) with a flow; latentlab reads the encoder's Gaussian "
                       "before it")
        if self.loss == "mse" and str(self.likelihood) == "gaussian:1":
            out.append("pythae's mse loss is a Gaussian of scale 1 without its constant; latentlab's reconstruction "
                       "includes it (n/2 · log 2π nats more)")
        return tuple(n for n in out if n)

    def describe(self) -> str:
        return f"pythae {super().describe()}"


def load_pythae(folder: str, *, likelihood=None, device="cpu") -> PythaeVAE:
    """Open a pythae `final_model/` folder with pythae's own loader (which unpickles: it is code)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelError(f"pythae:{folder} is not a folder (it needs the final_model/ folder pythae's save wrote).")
    if not (path / "model_config.json").is_file() or not (path / "model.pt").is_file():
        raise ModelError(f"{path} has no model_config.json and model.pt, so it is not a pythae model folder.")
    try:
        from pythae.models import AutoModel
    except ImportError:
        raise ModelError("Opening a pythae:DIR model needs pythae: pip install pythae.") from None
    try:
        model = AutoModel.load_from_folder(str(path))
    except Exception as exc:  # noqa: BLE001 - pythae raises many kinds for a broken folder
        raise ModelError(f"pythae could not load {path}: {type(exc).__name__}: {one_line(exc)}.") from None
    return PythaeVAE(model.to(device).eval(), likelihood=likelihood, source=str(path))
