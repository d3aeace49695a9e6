"""What latentlab calls: `--model examples/mlp_vae/adapter.py:load` imports this file and calls load()."""

from pathlib import Path

from safetensors.torch import load_file

from mlp_vae import MLPVAE


def load():
    model = MLPVAE()
    model.load_state_dict(load_file(str(Path(__file__).with_name("mlp_vae.safetensors"))))
    return model
