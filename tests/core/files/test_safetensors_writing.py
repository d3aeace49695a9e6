"""latentlab's streaming .safetensors writer gives the file safetensors.torch.save gives (the same
bytes but for the order of the metadata's keys, which safetensors leaves to a hash map) for every
dtype, odd shapes, the metadata latentlab writes and its checkpoints; and it writes each tensor from
its own memory, without a copy of the file."""

import io
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from latentlab.core.files.checkpoint import checkpoint_tensors
from latentlab.core.files.safetensors_file import tensors_bytes, write_tensors
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.float16, torch.bfloat16, torch.int32,
          torch.uint32, torch.float32, torch.float64, torch.int64, torch.uint64]


def same_file(ours: bytes, theirs: bytes) -> bool:
    """Equal files: the same length, header (read as JSON: key order aside) and tensor bytes."""
    n = struct.unpack("<Q", ours[:8])[0]
    return (len(ours) == len(theirs) and ours[:8] == theirs[:8] and ours[8 + n:] == theirs[8 + n:]
            and json.loads(ours[8:8 + n]) == json.loads(theirs[8:8 + n]))


def tensor(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 100).to(dtype)


@pytest.mark.parametrize("metadata", [None, {}, {"z": "1", "a": "é/\"\\\n\u0001", "format": "x" * 1001}])
def test_every_dtype_and_shape_is_written_as_safetensors_writes_it(metadata):
    tensors = {}
    for i, dtype in enumerate(DTYPES):
        for j, shape in enumerate([(3, 5), (), (0, 4), (7,)]):
            tensors[f"{'BbaZ'[j]}.{dtype}".replace("torch.", "")] = tensor(dtype, shape, i * 10 + j)
    ours = tensors_bytes(tensors, metadata)
    assert same_file(ours, st_save(tensors, metadata=metadata))
    assert ours[8:].startswith(b'{"__metadata__"' if metadata is not None else b'{"')
    back = st_load(ours)
    assert all(torch.equal(back[k], v) for k, v in tensors.items())


def test_checkpoints_with_a_preview_are_byte_identical():
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0)
    means = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    tensors, metadata = checkpoint_tensors(model, dataset="digits", history=[{"epoch": 1, "recon": 3.5, "kl": 1.0}],
                                           preview=(means, np.arange(50) % 10, tuple("0123456789")))
    assert len(tensors) > len(model.state_dict())   # the preview's tensors are in
    assert same_file(tensors_bytes(tensors, metadata), st_save(tensors, metadata=metadata))


def test_overlapping_tensors_are_refused_as_safetensors_refuses_them():
    w = torch.randn(4, 4)
    for tensors in ({"a": w, "b": w}, {"a": w[:3], "b": w[2:]}):
        with pytest.raises(ValueError, match="share memory"):
            tensors_bytes(tensors)
        with pytest.raises(Exception):   # noqa: B017 - safetensors' own refusal, whatever its class
            st_save(tensors)
    apart = {"a": w[:2], "b": w[2:]}   # one buffer, disjoint: two tensors to both writers
    assert same_file(tensors_bytes(apart), st_save(apart))
    with pytest.raises(ValueError, match="no dtype"):
        tensors_bytes({"c": torch.zeros(2, dtype=torch.complex64)})


def test_tensor_bytes_go_to_the_file_straight_from_the_tensors_memory():
    """No copy of the data is made on the way (safetensors.torch.save builds the whole file as one bytes
    object under the interpreter lock): each tensor reaches the file's write as a view of its own memory,
    so the copy happens inside the write, which lets other threads run."""
    tensors = {"w": torch.randn(300, 200), "b": torch.randn(200), "i": torch.arange(7)}

    class Sink(io.RawIOBase):
        def __init__(self):
            self.writes = []

        def writable(self):
            return True

        def write(self, b):
            view = memoryview(b)
            self.writes.append((np.frombuffer(view, np.uint8).ctypes.data if view.nbytes else 0, view.nbytes))
            return view.nbytes

    sink = Sink()
    write_tensors(sink, tensors, {"a": "b"})
    data = sink.writes[2:]   # after the header's length and the header
    assert sorted(data) == sorted((t.data_ptr(), t.numel() * t.element_size()) for t in tensors.values())
