"""Model SPECs: opening the user's code, every bad input as one sentence, weights files, and
checkpoints that never cause an import."""

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError
from latentlab.core.files.bundled import default_checkpoint
from latentlab.core.files.model_spec import load_model, load_weights, save_weights, spec_kind
from latentlab.core.inference.analysis import evaluate
from latentlab.core.models.adapters import validate
from latentlab.core.models.vae import VAE

VAE_SOURCE = '''
import torch
from torch import nn

class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Linear(64, 4)
        self.dec = nn.Linear(2, 64)

    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, 1)

    def decode(self, z):
        return self.dec(z)

def make():
    return MyVAE()

INSTANCE = MyVAE()

def broken():
    raise RuntimeError("the weights are on another disk")

def not_a_vae():
    return torch.nn.Linear(3, 3)

def a_number():
    return 42
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_vae.py"
    path.write_text(VAE_SOURCE)
    return path


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_spec_kinds():
    assert spec_kind("a/b.safetensors") == "checkpoint"
    assert spec_kind("a/b.py:make") == "file"
    assert spec_kind("pkg.mod:make") == "module"
    assert spec_kind("diffusers:some/dir") == "diffusers"
    with pytest.raises(LatentLabError, match="is not PATH.safetensors"):
        spec_kind("just-a-name")


def test_file_spec_callable_and_instance(user_file, digits):
    for name in ("make", "INSTANCE", "MyVAE"):
        m = validate(load_model(f"{user_file}:{name}"), digits.x_train[:4])
        assert m.latent_dim == 2 and m.image_shape == (1, 8, 8) and m.spec == f"{user_file}:{name}"


def test_module_spec(user_file, digits, monkeypatch):
    monkeypatch.syspath_prepend(str(user_file.parent))
    m = validate(load_model("my_vae:make"), digits.x_train[:4])
    assert m.latent_dim == 2
    sys.modules.pop("my_vae", None)


@pytest.mark.parametrize("name, fragment", [
    ("nothing_here", "has no 'nothing_here'"),
    ("broken", "broken() raised RuntimeError: the weights are on another disk."),
    ("not_a_vae", "has no encode() method"),
    ("a_number", "is a int, not a torch nn.Module"),
])
def test_bad_callables_give_one_sentence(user_file, name, fragment):
    with pytest.raises(LatentLabError) as info:
        load_model(f"{user_file}:{name}")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_module_and_import_errors(tmp_path):
    with pytest.raises(LatentLabError, match="does not exist"):
        load_model(f"{tmp_path}/nope.py:make")
    with pytest.raises(LatentLabError, match="No Python module named 'no_such_pkg_xyz'"):
        load_model("no_such_pkg_xyz.mod:make")
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('needs a package you do not have')\n")
    with pytest.raises(LatentLabError, match="Importing .*bad.py failed: ImportError: needs a package"):
        load_model(f"{bad}:make")


def test_model_that_does_not_fit_the_data(user_file):
    sprites = load_dataset("sprites")
    with pytest.raises(LatentLabError, match=r"encoding images of shape \(1, 32, 32\)"):
        validate(load_model(f"{user_file}:make"), sprites.x_train[:4])


@pytest.mark.parametrize("args, fragment", [
    (["--model", "{f}:broken"], "broken() raised RuntimeError"),
    (["--model", "{f}:make", "--dataset", "sprites"], "encoding images of shape (1, 32, 32)"),
    (["--model", "{f}:make", "--likelihood", "poisson"], "Unknown likelihood 'poisson'"),
    (["--model", "{f}:make", "--weights", "{d}/none.safetensors"], "does not exist"),
    (["--model", "diffusers:{d}/nowhere"], "is not a folder"),
])
def test_cli_eval_bad_input_is_one_sentence(user_file, capsys, args, fragment):
    argv = ["eval", *[a.format(f=user_file, d=user_file.parent) for a in args]]
    if "--dataset" not in argv:
        argv += ["--dataset", "digits"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentlab: error:") and fragment in err[0]


def test_cli_eval_json_on_a_user_model(user_file, capsys):
    assert main(["eval", "--model", f"{user_file}:make", "--dataset", "digits", "--iw-samples", "10", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["latent_dim"] == 2 and stats["model"] == f"{user_file}:make"
    assert stats["gap"] == pytest.approx(stats["log_px_iw"] - stats["elbo"])
    # the positional checkpoint and --checkpoint keep working
    assert main(["eval", "--checkpoint", str(default_checkpoint()), "--iw-samples", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latent_dim"] == 2


def test_fine_tuning_lowers_the_loss_and_never_writes_the_source(user_file, tmp_path, capsys, digits):
    src_weights = tmp_path / "orig.safetensors"
    save_file(load_model(f"{user_file}:make").weights_module().state_dict(), str(src_weights))
    before = {p: p.read_bytes() for p in (user_file, src_weights)}
    spec = f"{user_file}:make"
    start = evaluate(validate(load_model(spec, weights=src_weights), digits.x_test), digits.x_test)
    out = tmp_path / "tuned.safetensors"
    code = main(["train", "--model", spec, "--weights", str(src_weights), "--dataset", "digits", "--out", str(out),
                 "--epochs", "3", "--json"])
    assert code == 0, capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    tuned = validate(load_model(spec, weights=out), digits.x_test)
    assert evaluate(tuned, digits.x_test)["elbo"] > start["elbo"] + 1.0
    # the output cannot be one of the user's own files
    assert main(["train", "--model", spec, "--weights", str(src_weights), "--dataset", "digits",
                 "--out", str(src_weights), "--epochs", "1"]) == 2
    assert "your model's own files" in capsys.readouterr().err
    assert src_weights.read_bytes() == before[src_weights]


def test_weights_round_trip_and_hostile_weights(user_file, tmp_path):
    spec = f"{user_file}:make"
    m = load_model(spec)
    with torch.no_grad():
        m.net.dec.bias.fill_(0.25)
    path = save_weights(tmp_path / "w.safetensors", m, model_spec=spec, dataset="digits", history=[{"epoch": 1}])
    meta = load_weights(load_model(spec), path)
    assert meta["model_spec"] == spec and meta["dataset"] == "digits"
    assert float(load_model(spec, weights=path).net.dec.bias[0].detach()) == 0.25

    evil = tmp_path / "evil.safetensors"
    marker = tmp_path / "pwned"
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(LatentLabError, match="pickle"):
        load_model(spec, weights=evil)
    assert not marker.exists()
    wrong = tmp_path / "wrong.safetensors"
    save_file({"enc.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(LatentLabError, match="does not fit this model"):
        load_model(spec, weights=wrong)
    nan = dict(m.net.state_dict())
    nan["dec.bias"] = torch.full((64,), float("nan"))
    save_file(nan, str(wrong))
    with pytest.raises(LatentLabError, match="NaN"):
        load_model(spec, weights=wrong)


def test_checkpoint_metadata_naming_a_module_never_imports_it(tmp_path, monkeypatch):
    """A checkpoint (or weights file) whose metadata names Python code is opened without importing it."""
    marker = tmp_path / "imported"
    (tmp_path / "planted_mod_xyz.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef make():\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = default_checkpoint().read_bytes()
    n = int.from_bytes(src[:8], "little")
    header = json.loads(src[8:8 + n])
    header["__metadata__"]["model_spec"] = "planted_mod_xyz:make"
    new = json.dumps(header).encode()
    planted = tmp_path / "planted.safetensors"
    planted.write_bytes(len(new).to_bytes(8, "little") + new + src[8 + n:])
    model = load_model(str(planted))
    assert isinstance(model, VAE) and model.latent_dim == 2
    # a weights file names its model: the message repeats the name, nothing is imported
    header["__metadata__"]["format"] = "latentlab-weights"
    new = json.dumps(header).encode()
    planted.write_bytes(len(new).to_bytes(8, "little") + new + src[8 + n:])
    with pytest.raises(LatentLabError, match="--model planted_mod_xyz:make --weights"):
        load_model(str(planted))
    assert not marker.exists() and "planted_mod_xyz" not in sys.modules


def test_weights_remember_their_likelihood_and_float64_models_work(user_file, tmp_path, digits):
    spec = f"{user_file}:make"
    path = save_weights(tmp_path / "w.safetensors", load_model(spec, likelihood="gaussian:0.2"), model_spec=spec)
    assert str(load_model(spec, weights=path).likelihood) == "gaussian:0.2"
    assert str(load_model(spec, weights=path, likelihood="bernoulli").likelihood) == "bernoulli"
    wide = validate(load_model(spec).double(), digits.x_train[:4])   # latentlab's float32 images, float64 weights
    stats = evaluate(wide, digits.x_test[:20], iw_samples=3)
    assert np.isfinite(stats["elbo"]) and stats["latent_dim"] == 2


def test_help_documents_model_specs_and_gui_refuses_a_bad_spec_in_one_sentence(user_file, capsys):
    from latentlab.cli import build_parser

    text = build_parser().format_help()
    for form in ("PATH.safetensors", "PATH.py:NAME", "package.module:NAME", "diffusers:DIR", "this runs your code"):
        assert form in text
    for args, fragment in ((["--model", "no_colon_here"], "is not PATH.safetensors"),
                           (["--weights", "w.safetensors"], "go with --model"),
                           (["--model", f"{user_file}:make", "--checkpoint", "c.safetensors"], "not both")):
        assert main(["gui", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0]
