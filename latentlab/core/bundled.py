"""Files that ship inside the package: the pretrained default model."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"

# Produced by: latentlab train --dataset digits --out latentlab/resources/digits-2d.safetensors --epochs 400 --seed 0
DEFAULT_CHECKPOINT = RESOURCES / "digits-2d.safetensors"


def default_checkpoint() -> Path:
    return DEFAULT_CHECKPOINT
