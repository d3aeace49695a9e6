"""Small models shaped like other libraries' VAEs, with their own output types and layouts, for the
tests of opening them (tests/core/models/test_foreign_libraries.py, tests/test_cli_foreign.py).

AntixKVanillaVAE  AntixK/PyTorch-VAE's VanillaVAE: encode -> [mu, log_var] (a list), a decoder that
                  ends in nn.Tanh, forward -> [recon, input, mu, log_var]; trained in a LightningModule
                  that holds it as `self.model`, so its checkpoints' keys start with `model.`
BurgessVAE        YannDubs/disentangling-vae's VAE: `.encoder(x)` -> (mu, logvar), `.decoder(z)` ->
                  probabilities, no encode/decode methods
ViewConvVAE       a conv VAE whose encoder does `h.view(B, -1)` after its convolutions
"""

import torch
from torch import nn


class AntixKVanillaVAE(nn.Module):
    def __init__(self, in_channels: int = 1, latent_dim: int = 3, hidden_dims=(8, 16)):
        super().__init__()
        torch.manual_seed(0)
        self.latent_dim = latent_dim
        modules, ch = [], in_channels
        for h in hidden_dims:
            modules.append(nn.Sequential(nn.Conv2d(ch, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()))
            ch = h
        self.encoder = nn.Sequential(*modules)
        self.fc_mu = nn.Linear(hidden_dims[-1] * 4, latent_dim)
        self.fc_var = nn.Linear(hidden_dims[-1] * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, hidden_dims[-1] * 4)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(hidden_dims[-1], hidden_dims[0], 3, stride=2, padding=1,
                                                        output_padding=1), nn.LeakyReLU())
        self.final_layer = nn.Sequential(nn.ConvTranspose2d(hidden_dims[0], in_channels, 3, stride=2, padding=1,
                                                            output_padding=1), nn.Tanh())
        self.hidden = hidden_dims[-1]

    def encode(self, input):
        result = torch.flatten(self.encoder(input), start_dim=1)
        return [self.fc_mu(result), self.fc_var(result)]

    def decode(self, z):
        result = self.decoder_input(z).view(-1, self.hidden, 2, 2)
        return self.final_layer(self.decoder(result))

    def forward(self, input, **kwargs):
        mu, log_var = self.encode(input)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return [self.decode(z), input, mu, log_var]


def lightning_checkpoint(model: nn.Module, path, extra=None):
    """What Lightning's ModelCheckpoint writes for a LightningModule holding `model` as self.model."""
    ckpt = {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(1.5)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.005, "params": [0, 1]}]}],
        "lr_schedulers": [], "hyper_parameters": {"LR": 0.005, "kld_weight": 0.00025},
    }
    ckpt.update(extra or {})
    torch.save(ckpt, path)


class _BurgessEncoder(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k
        self.lin = nn.Linear(64, 2 * k)

    def forward(self, x):
        mu_logvar = self.lin(x.flatten(1)).view(-1, self.k, 2)
        return mu_logvar.unbind(-1)


class BurgessVAE(nn.Module):
    def __init__(self, latent_dim: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = _BurgessEncoder(latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.Sigmoid())

    def forward(self, x):
        mu, logvar = self.encoder(x)
        return self.decoder(mu).view(-1, 1, 8, 8), (mu, logvar), mu


class ViewConvVAE(nn.Module):
    def __init__(self, latent_dim: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 64, 2 * latent_dim)
        self.dec = nn.Linear(latent_dim, 64)

    def encode(self, x):
        h = torch.relu(self.conv(x))
        return self.head(h.view(x.shape[0], -1)).chunk(2, 1)

    def decode(self, z):
        return self.dec(z).view(-1, 1, 8, 8)


def antixk_with_wrong_keys():
    """A user's loader that feeds a Lightning state dict, prefix and all, to load_state_dict."""
    model = AntixKVanillaVAE()
    model.load_state_dict({f"model.{k}": v for k, v in AntixKVanillaVAE().state_dict().items()})
    return model


class Interrupting(ViewConvVAE):
    """Presses Ctrl+C (sends itself SIGINT) on its `at`-th decode, as a user would: the first is the
    check on one batch while the model opens, the next ones evaluate."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def decode(self, z):
        import os
        import signal

        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().decode(z)


def interrupted_while_opening():
    return Interrupting(1)


def interrupted_while_evaluating():
    return Interrupting(3)


class MixturePriorVAE(nn.Module):
    """An MLP VAE that declares a three-component mixture prior over its 2-D latent."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Linear(64, 4)
        self.dec = nn.Linear(2, 64)
        d = torch.distributions
        comps = d.Independent(d.Normal(torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]]), torch.full((3, 2), 0.5)), 1)
        self.prior = d.MixtureSameFamily(d.Categorical(torch.tensor([0.3, 0.3, 0.4])), comps)

    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, 1)

    def decode(self, z):
        return self.dec(z)
