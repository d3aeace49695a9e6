"""A small conv VAE whose encoder returns a torch.distributions.Normal and whose decoder returns
images (B, 1, H, W) of Bernoulli logits. `make()` is the callable latentlab calls:

    latentlab gui --model examples/conv_vae/model.py:make --dataset sprites

To explore trained weights, load them inside make() (or train a copy with
`latentlab train --model examples/conv_vae/model.py:make --dataset sprites --out conv.safetensors`
and reopen it with `--model examples/conv_vae/model.py:make --weights conv.safetensors`).
"""

import torch
from torch import nn
from torch.distributions import Normal


class ConvVAE(nn.Module):
    def __init__(self, latent: int = 4, size: int = 32):
        super().__init__()
        self.size = size
        self.enc = nn.Sequential(
            nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
        )
        feat = 32 * (size // 4) ** 2
        self.head = nn.Linear(feat, 2 * latent)
        self.dec_in = nn.Linear(latent, feat)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 4, 2, 1),
        )

    def encode(self, x):
        mu, logvar = self.head(self.enc(x)).chunk(2, dim=1)
        return Normal(mu, torch.exp(0.5 * logvar.clamp(-10, 6)))

    def decode(self, z):
        s = self.size // 4
        return self.dec(torch.relu(self.dec_in(z)).view(-1, 32, s, s))


def make():
    torch.manual_seed(0)
    return ConvVAE()
