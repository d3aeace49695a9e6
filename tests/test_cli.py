import json
import subprocess
import sys

import pytest

from latentlab.cli import main
from latentlab.core.files.checkpoint import load_checkpoint


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_says_how_many_threads_it_trains_on(tmp_path, capsys, monkeypatch):
    """The count LATENTLAB_THREADS sets (or the free cores) is on the start line and in the JSON."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("LATENTLAB_THREADS", "1")
    try:
        code, stdout, stderr = run(capsys, "train", "--dataset", "digits", "--out", str(tmp_path / "m.safetensors"),
                                   "--epochs", "1", "--hidden", "16", "--device", "cpu", "--json")
        assert code == 0 and json.loads(stdout)["threads"] == 1
        monkeypatch.delenv("LATENTLAB_THREADS")
        code, stdout, stderr = run(capsys, "train", "--dataset", "digits", "--out", str(tmp_path / "n.safetensors"),
                                   "--epochs", "1", "--hidden", "16", "--device", "cpu")
        assert code == 0 and f"on cpu, {torch.get_num_threads()} thread" in stderr
    finally:
        torch.set_num_threads(before)


def test_train_json_then_eval_json(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    code, stdout, stderr = run(capsys, "train", "--dataset", "digits", "--out", str(out), "--epochs", "3",
                               "--hidden", "64", "--latent-dim", "3", "--json", "--device", "cpu")
    assert code == 0
    # Not a terminal: one progress line per epoch on stderr, the JSON alone on stdout.
    epochs = [ln for ln in stderr.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/3", "2/3", "3/3"] and all("samples/s" in ln for ln in epochs)
    result = json.loads(stdout)
    assert result["epochs"] == 3 and result["device"] == "cpu"
    for split in ("train", "test"):
        assert result[split]["elbo"] == pytest.approx(-(result[split]["recon"] + result[split]["kl"]))
    assert result["samples_per_s"] > 0 and result["threads"] >= 1
    ckpt = load_checkpoint(out)
    assert ckpt.config.latent_dim == 3 and ckpt.config.hidden == (64,) and len(ckpt.history) == 3

    code, stdout, _ = run(capsys, "eval", str(out), "--iw-samples", "50", "--json")
    stats = json.loads(stdout)
    assert code == 0 and stats["latent_dim"] == 3 and len(stats["kl_per_dim"]) == 3
    assert stats["kl"] == pytest.approx(sum(stats["kl_per_dim"]), rel=1e-6)
    assert stats["log_px_iw"] > stats["elbo"] - 0.5 and stats["gap"] == pytest.approx(stats["log_px_iw"] - stats["elbo"])
    # Active units as the model itself gives them: dimensions whose test-set means vary.
    from latentlab.core.data.specs import load_dataset
    from latentlab.core.inference.analysis import active_units, encode

    mu, _ = encode(ckpt.model, load_dataset("digits").x_test)
    assert stats["active_units"] == int(active_units(mu).sum())
    # The finished checkpoint carries its latent preview: the training images' means under its weights.
    from latentlab.core.files.preview import read_preview

    data = load_dataset("digits")
    preview = read_preview(out, latent_dim=3)
    assert preview is not None and (preview.labels == data.y_train).all()
    assert abs(preview.means - encode(ckpt.model, data.x_train)[0]).max() < 1e-5


def test_resume_continues_the_history(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert run(capsys, "train", "--dataset", "digits", "--out", str(out), "--epochs", "2", "--hidden", "32", "--json")[0] == 0
    assert run(capsys, "train", "--dataset", "digits", "--out", str(out), "--epochs", "1", "--resume", str(out),
               "--beta", "3", "--json")[0] == 0
    history = load_checkpoint(out).history
    assert [r["epoch"] for r in history] == [1, 2, 3] and history[-1]["beta"] == 3.0


def test_human_readable_eval_of_the_bundled_model(capsys):
    from latentlab.core.files.bundled import default_checkpoint

    code, stdout, _ = run(capsys, "eval", str(default_checkpoint()), "--iw-samples", "20")
    assert code == 0 and "ELBO" in stdout and "active units  2 of 2" in stdout


@pytest.mark.parametrize("args, fragment", [
    (("train", "--dataset", "nope", "--out", "x.safetensors"), "nope"),
    (("train", "--dataset", "mnist:/does/not/exist", "--out", "x.safetensors"), "/does/not/exist"),
    (("train", "--dataset", "digits", "--out", "x.safetensors", "--epochs", "0"), "epochs"),
    (("eval", "/does/not/exist.safetensors"), "does not exist"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentlab: error:") and fragment in lines[0]


def test_eval_refuses_a_pickle_without_running_it(tmp_path, capsys):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Payload()))
    code, _, err = run(capsys, "eval", str(bad))
    assert code == 2 and "pickle" in err and not marker.exists()


def test_help_documents_commands_and_specs():
    result = subprocess.run([sys.executable, "-m", "latentlab", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for word in ("gui", "train", "eval", "digits", "sprites", "mnist:DIR", "npz:FILE", "images:DIR"):
        assert word in result.stdout


def test_gui_without_a_display_says_so(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, _, err = run(capsys, "gui")
    assert code == 2 and "no display" in err


@pytest.mark.parametrize("flag, field", [
    ("--latent-dim", "latent_dim"), ("--epochs", "epochs"), ("--batch-size", "batch_size"), ("--lr", "lr"),
    ("--beta", "beta"), ("--warmup-steps", "warmup_steps"), ("--free-bits", "free_bits"), ("--seed", "seed"),
])
def test_train_options_take_exactly_what_the_configs_take(flag, field):
    """The command line and the configs checked at both ends of each range: what one accepts the other does."""
    from latentlab.cli.arguments import build_parser
    from latentlab.core.models.config import BOUNDS, ModelConfig, TrainConfig

    def config(value):
        if field == "latent_dim":
            return ModelConfig(image_shape=(1, 8, 8), latent_dim=value)
        return TrainConfig(**{field: value})

    def parsed(value) -> bool:
        try:
            build_parser().parse_args(["train", "--dataset", "digits", "--out", "m.safetensors", flag, repr(value)])
        except SystemExit:
            return False
        return True

    bound = BOUNDS[field]
    step = 1 if bound.whole else bound.hi * 1e-3
    inside = [bound.hi, bound.lo + step if bound.above else bound.lo]
    outside = [bound.hi + step, bound.lo if bound.above else bound.lo - step]
    for value in inside:
        assert parsed(value)
        config(value)
    for value in outside:
        assert not parsed(value)
        with pytest.raises(ValueError, match=field):
            config(value)
