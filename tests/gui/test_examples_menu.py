"""File → Examples: each bundled model opens with its own dataset in one click."""

from pathlib import Path

import pytest
from gui_helpers import wait_idle

from latentlab.core.files.bundled import EXAMPLES, examples
from latentlab.core.files.checkpoint import load_checkpoint


def test_every_listed_example_ships_and_loads_headless():
    assert examples(), "no bundled example is installed"
    for e in examples():
        ckpt = load_checkpoint(e.file)
        assert ckpt.dataset == e.dataset and not ckpt.warnings
        assert e.command.startswith("latentlab train ") and f"--dataset {e.dataset}" in e.command
        assert Path(e.command.split("--out ")[1].split()[0]).name == e.file.name


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.file.stem)
def test_the_examples_menu_opens_a_bundled_model_with_its_dataset(window, qtbot, example):
    menu = window.examples_menu
    titles = [a.text() for a in menu.actions()]
    assert titles == [e.title for e in examples()] and menu.isEnabled()
    other = next((e for e in examples() if e is not example), None)
    if other is not None:  # start elsewhere so that the click has something to change
        with qtbot.waitSignal(window.session.loaded, timeout=120_000):
            window.session.load(other.file, other.dataset)
    action = menu.actions()[titles.index(example.title)]
    assert example.about in action.toolTip()
    with qtbot.waitSignal(window.session.loaded, timeout=120_000):
        action.trigger()
    wait_idle(window.session)
    md = window.session.model_data
    assert md.data.spec == example.dataset
    assert md.source is not None and Path(md.source).resolve() == example.file.resolve()
    assert md.model.latent_dim == load_checkpoint(example.file).config.latent_dim


def test_a_missing_example_file_is_not_offered(monkeypatch):
    from dataclasses import replace

    from latentlab.core.files import bundled

    gone = replace(EXAMPLES[0], file=EXAMPLES[0].file.with_name("not-shipped.safetensors"))
    monkeypatch.setattr(bundled, "EXAMPLES", (gone, *EXAMPLES[1:]))
    assert gone not in bundled.examples()
