"""Fine-tuned weights back home: a diffusers model as the folder `save_pretrained` writes (safetensors
weights and config.json, reopened by diffusers or by `diffusers:OUT`), a pythae model as the folder
its own `save` writes (reopened by pythae's loader or by `pythae:OUT`).

The folder is written beside its target under a temporary name and swapped in whole, so `OUT`
holds either its old contents or all of the new, never a mix; an output never replaces the model's
own folder (model_spec.refuse_overwrite).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from latentlab.core.errors import CheckpointError, ModelError
from latentlab.core.text import short


def home_kind(model) -> str | None:
    """'diffusers' or 'pythae' for a model whose library has its own folder format, else None."""
    from latentlab.core.models.diffusers_vae import DiffusersVAE
    from latentlab.core.models.pythae_vae import PythaeVAE

    if isinstance(model, DiffusersVAE):
        return "diffusers"
    if isinstance(model, PythaeVAE):
        return "pythae"
    return None


def wants_folder(out) -> bool:
    """An output named without the .safetensors suffix is a folder in the model's own format."""
    return Path(out).suffix.lower() != ".safetensors"


def check_folder_out(model, out) -> None:
    if home_kind(model) is None:
        raise ModelError(f"--out {short(str(out), 120)} is not a .safetensors file; only diffusers and pythae models "
                         "are saved as folders of their own format.")
    if Path(out).exists() and not Path(out).is_dir():
        raise CheckpointError(f"{short(str(out), 120)} is a file; a {home_kind(model)} model is saved as a folder.")


def save_home(model, out) -> Path:
    """Write `model` to the folder `out` in its library's own format, atomically (see the module)."""
    kind = home_kind(model)
    out = Path(out)
    check_folder_out(model, out)
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.name}.writing-{os.getpid()}"
    old = parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if kind == "diffusers":
            model.net.save_pretrained(str(tmp), safe_serialization=True)
        else:
            model.pythae_model.save(str(tmp))
        _fsync_tree(tmp)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except Exception as exc:  # noqa: BLE001 - the library's writer can raise anything
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise CheckpointError(f"Cannot write the {kind} folder {short(str(out), 120)}: {type(exc).__name__}.") from None
    shutil.rmtree(old, ignore_errors=True)
    return out


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
