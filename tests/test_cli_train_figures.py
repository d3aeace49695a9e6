"""What `latentlab train --json` counts in its seconds and samples/s: every example the steps went
through, over the training as one waits for it, the end-of-run preview and checkpoint included."""

import json
import time

import pytest

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.files import preview
from latentlab.core.training import loop


def test_samples_per_s_counts_every_example_over_the_whole_run_to_the_saved_file(tmp_path, capsys, monkeypatch):
    real = preview.compute_preview

    def slow_preview(model, data):
        time.sleep(0.5)   # a stand-in for a slow end of run: the figure must not leave it out
        return real(model, data)

    monkeypatch.setattr(preview, "compute_preview", slow_preview)
    real_train, snaps = loop.train, []

    def train(*args, **kwargs):
        for snap in real_train(*args, **kwargs):
            snaps.append(snap)
            yield snap

    monkeypatch.setattr(loop, "train", train)
    out = tmp_path / "m.safetensors"
    code = main(["train", "--dataset", "digits", "--out", str(out), "--epochs", "2", "--hidden", "32",
                 "--latent-dim", "2", "--json", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and out.exists()
    n_train = len(load_dataset("digits").x_train)
    assert result["samples_per_s"] * result["seconds"] == pytest.approx(2 * n_train, rel=1e-3)
    # the trainer's own clock stops at its last step; the reported one runs on to the saved file
    assert result["seconds"] >= snaps[-1].seconds + 0.5
