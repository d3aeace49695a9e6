"""`latentlab --help` and the subcommands' help: quick (no torch), every option explained with its
default, each heading once; and the eval table's columns."""

import re
import subprocess
import sys

import pytest

from latentlab.cli import main


def help_text(*args) -> str:
    result = subprocess.run([sys.executable, "-c", (
        "import sys; from latentlab.cli import main; code = main(sys.argv[1:]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH'); sys.exit(code)"), *args, "--help"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_top_level_help_needs_no_torch_and_names_each_heading_once():
    text = help_text()
    assert text.rstrip().endswith("NO TORCH")
    assert text.count("Model SPEC forms:") == 1 and text.count("Dataset SPEC forms:") == 1
    assert "Dataset specs:" not in text
    assert "LATENTLAB_THREADS" in text


def option_help(text: str, option: str) -> str:
    """The help of one option: its line and the indented lines after it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
    out = [lines[start]]
    for line in lines[start + 1:]:
        if line.startswith("  -"):
            break
        out.append(line)
    return " ".join(" ".join(out).split())


@pytest.mark.parametrize("option, default", [
    ("--latent-dim", "2"), ("--arch", "mlp"), ("--hidden", "512,256"), ("--beta", "1.0"), ("--epochs", "20"),
    ("--batch-size", "128"), ("--lr", "0.001"), ("--seed", "0"), ("--device", "auto"), ("--warmup-steps", "0"),
])
def test_train_options_say_what_they_do_and_their_default(option, default):
    text = option_help(help_text("train"), option)
    described = re.sub(r"^\S+( [A-Z_{},]+)?", "", text).replace(f"(default: {default})", "").strip()
    assert f"(default: {default})" in text and len(described) > 10, text


def test_no_option_shows_a_default_of_none():
    for command in ("train", "eval", "encode", "gui"):
        text = help_text(command)
        assert "(default: None)" not in text and "(default: False)" not in text, command


def test_eval_table_keeps_its_columns(capsys):
    from latentlab.core.files.bundled import default_checkpoint

    assert main(["eval", str(default_checkpoint()), "--iw-samples", "100"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"  (ELBO|recon|KL  |log p\(x\)|gap)", line)]
    assert len(rows) == 5 and any("log p(x)" in r for r in rows)
    # Every number ends in the same column.
    ends = {re.search(r"-?\d+\.\d{3}", row).end() for row in rows}
    assert len(ends) == 1, rows


def test_progress_bars_are_drawn_on_a_terminal_only_and_at_most_ten_times_a_second(monkeypatch):
    import io
    import sys

    from latentlab.cli.output import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar("encoding") is None   # a log gets no bars
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    progress = progress_bar("encoding 10 images")
    for i in range(1000):   # far faster than ten a second: the first draw, then only the end
        progress(i / 1000)
    progress(1.0, "writing")
    draws = term.getvalue().split("\r")[1:]
    assert draws[0].startswith("encoding 10 images [") and "0.0%" in draws[0]
    assert draws[-1].startswith("writing [") and "100.0%" in draws[-1]
    assert len(draws) < 10
