"""Users' models that pass latentlab's one-batch check (at most 4 images) and misbehave afterwards,
or that misbehave from the start: each is opened as `PATH/hostile_models.py:NAME`.

Every factory returns a small VAE on 8×8 images (the digits) whose encoder turns bad only on
batches larger than the check's, as a model with a batch-size bug or numerical trouble does."""

import sys

import torch
from torch import nn

CHECK = 4   # adapters.validate runs the model on this many images


class Small(nn.Module):
    def __init__(self, k=2):
        super().__init__()
        torch.manual_seed(0)
        self.k = k
        self.enc = nn.Linear(64, 2 * k)
        self.dec = nn.Linear(k, 64)

    def encode(self, x):
        mu, lv = self.enc(x.flatten(1)).chunk(2, 1)
        return self.later(mu, len(x)), lv

    def later(self, mu, n):
        return mu

    def decode(self, z):
        return self.dec(z)


class RaisesOnLargerBatches(Small):
    def later(self, mu, n):
        if n > CHECK:
            raise RuntimeError(f"a batch of {n} does not fit the buffer\nsecond line of the message")
        return mu


class IntegerLatents(Small):
    def later(self, mu, n):
        return mu.round().long() if n > CHECK else mu


class ComplexLatents(Small):
    def later(self, mu, n):
        return mu.to(torch.complex64) if n > CHECK else mu


class MetaLatents(Small):
    def later(self, mu, n):
        return torch.empty(mu.shape, device="meta") if n > CHECK else mu


class ExitsInEncode(Small):
    def later(self, mu, n):
        if n > CHECK:
            sys.exit(3)
        return mu


class NaNAfterTheCheck(Small):
    def __init__(self):
        super().__init__(k=40)

    def later(self, mu, n):
        return mu * float("nan") if n > CHECK else mu


class NoParameters(nn.Module):
    """A fixed transform: the mean of each half of the image as the code, no parameter at all."""

    def encode(self, x):
        flat = x.flatten(1)
        mu = torch.stack([flat[:, :32].mean(1), flat[:, 32:].mean(1)], 1)
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        return (z[:, :1] * 0 + z[:, 1:] * 0).expand(len(z), 64) + torch.linspace(-1, 1, 64)


class Wide(nn.Module):
    """K = 200,000 latent dimensions, from parameter-free maps (cheap to build and run)."""

    def encode(self, x):
        flat = x.flatten(1)
        mu = flat.repeat(1, 3125)
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        return z[:, :64]


class Declares(Small):
    def __init__(self, shape):
        super().__init__()
        self.image_shape = shape


def raises_on_larger_batches():
    return RaisesOnLargerBatches()


def integer_latents():
    return IntegerLatents()


def complex_latents():
    return ComplexLatents()


def meta_latents():
    return MetaLatents()


def exits_in_encode():
    return ExitsInEncode()


def nan_after_the_check():
    return NaNAfterTheCheck()


def no_parameters():
    return NoParameters()


def wide():
    return Wide()


def image_shape_5():
    return Declares(5)


def image_shape_abc():
    return Declares("abc")


def exits_in_factory():
    sys.exit(3)


def good():
    return Small()


# name -> (what the one sentence names: the method, the batch, the first line of the message)
AFTER_THE_CHECK = {
    "raises_on_larger_batches": ("encode(x) on a batch of", "RuntimeError: a batch of"),
    "integer_latents": ("int64",),
    "complex_latents": ("complex64",),
    "meta_latents": ("meta device",),
    "exits_in_encode": ("encode(x) on a batch of", "SystemExit"),
    "nan_after_the_check": ("NaN",),
}
FROM_THE_START = {
    "image_shape_5": ("image_shape", "(C, H, W)"),
    "image_shape_abc": ("image_shape", "(C, H, W)"),
    "exits_in_factory": ("exits_in_factory() raised SystemExit",),
}
