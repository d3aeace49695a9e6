"""The VAE: a diagonal-Gaussian encoder, an MLP or conv decoder, and the likelihood head."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .adapters import LatentModel
from .config import ModelConfig
from .priors import standard_normal

LOG_2PI = math.log(2 * math.pi)


class _ConvTrunk(nn.Module):
    """Strided convs; records each layer's input size so the decoder can mirror odd sizes exactly."""

    def __init__(self, in_ch: int, channels: tuple[int, ...], hw: tuple[int, int]):
        super().__init__()
        self.layers = nn.ModuleList()
        self.sizes = [hw]
        ch = in_ch
        for out in channels:
            self.layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1))
            h, w = self.sizes[-1]
            self.sizes.append(((h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1))
            ch = out
        if min(self.sizes[-1]) < 1:
            raise ValueError(f"images of {hw[0]}x{hw[1]} are too small for {len(channels)} conv layers.")


class VAE(LatentModel):
    """latentlab's own VAE; it is a LatentModel directly, so every view treats it like any other."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.image_shape
        k = cfg.latent_dim
        if cfg.arch == "conv":
            self.trunk = _ConvTrunk(c, cfg.conv_channels, (h, w))
            fh, fw = self.trunk.sizes[-1]
            enc_in = cfg.conv_channels[-1] * fh * fw
        else:
            self.trunk = None
            enc_in = c * h * w
        self.encoder = _mlp([enc_in, *cfg.hidden])
        self.enc_out = nn.Linear(cfg.hidden[-1], 2 * k)
        dec_widths = [k, *reversed(cfg.hidden)]
        self.decoder = _mlp(dec_widths)
        if cfg.arch == "conv":
            self.dec_out = nn.Linear(dec_widths[-1], enc_in)
            chans = list(reversed(cfg.conv_channels))
            self.deconvs = nn.ModuleList(
                nn.ConvTranspose2d(chans[i], chans[i + 1] if i + 1 < len(chans) else c, 4, stride=2, padding=1)
                for i in range(len(chans))
            )
        else:
            self.dec_out = nn.Linear(dec_widths[-1], c * h * w)
            self.deconvs = None
        if cfg.likelihood == "gaussian":
            # One learned observation scale (log σ) calibrates the Gaussian likelihood.
            self.log_sigma = nn.Parameter(torch.tensor(math.log(0.1)))

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.cfg.latent_dim,)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.cfg.image_shape

    def latent_prior(self):
        return standard_normal(True)   # trained against N(0, I) by latentlab itself

    def describe(self) -> str:
        return f"latentlab {self.cfg.arch} VAE (K = {self.cfg.latent_dim}, {self.cfg.likelihood})"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> posterior mean and clamped log-variance, each (B, K)."""
        h = x
        if self.trunk is not None:
            for conv in self.trunk.layers:
                h = F.relu(conv(h))
        h = self.encoder(h.flatten(1))
        mu, logvar = self.enc_out(F.relu(h)).chunk(2, dim=-1)
        return mu, logvar.clamp(self.cfg.logvar_min, self.cfg.logvar_max)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, K) -> likelihood parameters (B, C, H, W): logits (Bernoulli) or means (Gaussian)."""
        c, h, w = self.cfg.image_shape
        out = self.dec_out(F.relu(self.decoder(z)))
        if self.deconvs is None:
            return out.view(-1, c, h, w)
        sizes = list(reversed(self.trunk.sizes))
        fh, fw = sizes[0]
        out = out.view(-1, self.cfg.conv_channels[-1], fh, fw)
        for i, deconv in enumerate(self.deconvs):
            out = deconv(out, output_size=list(sizes[i + 1]))
            if i + 1 < len(self.deconvs):
                out = F.relu(out)
        return out

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over pixels, (B,). x broadcasts against params."""
        if self.cfg.likelihood == "bernoulli":
            x = x.expand_as(params)
            return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma.clamp(-7.0, 2.0)
        sq = ((x - params) * torch.exp(-log_sigma)).square().flatten(1).sum(1)
        n = params[0].numel()
        return -0.5 * sq - n * (log_sigma + 0.5 * LOG_2PI)

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        """The image to show for decoder output: E[x | z], clipped to [0, 1]."""
        if self.cfg.likelihood == "bernoulli":
            return torch.sigmoid(params)
        return params.clamp(0.0, 1.0)


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last: callers add their own)."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(widths[i], widths[i + 1]))
    return nn.Sequential(*layers)


def build_model(cfg: ModelConfig, seed: int | None = 0) -> VAE:
    """A fresh model; with a seed its initial weights are reproducible without touching global RNG state."""
    if seed is None:
        return VAE(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(cfg)
