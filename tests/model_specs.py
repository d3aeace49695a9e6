"""The models the meaning features are checked on: latentlab's own (the bundled checkpoints) and a
user's, opened through a SPEC exactly as `--model` opens them (examples/mlp_vae/adapter.py:load, with
weights its own training script writes beside a copy of it, and examples/conv_vae/model.py:make)."""

import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_made: dict = {}


def adapter_spec(folder: Path) -> str:
    """A copy of the MLP example in `folder`, trained for a few epochs by its own script, as a SPEC."""
    if "adapter" not in _made:
        for name in ("adapter.py", "mlp_vae.py", "train.py"):
            shutil.copy(EXAMPLES / "mlp_vae" / name, folder / name)
        subprocess.run([sys.executable, str(folder / "train.py"), "--epochs", "5"], check=True, capture_output=True,
                       timeout=300, cwd=folder)
        _made["adapter"] = f"{folder / 'adapter.py'}:load"
    return _made["adapter"]


def conv_spec() -> str:
    return f"{EXAMPLES / 'conv_vae' / 'model.py'}:make"


def open_spec(which: str, data, folder: Path | None = None):
    """"bundled" (the checkpoint for data: digits or sprites), "conv" or "adapter", checked on data."""
    from latentlab.core.files.bundled import EXAMPLES as BUNDLED
    from latentlab.core.files.model_spec import load_model
    from latentlab.core.models.adapters import validate

    if which == "bundled":
        spec = str(next(e.file for e in BUNDLED if e.dataset == data.spec))
    else:
        spec = conv_spec() if which == "conv" else adapter_spec(folder)
    return validate(load_model(spec), data.x_train[:8])
