"""The examples a user copies: the plain PyTorch VAE trains with its own script and opens with
its weights; the conv VAE whose encoder returns a Normal opens on sprites."""

import subprocess
import sys
from pathlib import Path

from latentlab.core.data.specs import load_dataset
from latentlab.core.files.model_spec import load_model
from latentlab.core.inference.analysis import evaluate
from latentlab.core.models.adapters import validate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_mlp_example_trains_then_opens_with_its_weights(tmp_path):
    out = tmp_path / "mlp.safetensors"
    subprocess.run([sys.executable, str(EXAMPLES / "mlp_vae" / "train.py"), "--epochs", "2", "--out", str(out)],
                   check=True, capture_output=True, timeout=300)
    digits = load_dataset("digits")
    spec = f"{EXAMPLES / 'mlp_vae' / 'mlp_vae.py'}:MLPVAE"
    trained = validate(load_model(spec, weights=out), digits.x_test)
    fresh = validate(load_model(spec), digits.x_test)
    assert evaluate(trained, digits.x_test, iw_samples=0)["elbo"] > evaluate(fresh, digits.x_test, iw_samples=0)["elbo"] + 5


def test_conv_example_with_a_normal_encoder_opens_on_sprites():
    sprites = load_dataset("sprites")
    model = validate(load_model(f"{EXAMPLES / 'conv_vae' / 'model.py'}:make"), sprites.x_train[:8])
    assert model.latent_dim == 4 and model.image_shape == (1, 32, 32)
