"""Other libraries' VAEs through the command line: a Tanh decoder read as logits is said, Lightning
checkpoints and torch.save state dicts go in with --weights (weights only, nothing runs), a failing
load_state_dict keeps its missing keys, a model with .encoder/.decoder gets a hint, channels-last
arrays reach the model in plain layout, and eval shows progress, takes --limit, scales IW down for a
costly decoder and stops on Ctrl+C without a traceback."""

import json

import numpy as np
import pytest
import torch
from foreign_models import AntixKVanillaVAE, lightning_checkpoint

import latentlab
from latentlab.cli import main

EVAL = ["eval", "--dataset", "digits", "--json"]


def run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_tanh_decoder_read_as_bernoulli_logits_is_said(capsys):
    code, out, err = run(capsys, [*EVAL, "--model", "foreign_models:AntixKVanillaVAE", "--iw-samples", "0"])
    assert code == 0
    assert "Tanh" in err and "--likelihood gaussian" in err
    assert any("Tanh" in n for n in json.loads(out)["notes"])
    code, out, err = run(capsys, [*EVAL, "--model", "foreign_models:AntixKVanillaVAE", "--iw-samples", "0",
                                  "--likelihood", "gaussian:0.1"])
    assert code == 0 and "Tanh" not in err
    # encode says it too
    code, _, err = run(capsys, ["encode", "--model", "foreign_models:AntixKVanillaVAE", "--dataset", "digits",
                                "--out", "/dev/null.csv"])
    assert "Tanh" in err


def test_a_lightning_checkpoint_is_read_as_weights(tmp_path, capsys):
    trained = AntixKVanillaVAE()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ckpt = tmp_path / "epoch=3-step=120.ckpt"
    lightning_checkpoint(trained, ckpt)
    argv = [*EVAL, "--model", "foreign_models:AntixKVanillaVAE", "--weights", str(ckpt), "--iw-samples", "0",
            "--likelihood", "gaussian:0.1"]
    code, out, err = run(capsys, argv)
    assert code == 0, err
    ours = json.loads(out)
    from latentlab.core.data.specs import load_dataset

    direct = latentlab.evaluate(trained.eval(), load_dataset("digits"), iw_samples=0, likelihood="gaussian:0.1")
    assert ours["elbo"] == pytest.approx(direct["elbo"], rel=1e-6)
    # a bare torch.save state dict, no prefix, the same way
    sd = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), sd)
    code, out, err = run(capsys, [*argv[:-6], "--weights", str(sd), "--iw-samples", "0", "--likelihood", "gaussian:0.1"])
    assert code == 0, err
    assert json.loads(out)["elbo"] == pytest.approx(direct["elbo"], rel=1e-6)


class Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path("/tmp/latentlab-ckpt-ran"),))


def test_a_checkpoint_holding_objects_is_refused_and_runs_nothing(tmp_path, capsys):
    import pathlib

    pathlib.Path("/tmp/latentlab-ckpt-ran").unlink(missing_ok=True)
    ckpt = tmp_path / "bad.ckpt"
    lightning_checkpoint(AntixKVanillaVAE(), ckpt, extra={"hyper_parameters": Payload()})
    code, _, err = run(capsys, [*EVAL, "--model", "foreign_models:AntixKVanillaVAE", "--weights", str(ckpt)])
    assert code == 2 and "weights-only" in err and "nothing in it ran" in err and "Traceback" not in err
    assert not pathlib.Path("/tmp/latentlab-ckpt-ran").exists()
    # weights that do not fit name the keys
    torch.save({"state_dict": {"model.other.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    code, _, err = run(capsys, [*EVAL, "--model", "foreign_models:AntixKVanillaVAE", "--weights", str(tmp_path / "other.ckpt")])
    assert code == 2 and "Missing key(s): 'decoder.0.bias', 'decoder.0.weight'" in err
    assert "Unexpected key(s): 'model.other.weight'" in err


def test_a_failing_load_state_dict_keeps_its_diagnosis(capsys):
    code, _, err = run(capsys, [*EVAL, "--model", "foreign_models:antixk_with_wrong_keys"])
    lines = err.strip().splitlines()
    assert code == 2 and lines[0].startswith("latentlab: error: antixk_with_wrong_keys() raised RuntimeError")
    assert any("Missing key(s)" in line and "encoder.0.0.weight" in line for line in lines[1:])
    assert any("Unexpected key(s)" in line for line in lines[1:]) and "Traceback" not in err
    code, _, err = run(capsys, [*EVAL, "--model", "foreign_models:antixk_with_wrong_keys", "--verbose"])
    assert "Traceback" in err and "load_state_dict" in err


def test_encoder_and_decoder_without_encode_get_a_hint(capsys):
    code, _, err = run(capsys, [*EVAL, "--model", "foreign_models:BurgessVAE"])
    assert code == 2 and ".encoder and .decoder" in err and "def encode(self, x)" in err


@pytest.fixture()
def channels_last_npz(tmp_path):
    x = (np.random.default_rng(0).random((60, 8, 8, 1)) * 255).astype(np.uint8)
    np.savez(tmp_path / "nhwc.npz", x=x)
    return tmp_path / "nhwc.npz", x


def test_channels_last_arrays_reach_the_model_in_plain_layout(channels_last_npz, tmp_path, capsys):
    path, x = channels_last_npz
    code, out, err = run(capsys, ["eval", "--model", "foreign_models:ViewConvVAE", "--dataset", f"npz:{path}",
                                  "--iw-samples", "2", "--json"])
    assert code == 0, err
    code, _, err = run(capsys, ["encode", "--model", "foreign_models:ViewConvVAE", "--dataset", f"npz:{path}",
                                "--out", str(tmp_path / "t.csv")])
    assert code == 0, err
    from foreign_models import ViewConvVAE

    stats = latentlab.evaluate(ViewConvVAE(), x, iw_samples=2)
    assert stats["examples"] == 60


def test_evaluate_scores_every_image_it_is_given():
    from foreign_models import ViewConvVAE

    x = np.random.default_rng(1).random((37, 1, 8, 8)).astype(np.float32)
    assert latentlab.evaluate(ViewConvVAE(), x, iw_samples=0)["examples"] == 37
    assert latentlab.evaluate(ViewConvVAE(), x, iw_samples=0, split="test")["examples"] < 37


def test_eval_progress_limit_and_iw_for_a_costly_decoder(capsys, monkeypatch):
    import latentlab.cli.evaluate as cli_eval

    monkeypatch.setattr(cli_eval, "LOG_PROGRESS_AFTER_S", 0.0)   # a log shows progress once an evaluation is long
    code, out, err = run(capsys, [*EVAL, "--model", "foreign_models:ViewConvVAE", "--limit", "50", "--iw-samples", "3"])
    stats = json.loads(out)
    assert code == 0 and stats["examples"] == 50 and "evaluating: 50 of 50 images" in err

    monkeypatch.setattr(cli_eval, "_decode_seconds", lambda model, n=16: 0.01)   # 10 ms a decode
    code, out, err = run(capsys, [*EVAL, "--model", "foreign_models:ViewConvVAE", "--limit", "200"])
    stats = json.loads(out)
    assert code == 0 and stats["iw_samples"] < 100 and "IW-100 would decode for about" in err


@pytest.mark.parametrize("when", ["opening", "evaluating"])
def test_ctrl_c_stops_eval_without_a_traceback(capsys, tmp_path, when):
    np.savez(tmp_path / "many.npz", x=np.zeros((3000, 8, 8), np.uint8), x_test=np.zeros((2000, 8, 8), np.uint8))
    code, out, err = run(capsys, ["eval", "--model", f"foreign_models:interrupted_while_{when}", "--dataset",
                                  f"npz:{tmp_path / 'many.npz'}", "--iw-samples", "0", "--json"])
    assert code == 130 and out == "" and "stopped" in err and "Traceback" not in err


def test_fine_tuned_diffusers_and_pythae_models_go_back_to_their_own_folders(tmp_path, capsys):
    diffusers = pytest.importorskip("diffusers")
    pythae_models = pytest.importorskip("pythae.models")
    torch.manual_seed(0)
    src = tmp_path / "kl"
    diffusers.AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=2,
                            norm_num_groups=4, sample_size=8, layers_per_block=1).save_pretrained(str(src))
    out = tmp_path / "kl-tuned"
    code, _, err = run(capsys, ["train", "--model", f"diffusers:{src}", "--dataset", "digits", "--out", str(out),
                                "--epochs", "1", "--batch-size", "256", "--json"])
    assert code == 0, err
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))
    tuned = diffusers.AutoencoderKL.from_pretrained(str(out))
    before = diffusers.AutoencoderKL.from_pretrained(str(src))
    assert not torch.equal(tuned.encoder.conv_in.weight, before.encoder.conv_in.weight)
    vamp_src = tmp_path / "vamp"
    pythae_models.VAMP(pythae_models.VAMPConfig(input_dim=(1, 8, 8), latent_dim=2, number_components=4)).save(str(vamp_src))
    vamp_out = tmp_path / "vamp-tuned"
    code, _, err = run(capsys, ["train", "--model", f"pythae:{vamp_src}", "--dataset", "digits", "--out", str(vamp_out),
                                "--epochs", "1", "--batch-size", "256"])
    assert code == 0, err
    reopened = pythae_models.AutoModel.load_from_folder(str(vamp_out))
    assert type(reopened).__name__ == "VAMP"
    # its own folder is never the output
    code, _, err = run(capsys, ["train", "--model", f"pythae:{vamp_src}", "--dataset", "digits", "--out", str(vamp_src),
                                "--epochs", "1"])
    assert code == 2 and "write the output elsewhere" in err
