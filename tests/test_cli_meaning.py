"""`latentlab vector`, `latentlab eval --factors` and `latentlab eval A B`: the JSON they print, on
latentlab's models and on a user's model opened through a SPEC, and their one-line refusals."""

import json

import numpy as np
import pytest

from latentlab.cli import main
from latentlab.core.files.bundled import EXAMPLES

DIGITS = str(EXAMPLES[0].file)
SPRITES = str(EXAMPLES[1].file)
CONV = None


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_vector_between_two_labels_prints_auc_and_cosine_and_saves(capsys, tmp_path):
    from latentlab.core.meaning.vectors import load_vector

    out = tmp_path / "v.npz"
    code, stdout, _ = run(capsys, "vector", DIGITS, "--dataset", "digits", "--from", "label:0", "--to", "label:1",
                          "--out", out, "--json")
    result = json.loads(stdout)
    assert code == 0 and result["kind"] == "labels" and (result["from"], result["to"]) == ("0", "1")
    assert 0.9 < result["auc"] <= 1.0 and 0.9 < result["cosine"] <= 1.0 and result["bootstraps"] == 50
    vector, meta = load_vector(out)
    np.testing.assert_allclose(vector.direction, result["direction"], atol=1e-6)
    assert meta == {"model": DIGITS, "dataset": "digits"} and result["out"] == str(out)


def test_vector_along_a_factor_reports_r2_beside_auc(capsys):
    code, stdout, _ = run(capsys, "vector", SPRITES, "--dataset", "sprites", "--factor", "y", "--json",
                          "--bootstrap", "10")
    result = json.loads(stdout)
    assert code == 0 and result["kind"] == "factor" and result["r2"] > 0.5 and result["auc"] > 0.9
    assert "median" in result["auc_of"] and result["bootstraps"] == 10 and len(result["direction"]) == 5


def test_vector_on_a_user_model_through_its_spec(capsys, tmp_path):
    from model_specs import adapter_spec, conv_spec

    code, stdout, _ = run(capsys, "vector", "--model", adapter_spec(tmp_path), "--dataset", "digits", "--from",
                          "label:3", "--to", "label:8", "--json")
    assert code == 0 and 0.5 < json.loads(stdout)["auc"] <= 1.0
    code, stdout, _ = run(capsys, "vector", "--model", conv_spec(), "--dataset", "sprites", "--factor", "x", "--json",
                          "--bootstrap", "5")
    assert code == 0 and json.loads(stdout)["latent_dim"] == 4


@pytest.mark.parametrize("args, words", [
    (["--from", "label:0", "--to", "label:1", "--factor", "x"], "or --factor"),
    (["--from", "label:0"], "or --factor"),
    (["--from", "0", "--to", "label:1"], "label:NAME"),
    (["--from", "label:0", "--to", "label:zebra"], "No label 'zebra'"),
    (["--from", "label:0", "--to", "label:0"], "same label"),
    (["--factor", "colour"], "no factor 'colour'"),
    (["--factor", "x", "--out", "v.csv"], ".npz"),
])
def test_vector_refusals_are_one_line(capsys, args, words):
    code, stdout, stderr = run(capsys, "vector", DIGITS, "--dataset", "digits", *args)
    assert code == 2 and stdout == "" and words in stderr and stderr.count("\n") == 1


def test_vector_never_writes_over_what_it_reads(capsys, tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(0).random((40, 8, 8)), y=np.arange(40) % 2)
    code, _, stderr = run(capsys, "vector", DIGITS, "--dataset", f"npz:{data}", "--from", "label:0", "--to", "label:1",
                          "--out", data)
    assert code == 2 and "reads" in stderr


def test_eval_factors_adds_the_scores_and_says_how(capsys):
    code, stdout, _ = run(capsys, "eval", SPRITES, "--dataset", "sprites", "--iw-samples", "0", "--factors", "--json")
    stats = json.loads(stdout)
    assert code == 0
    for key in ("mig", "sap", "beta_vae", "factor_vae"):
        assert 0.0 <= stats[key] <= 1.0
    assert set(stats["dci"]) == {"disentanglement", "completeness", "informativeness"}
    how = stats["factor_scores"]
    assert how["estimator"] == "lasso" and "20 equal-width bins" in how["discretisation"]
    assert how["factors"] == ["shape", "scale", "rotation", "x", "y"] and len(how["importance"]) == 5


def test_eval_factors_without_factors_is_one_sentence(capsys):
    code, _, stderr = run(capsys, "eval", DIGITS, "--iw-samples", "0", "--factors")
    assert code == 2 and "no ground-truth factors" in stderr


def test_single_model_eval_output_is_unchanged_without_factors(capsys):
    code, stdout, _ = run(capsys, "eval", DIGITS, "--iw-samples", "5", "--json")
    assert code == 0 and set(json.loads(stdout)) == {
        "examples", "elbo", "recon", "kl", "kl_per_dim", "active_units", "latent_dim", "iw_samples", "log_px_iw", "gap",
        "checkpoint", "model", "description", "dataset", "split", "prior", "kl_method",
        "kl_per_dim_against", "deterministic", "notes", "prior_declared"}


def test_eval_of_two_models_gives_one_entry_each_equal_to_their_own_eval(capsys):
    from model_specs import conv_spec

    code, stdout, _ = run(capsys, "eval", SPRITES, conv_spec(), "--dataset", "sprites", "--iw-samples", "0", "--json")
    table = json.loads(stdout)
    assert code == 0 and table["dataset"] == "sprites" and len(table["models"]) == 2
    for entry, spec in zip(table["models"], (SPRITES, conv_spec())):
        code, alone, _ = run(capsys, "eval", "--model", spec, "--dataset", "sprites", "--iw-samples", "0", "--json")
        assert json.loads(alone) == entry
    code, stdout, _ = run(capsys, "eval", SPRITES, "--model", conv_spec(), "--dataset", "sprites", "--iw-samples", "0")
    assert code == 0 and "model 1" in stdout and "model 2" in stdout and "ELBO" in stdout


def test_eval_of_two_models_on_data_one_cannot_read(capsys):
    code, stdout, stderr = run(capsys, "eval", DIGITS, SPRITES, "--iw-samples", "0", "--json")
    assert code == 2 and stdout == "" and "expects images of shape" in stderr
