"""Train MLPVAE on scikit-learn's 8x8 digits with an ordinary PyTorch loop and save its state_dict.

    python examples/mlp_vae/train.py [--epochs 30] [--out examples/mlp_vae/mlp_vae.safetensors]

Then explore it:  latentlab gui --model examples/mlp_vae/adapter.py:load --dataset digits
"""

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from torch.nn import functional as F

from mlp_vae import MLPVAE


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("mlp_vae.safetensors"))
    args = p.parse_args()
    torch.manual_seed(0)
    x = torch.tensor(load_digits().images / 16.0, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    model = MLPVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        total = 0.0
        for xb in x[torch.randperm(len(x))].split(64):
            logits, mu, logvar = model(xb)
            rec = F.binary_cross_entropy_with_logits(logits, xb.flatten(1), reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (rec + kl) / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        print(f"epoch {epoch + 1}: loss {total / len(x):.2f}")
    save_file(model.state_dict(), str(args.out))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
