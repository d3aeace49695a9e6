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
own folders: core.files.model_folders). A weights file is read header first
(core.files.safetensors_file) and checked against the model before any tensor is read; its
metadata goes through the same builder and validator as a checkpoint's (core.files.metadata), the
history once the model's latent size is known (`OpenedModel.check`). `--weights` also takes a
torch.save file the user names (a Lightning .ckpt, a state_dict): core.files.torch_weights reads it
without running its code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from latentlab.core.errors import LatentLabError, ModelError, with_cause
from latentlab.core.models.adapters import LatentModel, Likelihood, as_latent_model, one_line, validate
from latentlab.core.text import quote, short

from .metadata import WEIGHTS_FORMAT, build_metadata, validate_metadata, validate_spec
from .safetensors_file import read_header, read_tensors

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
    # A weights file's metadata, validated by `check` once the model's latent size is known.
    metadata: dict | None = None

    def check(self, x_batch) -> LatentModel:
        """The model checked on a batch of images (adapters.validate), which also settles its latent
        size; then the weights file's history is validated against that size."""
        model = validate(self.model, x_batch)
        if self.metadata is not None:
            checked = validate_metadata(self.metadata, model.latent_dim)
            self.history, self.warnings, self.metadata = checked.history, self.warnings + checked.warnings, None
        return model


def load_model(spec, *, weights=None, likelihood=None, device="cpu") -> LatentModel:
    """The LatentModel a SPEC names, on `device`; not yet checked against data (see adapters.validate)."""
    return open_model(spec, weights=weights, likelihood=likelihood, device=device).model


def open_model(spec, *, weights=None, likelihood=None, device="cpu") -> OpenedModel:
    """load_model, with the dataset and history a checkpoint or weights file recorded (a weights
    file's history once `OpenedModel.check` has run the model on data)."""
    meta = None
    if weights is not None:
        from .torch_weights import is_torch_file

        # Read (header only) before the user's code runs: a FIFO or a pickle is refused first. A
        # torch.save file the user names as one (.ckpt, .pt, ...) is read weights-only later instead.
        if not is_torch_file(weights):
            meta = read_header(weights, "weights file", ModelError, MAX_WEIGHTS_BYTES).metadata or {}
        if likelihood is None and meta:
            # Fine-tuned weights were trained with a likelihood; reopen them with the same one.
            likelihood = meta.get("likelihood") or None
    if isinstance(likelihood, str):
        likelihood = Likelihood.parse(likelihood)
    spec = str(spec)
    kind = spec_kind(spec)
    dataset, history, warnings = "", [], []
    if kind == "checkpoint":
        if weights is not None:
            raise ModelError("--weights goes with a Python or diffusers model SPEC; a checkpoint holds its own weights.")
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(spec, device=device)
        dataset, history, warnings = ckpt.dataset, list(ckpt.history), ckpt.warnings
        model = as_latent_model(ckpt.model, likelihood=likelihood)
    elif kind == "diffusers":
        from latentlab.core.models.diffusers_vae import load_diffusers

        from .diffusers_folder import check_folder

        model = load_diffusers(str(check_folder(spec.split(":", 1)[1])), likelihood=likelihood, device=device)
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
    if weights is None:
        return OpenedModel(model, dataset, history, tuple(warnings))
    if meta is None:
        # A torch.save file the user named (a Lightning .ckpt, a state_dict): weights only, no metadata.
        from .torch_weights import load_torch_weights

        load_torch_weights(model.weights_module(), weights)
        return OpenedModel(model, dataset, history, tuple(warnings))
    load_weights(model, weights)
    try:   # the dataset is needed before the model runs on data; its history only after (see check)
        dataset = validate_spec(meta["dataset"]) if meta.get("dataset") else ""
    except ValueError:
        dataset = ""   # check() says why
    return OpenedModel(model, dataset, [], (), meta)


def refuse_overwrite(out, spec: str, weights=None, flag: str = "--out") -> None:
    """A fine-tuned copy never replaces the user's own files (the model's code, checkpoint or weights,
    or anything inside a diffusers folder)."""
    from .atomic import refuse_input_as_output

    kind = spec_kind(spec)
    own = [weights] if weights is not None else []
    if kind in ("file", "checkpoint"):
        own.append(spec.rpartition(":")[0] if kind == "file" else spec)
    folders = [("the model folder", spec.split(":", 1)[1])] if kind in ("diffusers", "pythae") else []
    refuse_input_as_output(out, [("one of your model's own files", p) for p in own], folders=folders, flag=flag)


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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's file can raise anything
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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module can raise anything
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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's callable can raise anything: show its message
        # The sentence keeps the message's first line; the lines after it (load_state_dict's missing and
        # unexpected keys: the whole diagnosis) follow it, and --verbose shows the traceback.
        raise with_cause(ModelError(f"{name}() raised {type(exc).__name__}: {one_line(exc)}."), exc) from None


# --------------------------------------------------------------------------------------------
# weights files of fine-tuned foreign models

def save_weights(path, model: LatentModel, *, model_spec: str, dataset: str = "", history=()) -> Path:
    """The model's own state_dict as .safetensors, written atomically; the SPEC goes in the metadata."""
    from .atomic import atomic_writer
    from .safetensors_file import write_tensors

    path = Path(path)
    tensors, metadata = weights_tensors(model, model_spec=model_spec, dataset=dataset, history=history)
    with atomic_writer(path) as f, _weights_error():
        write_tensors(f, tensors, metadata)
    return path


def weights_bytes(model: LatentModel, *, model_spec: str, dataset: str = "", history=()) -> bytes:
    """save_weights' file contents, taken at once."""
    from .safetensors_file import tensors_bytes

    with _weights_error():
        return tensors_bytes(*weights_tensors(model, model_spec=model_spec, dataset=dataset, history=history))


def weights_tensors(model: LatentModel, *, model_spec: str, dataset: str = "", history=()) -> tuple[dict, dict]:
    """A weights file's tensors and metadata; the metadata is built as a checkpoint's is."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.weights_module().state_dict().items()}
    lik = None if getattr(model, "own_log_lik", False) else getattr(model, "likelihood", None)
    metadata = build_metadata(WEIGHTS_FORMAT, WEIGHTS_FORMAT_VERSION, latent_dim=model.latent_dim, dataset=dataset,
                              history=history, model_spec=str(model_spec),
                              likelihood=str(lik) if isinstance(lik, Likelihood) else "")
    return tensors, metadata


@contextmanager
def _weights_error():
    """A model whose weights cannot be written (tied tensors, a dtype safetensors lacks): one sentence."""
    try:
        yield
    except ValueError as exc:
        raise ModelError(f"Cannot save the model's weights: {one_line(exc)}.") from None


# torch's dtypes as safetensors names them, to compare a file's header with the model before reading.
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}


def load_weights(model: LatentModel, path) -> dict:
    """Put the weights of a file written by save_weights (or any plain safetensors state_dict of the
    same model) into `model`. The header is checked against the model (names, shapes, dtypes) before
    any tensor is read, then each tensor for finiteness. Returns the file's metadata."""
    path = Path(path)
    name = short(str(path), 120)
    header = read_header(path, "weights file", ModelError, MAX_WEIGHTS_BYTES)
    module = model.weights_module()
    expected = module.state_dict()
    unexpected = sorted(set(header.tensors) - set(expected))
    missing = sorted(set(expected) - set(header.tensors))
    if unexpected or missing:
        what = f"an unexpected tensor {quote(unexpected[0])}" if unexpected else f"no tensor {quote(missing[0])}"
        raise ModelError(f"{name} does not fit this model: it has {what}.")
    for key, entry in header.tensors.items():
        want = expected[key]
        if entry.shape != tuple(want.shape) or entry.dtype != _ST_DTYPES.get(want.dtype):
            raise ModelError(f"{name}: tensor {quote(key)} is {entry.dtype} {entry.shape}, the model expects "
                             f"{_ST_DTYPES.get(want.dtype, want.dtype)} {tuple(want.shape)}.")
    tensors = read_tensors(header, header.tensors, "pt", ModelError, "weights file")
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelError(f"{name}: tensor {quote(key)} contains NaN or infinite values.")
    module.load_state_dict(tensors)
    return header.metadata or {}


def save_model(path, model: LatentModel, *, dataset: str, history=(), train_config=None, preview=None) -> Path:
    """A checkpoint for latentlab's own VAE, a weights file with the SPEC for anything else, streamed
    to the file (core.files.safetensors_file), so a save on a worker leaves other threads the interpreter."""
    from latentlab.core.models.vae import VAE

    if isinstance(model, VAE):
        from .checkpoint import save_checkpoint

        return save_checkpoint(path, model, dataset=dataset, history=history, train_config=train_config,
                               preview=preview)
    return save_weights(path, model, model_spec=_spec_of(model), dataset=dataset, history=history)


def model_bytes(model: LatentModel, *, dataset: str, history=(), train_config=None, preview=None) -> bytes:
    """What save_model writes, taken at once (so it can be written on another thread). `preview`
    (latentlab's own VAE only): see checkpoint_bytes."""
    from latentlab.core.models.vae import VAE

    if isinstance(model, VAE):
        from .checkpoint import checkpoint_bytes

        return checkpoint_bytes(model, dataset=dataset, history=history, train_config=train_config, preview=preview)
    return weights_bytes(model, model_spec=_spec_of(model), dataset=dataset, history=history)


def _spec_of(model) -> str:
    spec = getattr(model, "spec", None)
    if not spec:
        raise LatentLabError("This model was not opened from a model SPEC, so its weights cannot be saved for reopening.")
    return spec

