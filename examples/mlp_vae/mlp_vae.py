"""A plain PyTorch VAE, the kind people already have: nothing in it knows about latentlab.

encode(x) returns (mu, logvar); decode(z) returns flat logits (B, 64), which latentlab reshapes to
the images. The `likelihood` attribute says how to read decode's output.
"""

import torch
from torch import nn
from torch.nn import functional as F


class MLPVAE(nn.Module):
    likelihood = "bernoulli"  # decode() gives Bernoulli logits

    def __init__(self, pixels: int = 64, hidden: int = 128, latent: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(pixels, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, pixels)

    def encode(self, x):
        h = F.relu(self.fc1(x.flatten(1)))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z), mu, logvar
