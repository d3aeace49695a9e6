"""Files that ship inside the package: the pretrained models File → Examples offers."""

from dataclasses import dataclass
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@dataclass(frozen=True)
class Example:
    title: str          # the menu entry
    file: Path          # the checkpoint, inside the package
    dataset: str        # the dataset it opens with
    about: str          # one line for the tooltip and the status bar
    command: str        # how it was made, reproducibly


EXAMPLES = (
    Example("Digits, K = 2", RESOURCES / "digits-2d.safetensors", "digits",
            "A VAE with a 2-D latent space on scikit-learn's 8×8 digits: the default model.",
            "latentlab train --dataset digits --out latentlab/resources/digits-2d.safetensors --epochs 400 --seed 0"),
    Example("Sprites β-VAE, K = 5", RESOURCES / "sprites-beta-vae.safetensors", "sprites",
            "A β-VAE (β = 16) on procedural shapes with known factors: three active dimensions, whose "
            "traversals move the shape up and down, left and right, and grow it.",
            "latentlab train --dataset sprites --out latentlab/resources/sprites-beta-vae.safetensors "
            "--latent-dim 5 --beta 16 --epochs 60 --warmup-steps 1500 --seed 0"),
)
DEFAULT_CHECKPOINT = EXAMPLES[0].file


def default_checkpoint() -> Path:
    return DEFAULT_CHECKPOINT


def examples() -> tuple[Example, ...]:
    """The bundled examples whose file is present in this installation."""
    return tuple(e for e in EXAMPLES if e.file.is_file())
