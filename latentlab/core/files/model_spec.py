"""Model SPECs: which model to open, and the weights files of fine-tuned foreign models.

    PATH.safetensors         a latentlab checkpoint (never causes an import, whatever its metadata says)
    PATH.py:NAME             a callable in a Python file; latentlab imports the file and calls NAME()
    package.module:NAME      the same for an importable module
    diffusers:DIR            a folder written by diffusers' AutoencoderKL (or AutoencoderTiny).save_pretrained
    pythae:DIR               a pythae final_model/ folder (pythae's loader unpickles it: code, like PATH.py:NAME)

A SPEC that names Python code runs that code: that is what the user asked for. Every failure is a
`ModelError` (or `CheckpointError`) with one sentence.

Fine-tuned foreign models are saved as a weights file: the user's state_dict as .safetensors,
with the model SPEC in its metadata so people know how to reopen it (`--model SPEC --weights FILE`);
reading that metadata never imports anything (diffusers and pythae models can also go back to their
own folders: core.files.model_folders). `--weights` also takes a torch.save file the user names
(a Lightning .ckpt, a state_dict): core.files.torch_weights reads it without running its code.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from latentlab.core.errors import CheckpointError, LatentLabError, ModelError, with_cause
from latentlab.core.models.adapters import LatentModel, Likelihood, as_latent_model, one_line

WEIGHTS_FORMAT = "latentlab-weights"
WEIGHTS_FORMAT_VERSION = 1
MAX_WEIGHTS_BYTES = 16 * 1024 ** 3


def spec_kind(spec: str) -> str:
    """'checkpoint', 'file', 'module', 'diffusers' or 'pythae' (refuses what is none of them)."""
    spec = str(spec)
    if spec.startswith("diffusers:"):
        return "diffusers"
    if spec.startswith("pythae:"):
        return "pythae"
    if spec.lower().endswith(".safetensors"):
        return "checkpoint"
    target, sep, name = spec.rpartition(":")
    if sep and name and target:
        return "file" if target.endswith(".py") else "module"
    raise ModelError(f"Model SPEC {spec!r} is not PATH.safetensors, PATH.py:NAME, package.module:NAME, diffusers:DIR "
                     "or pythae:DIR.")


@dataclass
class OpenedModel:
    model: LatentModel
    dataset: str = ""                             # the dataset its checkpoint or weights file records
    history: list = field(default_factory=list)   # training history recorded with the weights
    warnings: tuple = ()                          # what was dropped from the file's metadata, one line each


def load_model(spec, *, weights=None, likelihood=None, device="cpu") -> LatentModel:
    """The LatentModel a SPEC names, on `device`; not yet checked against data (see adapters.validate)."""
    return open_model(spec, weights=weights, likelihood=likelihood, device=device).model


def open_model(spec, *, weights=None, likelihood=None, device="cpu") -> OpenedModel:
    """load_model, with the dataset and history a checkpoint or weights file recorded."""
    if likelihood is None and weights is not None:
        # Fine-tuned weights were trained with a likelihood; reopen them with the same one.
        likelihood = _peek_metadata(weights).get("likelihood") or None
    if isinstance(likelihood, str):
        likelihood = Likelihood.parse(likelihood)
    spec = str(spec)
    kind = spec_kind(spec)
    dataset, history, warnings = "", [], []
    if kind == "checkpoint":
        if weights is not None:
            raise ModelError("--weights goes with a Python or diffusers model SPEC; a checkpoint holds its own weights.")
        ckpt = _open_checkpoint(spec, device)
        dataset, history, warnings = ckpt.dataset, list(ckpt.history), list(ckpt.warnings)
        model = as_latent_model(ckpt.model, likelihood=likelihood)
    elif kind == "diffusers":
        from latentlab.core.models.diffusers_vae import load_diffusers

        model = load_diffusers(spec.split(":", 1)[1], likelihood=likelihood, device=device)
    elif kind == "pythae":
        from latentlab.core.models.pythae_vae import load_pythae

        model = load_pythae(spec.split(":", 1)[1], likelihood=likelihood, device=device)
    else:
        from latentlab.core.models.foreign import as_model

        target, _, name = spec.rpartition(":")
        obj = _call_factory(_import_file(target) if kind == "file" else _import_module(target), name, spec)
        model = as_model(obj, likelihood=likelihood, name=name)
    model.spec = spec
    model.to(device).eval()
    if weights is not None:
        from .torch_weights import is_torch_file, load_torch_weights

        if is_torch_file(weights):
            # A torch.save file the user named (a Lightning .ckpt, a state_dict): weights only, no metadata.
            load_torch_weights(model.weights_module(), weights)
        else:
            meta = load_weights(model, weights)
            history, dataset, more = weights_history(meta, model.latent_dim)
            warnings += list(more)
    return OpenedModel(model, dataset, history, tuple(warnings))


def refuse_overwrite(out, spec: str, weights=None) -> None:
    """A fine-tuned copy never replaces the user's own files (the model's code or its weights)."""
    target = Path(out).expanduser().resolve()
    sources = [weights] if weights is not None else []
    kind = spec_kind(spec)
    if kind in ("file", "checkpoint"):
        sources.append(spec.rpartition(":")[0] if kind == "file" else spec)
    elif kind in ("diffusers", "pythae"):
        folder = Path(spec.split(":", 1)[1]).expanduser().resolve()
        if target.parent == folder or target == folder:
            raise ModelError(f"--out {out} is the {kind} folder {folder} or inside it; write the fine-tuned copy elsewhere.")
    for src in sources:
        if kind != "checkpoint" and Path(src).expanduser().resolve() == target:
            raise ModelError(f"--out {out} is one of your model's own files; write the fine-tuned copy elsewhere.")


def _open_checkpoint(spec: str, device):
    from .checkpoint import load_checkpoint

    try:
        return load_checkpoint(spec, device=device)
    except CheckpointError:
        meta = _peek_metadata(spec)
        if meta.get("format") == WEIGHTS_FORMAT:
            raise ModelError(f"{spec} holds fine-tuned weights for the model {meta.get('model_spec', '?')[:200]!r}; "
                             f"open it with --model {meta.get('model_spec', 'SPEC')[:200]} --weights {spec}.") from None
        raise


def _peek_metadata(path) -> dict:
    """The metadata of a safetensors file, or {} if it has none or is not one. Reads; imports nothing."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
    except Exception:  # noqa: BLE001 - any unreadable file simply has no metadata to offer
        return {}
    return meta if isinstance(meta, dict) else {}


def _import_file(target: str):
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelError(f"Model file {target} does not exist.")
    mod_name = f"latentlab_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{target} cannot be imported as a Python file.")
    module = importlib.util.module_from_spec(spec)
    # The file's folder is importable while it loads, so it can import its neighbours.
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file can raise anything
        sys.modules.pop(mod_name, None)
        raise with_cause(ModelError(f"Importing {target} failed: {type(exc).__name__}: {one_line(exc)}."), exc) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(target: str):
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise ModelError(f"No Python module named {exc.name or target!r} (from the model SPEC {target}).") from None
    except Exception as exc:  # noqa: BLE001 - the user's module can raise anything
        raise ModelError(f"Importing {target} failed: {type(exc).__name__}: {one_line(exc)}.") from None


def _call_factory(module, name: str, spec: str):
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{spec.rpartition(':')[0]} has no {name!r}.")
        obj = getattr(obj, part)
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise ModelError(f"{name} in {spec.rpartition(':')[0]} is not callable and not an nn.Module.")
    try:
        return obj()
    except Exception as exc:  # noqa: BLE001 - the user's callable can raise anything: show its message
        # The sentence keeps the message's first line; the lines after it (load_state_dict's missing and
        # unexpected keys: the whole diagnosis) follow it, and --verbose shows the traceback.
        raise with_cause(ModelError(f"{name}() raised {type(exc).__name__}: {one_line(exc)}."), exc) from None


# --------------------------------------------------------------------------------------------
# weights files of fine-tuned foreign models

def save_weights(path, model: LatentModel, *, model_spec: str, dataset: str = "", history=()) -> Path:
    """The model's own state_dict as .safetensors, written atomically; the SPEC goes in the metadata."""
    from .atomic import write_atomic

    path = Path(path)
    write_atomic(path, weights_bytes(model, model_spec=model_spec, dataset=dataset, history=history))
    return path


def weights_bytes(model: LatentModel, *, model_spec: str, dataset: str = "", history=()) -> bytes:
    """save_weights' file contents, taken at once."""
    from latentlab._version import __version__

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.weights_module().state_dict().items()}
    lik = None if getattr(model, "own_log_lik", False) else getattr(model, "likelihood", None)
    metadata = {
        "format": WEIGHTS_FORMAT,
        "format_version": str(WEIGHTS_FORMAT_VERSION),
        "latentlab_version": __version__,
        "model_spec": str(model_spec),
        "likelihood": str(lik) if isinstance(lik, Likelihood) else "",
        "dataset": dataset,
        "history": json.dumps(list(history)),
    }
    try:
        return st_save(tensors, metadata=metadata)
    except Exception as exc:  # noqa: BLE001 - e.g. tensors sharing memory
        raise ModelError(f"Cannot save the model's weights: {one_line(exc)}.") from None


def load_weights(model: LatentModel, path) -> dict:
    """Put the weights of a file written by save_weights (or any plain safetensors state_dict of the
    same model) into `model`; every tensor is checked by name, shape, dtype and finiteness. Returns
    the file's metadata."""
    from .checkpoint import pickled_format, read_bounded

    path = Path(path)
    data = read_bounded(path, "weights file", MAX_WEIGHTS_BYTES, ModelError)
    if pickled_format(data) is not None:
        raise ModelError(f"{path} is a pickle or torch.save file; latentlab reads weights from .safetensors only.")
    try:
        tensors = st_load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for malformed buffers
        raise ModelError(f"{path} is not a valid safetensors file ({one_line(exc)}).") from None
    module = model.weights_module()
    expected = module.state_dict()
    unexpected = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if unexpected or missing:
        what = f"an unexpected tensor {unexpected[0]!r}" if unexpected else f"no tensor {missing[0]!r}"
        raise ModelError(f"{path} does not fit this model: it has {what}.")
    for key, t in tensors.items():
        want = expected[key]
        if t.shape != want.shape or t.dtype != want.dtype:
            raise ModelError(f"{path}: tensor {key!r} is {t.dtype} {tuple(t.shape)}, the model expects "
                             f"{want.dtype} {tuple(want.shape)}.")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelError(f"{path}: tensor {key!r} contains NaN or infinite values.")
    module.load_state_dict(tensors)
    return _peek_metadata(path)


def weights_history(meta: dict, latent_dim: int) -> tuple[list, str, tuple[str, ...]]:
    """(history, dataset spec, warnings) from a weights file's metadata, validated as a checkpoint's are."""
    from .metadata import _json, validate_history, validate_spec

    warnings = []
    history, note = validate_history(_json(meta.get("history", "[]"), "history"), latent_dim)
    if note:
        warnings.append(note)
    try:
        dataset = validate_spec(meta["dataset"]) if meta.get("dataset") else ""
    except ValueError as exc:
        dataset = ""
        warnings.append(f"dataset ignored: {exc}")
    return history, dataset, tuple(warnings)


def save_model(path, model: LatentModel, *, dataset: str, history=(), train_config=None, preview=None) -> Path:
    """A checkpoint for latentlab's own VAE, a weights file with the SPEC for anything else."""
    from .atomic import write_atomic

    path = Path(path)
    write_atomic(path, model_bytes(model, dataset=dataset, history=history, train_config=train_config, preview=preview))
    return path


def model_bytes(model: LatentModel, *, dataset: str, history=(), train_config=None, preview=None) -> bytes:
    """What save_model writes, taken at once (so it can be written on another thread). `preview`
    (latentlab's own VAE only): see checkpoint_bytes."""
    from latentlab.core.models.vae import VAE

    if isinstance(model, VAE):
        from .checkpoint import checkpoint_bytes

        return checkpoint_bytes(model, dataset=dataset, history=history, train_config=train_config, preview=preview)
    spec = getattr(model, "spec", None)
    if not spec:
        raise LatentLabError("This model was not opened from a model SPEC, so its weights cannot be saved for reopening.")
    return weights_bytes(model, model_spec=spec, dataset=dataset, history=history)

