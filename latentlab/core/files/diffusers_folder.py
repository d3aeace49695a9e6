"""A `diffusers:DIR` folder checked before diffusers reads any of it.

diffusers reads `config.json` and then the weights its sharded index names (any file, a pickled
`.bin` included, which torch unpickles) or `diffusion_pytorch_model.safetensors`. So, first:

- config.json is a regular file of at most MAX_CONFIG_BYTES holding a JSON object, and every field of
  AutoencoderKL that sizes the model is checked by type and bound (a config that asks for 200,000
  layers per block is refused before a module is built, as are the values diffusers would answer
  with "integer division or modulo by zero");
- every weights file diffusers would read, by index or by name, is a .safetensors file whose header
  checks out (core.files.safetensors_file): an index naming a pickle, an empty or truncated
  `.safetensors`, a FIFO in the folder, each is one sentence;
- the model the config describes is built on torch's meta device (nothing allocated) and its tensors'
  names and shapes compared with the files' headers, and its size with free memory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from latentlab.core.data.checks import open_regular
from latentlab.core.errors import LatentLabError, ModelError, ResourceError
from latentlab.core.memory import check_fits
from latentlab.core.text import quote, reason, short

from .safetensors_file import Header, read_header

MAX_CONFIG_BYTES = 1 << 20       # a real AutoencoderKL config.json is about 1 KB
MAX_INDEX_BYTES = 16 << 20
SAFE_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = SAFE_NAME + ".index.json"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


def _whole(lo: int, hi: int):
    return lambda v: type(v) is int and lo <= v <= hi, f"a whole number from {lo:,} to {hi:,}"


def _names(*allowed):
    return (lambda v: isinstance(v, list) and 1 <= len(v) <= 8 and all(n in allowed for n in v),
            f"a list of 1 to 8 of {', '.join(allowed)}")


def _number_or_none(v) -> bool:
    return v is None or (type(v) in (int, float) and math.isfinite(v))


def _numbers_or_none(v) -> bool:
    return v is None or (isinstance(v, list) and len(v) <= 4096 and all(_number_or_none(x) and x is not None for x in v))


# AutoencoderKL's arguments: (check, what it must be). The bounds are far beyond any published
# autoencoder (Stable Diffusion's: 4 blocks of up to 512 channels, 2 layers each) and keep the meta
# build below a second.
FIELDS = {
    "in_channels": _whole(1, 64),
    "out_channels": _whole(1, 64),
    "down_block_types": _names("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
    "up_block_types": _names("UpDecoderBlock2D", "AttnUpDecoderBlock2D"),
    "block_out_channels": (lambda v: isinstance(v, list) and 1 <= len(v) <= 8
                           and all(type(c) is int and 1 <= c <= 4096 for c in v),
                           "a list of 1 to 8 whole numbers from 1 to 4,096"),
    "layers_per_block": _whole(1, 8),
    "act_fn": (lambda v: v in ("swish", "silu", "mish", "gelu", "relu"), "one of swish, silu, mish, gelu, relu"),
    "latent_channels": _whole(1, 1024),
    "norm_num_groups": _whole(1, 4096),
    "sample_size": (lambda v: (type(v) is int and 1 <= v <= 65536)
                    or (isinstance(v, list) and len(v) == 2 and all(type(s) is int and 1 <= s <= 65536 for s in v)),
                    "a whole number (or two) from 1 to 65,536"),
    "scaling_factor": (lambda v: type(v) in (int, float) and math.isfinite(v) and v != 0, "a finite non-zero number"),
    "shift_factor": (_number_or_none, "a finite number or null"),
    "latents_mean": (_numbers_or_none, "a list of finite numbers or null"),
    "latents_std": (_numbers_or_none, "a list of finite numbers or null"),
    "force_upcast": (lambda v: type(v) is bool, "true or false"),
    "use_quant_conv": (lambda v: type(v) is bool, "true or false"),
    "use_post_quant_conv": (lambda v: type(v) is bool, "true or false"),
    "mid_block_add_attention": (lambda v: type(v) is bool, "true or false"),
}
_BLOCKS = (lambda v: isinstance(v, list) and 1 <= len(v) <= 8 and all(type(c) is int and 1 <= c <= 4096 for c in v),
           "a list of 1 to 8 whole numbers from 1 to 4,096")
# AutoencoderTiny's (its encoder gives one code: latentlab opens it as a deterministic autoencoder).
TINY_FIELDS = {
    "in_channels": _whole(1, 64),
    "out_channels": _whole(1, 64),
    "encoder_block_out_channels": _BLOCKS,
    "decoder_block_out_channels": _BLOCKS,
    "num_encoder_blocks": (lambda v: isinstance(v, list) and 1 <= len(v) <= 8 and all(type(c) is int and 1 <= c <= 16
                                                                                      for c in v),
                           "a list of 1 to 8 whole numbers from 1 to 16"),
    "num_decoder_blocks": (lambda v: isinstance(v, list) and 1 <= len(v) <= 8 and all(type(c) is int and 1 <= c <= 16
                                                                                      for c in v),
                           "a list of 1 to 8 whole numbers from 1 to 16"),
    "act_fn": (lambda v: v in ("swish", "silu", "mish", "gelu", "relu"), "one of swish, silu, mish, gelu, relu"),
    "upsample_fn": (lambda v: v in ("nearest", "bilinear", "bicubic"), "one of nearest, bilinear, bicubic"),
    "latent_channels": _whole(1, 1024),
    "upsampling_scaling_factor": _whole(1, 8),
    "latent_magnitude": (lambda v: type(v) in (int, float) and math.isfinite(v) and v > 0, "a finite positive number"),
    "latent_shift": (lambda v: type(v) in (int, float) and math.isfinite(v), "a finite number"),
    "force_upcast": (lambda v: type(v) is bool, "true or false"),
    "scaling_factor": (lambda v: type(v) in (int, float) and math.isfinite(v) and v != 0, "a finite non-zero number"),
    "shift_factor": (_number_or_none, "a finite number or null"),
}
CLASSES = {"AutoencoderKL": FIELDS, "AutoencoderTiny": TINY_FIELDS}
# Names of the attention layers diffusers renames on load (checkpoints from before diffusers 0.15).
DEPRECATED_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def check_folder(folder) -> Path:
    """The folder, once its config and weights check out (see the module docstring); ModelError or
    ResourceError with one sentence otherwise."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelError(f"diffusers:{short(str(folder), 120)} is not a folder (it needs the folder "
                         "AutoencoderKL.save_pretrained wrote).")
    name = short(str(path), 120)
    if not (path / "config.json").exists():
        raise ModelError(f"{name} has no config.json, so it is not a diffusers model folder.")
    config = read_config(path / "config.json")
    headers = weights_headers(path)
    check_weights_fit(config, headers, name)
    return path


def read_config(path: Path) -> dict:
    """config.json as a dict whose AutoencoderKL fields are all within bounds."""
    name = short(str(path), 120)
    with open_regular(path, ModelError, "config.json") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ModelError(f"{name} is larger than {MAX_CONFIG_BYTES // 1024:,} KB, far more than a model's "
                         "config needs.")
    try:
        config = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelError(f"{name} is nested too deeply to be a model config.") from None
    except ValueError as exc:
        raise ModelError(f"{name} is not valid JSON ({reason(exc, 80)}).") from None
    if not isinstance(config, dict):
        raise ModelError(f"{name} is not a JSON object.")
    cls = config.get("_class_name", "AutoencoderKL")
    if cls not in CLASSES:
        raise ModelError(f"{short(str(path.parent), 120)} holds a diffusers {quote(cls, 40)}; latentlab opens "
                         "AutoencoderKL and AutoencoderTiny folders.")
    config["_class_name"] = cls
    for key, (ok, what) in CLASSES[cls].items():
        if key in config and not ok(config[key]):
            raise ModelError(f"{name}: {key} is {quote(config[key], 40)}; it must be {what}.")
    if cls == "AutoencoderTiny":
        for key in ("encoder_block_out_channels", "num_encoder_blocks", "decoder_block_out_channels", "num_decoder_blocks"):
            pair = "num_encoder_blocks" if key.startswith("encoder") else "num_decoder_blocks"
            if key.endswith("channels") and len(config.get(key, [64] * 4)) != len(config.get(pair, [1, 3, 3, 3])):
                raise ModelError(f"{name}: {key} and {pair} must list the same number of blocks.")
        return config
    blocks = config.get("block_out_channels", [64])
    for key in ("down_block_types", "up_block_types"):
        if key in config and len(config[key]) != len(blocks):
            raise ModelError(f"{name}: {key} lists {len(config[key])} blocks but block_out_channels "
                             f"{len(blocks)}; they must match.")
    groups = config.get("norm_num_groups", 32)
    if any(c % groups for c in blocks):
        raise ModelError(f"{name}: norm_num_groups {groups} does not divide every one of block_out_channels "
                         f"{blocks}.")
    return config


def weights_headers(folder: Path) -> list[Header]:
    """The checked headers of every file diffusers would read weights from: the shards its index
    names (all .safetensors), else diffusion_pytorch_model.safetensors."""
    index = folder / INDEX_NAME
    if index.exists() or index.is_symlink():
        return [read_header(folder / shard, "weights file", ModelError) for shard in _shards(index)]
    if not (folder / SAFE_NAME).exists():
        if any(folder.glob("*.bin")) or any(folder.glob("*.bin.index.json")):
            raise ModelError(f"{short(str(folder), 120)} holds only pickled .bin weights, which latentlab never "
                             "loads; re-save it with save_pretrained(..., safe_serialization=True).")
        raise ModelError(f"{short(str(folder), 120)} has no .safetensors weights ({SAFE_NAME}).")
    return [read_header(folder / SAFE_NAME, "weights file", ModelError)]


def _shards(index: Path) -> list[str]:
    name = short(str(index), 120)
    with open_regular(index, ModelError, "weights index") as f:
        raw = f.read(MAX_INDEX_BYTES + 1)
    try:
        if len(raw) > MAX_INDEX_BYTES:
            raise ValueError("it is far larger than an index")
        weight_map = json.loads(raw.decode("utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError("its weight_map does not map names to files")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelError(f"{name} is not a weights index ({reason(exc, 80)}).") from None
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if not shard.endswith(".safetensors"):
            raise ModelError(f"{name} names the weights file {quote(shard, 60)}, which is not .safetensors; latentlab "
                             "never loads pickled weights.")
        if Path(shard).name != shard or shard in (".", ".."):
            raise ModelError(f"{name} names the weights file {quote(shard, 60)} outside its folder.")
    if not shards:
        raise ModelError(f"{name} names no weights files.")
    return shards


def check_weights_fit(config: dict, headers: list[Header], name: str) -> None:
    """The model the config describes, built on the meta device, against the files' tensors: the
    same names and shapes, floating-point values, and room in memory to build it."""
    expected = _meta_state(config, name)
    found = {}
    for header in headers:
        for key, entry in header.tensors.items():
            found[_renamed(key)] = (entry, header.path.name)
    unexpected = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    if unexpected or missing:
        what = (f"the tensor {quote(unexpected[0], 80)}, which the config's model does not have" if unexpected
                else f"no tensor {quote(missing[0], 80)}, which the config's model needs")
        raise ModelError(f"The weights in {name} do not fit its config.json: they hold {what}.")
    for key, (entry, file) in found.items():
        shape = tuple(expected[key].shape)
        if entry.shape != shape:
            raise ModelError(f"The weights in {name} do not fit its config.json: {quote(key, 80)} in {file} has shape "
                             f"{list(entry.shape)}, the config's model needs {list(shape)}.")
        if entry.dtype not in FLOAT_DTYPES:
            raise ModelError(f"{name}: {quote(key, 80)} in {file} holds {entry.dtype} values; a model's weights "
                             "are floating-point numbers.")
    need = 4 * sum(math.prod(t.shape) for t in expected.values())
    try:   # the model in float32, and the weights as read before they are copied in
        check_fits(2 * need, f"The autoencoder in {name}")
    except ResourceError as exc:
        raise ResourceError(str(exc)) from None


def _renamed(key: str) -> str:
    head, _, last = key.rpartition(".")
    head, _, layer = head.rpartition(".")
    if layer in DEPRECATED_ATTENTION and last in ("weight", "bias"):
        return f"{head}.{DEPRECATED_ATTENTION[layer]}.{last}"
    return key


def _meta_state(config: dict, name: str) -> dict:
    import torch

    try:
        import diffusers
    except ImportError:
        raise ModelError("Opening a diffusers:DIR model needs diffusers: pip install latentlab[diffusers].") from None
    cls = config.get("_class_name", "AutoencoderKL")
    fields = CLASSES[cls]
    args = {k: tuple(v) if isinstance(v, list) and k != "sample_size" else v
            for k, v in config.items() if k in fields}
    try:
        with torch.device("meta"):
            return getattr(diffusers, cls)(**args).state_dict()
    except (LatentLabError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a config the field checks let through but diffusers refuses
        raise ModelError(f"{name}: diffusers cannot build the model its config.json describes ({reason(exc, 120)}).") from None
