"""`latentlab gui --table`: the command line's checks, and a table rendered end to end off screen."""

import os
import subprocess
import sys

import pytest
from table_files import table_columns, write_parquet

from latentlab.cli import main


def test_a_table_needs_the_model_that_encoded_it(tmp_path, capsys):
    assert main(["gui", "--table", str(tmp_path / "t.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentlab: error:") and "--model SPEC or --checkpoint PATH" in err and "\n" not in err


def test_gui_table_screenshot_end_to_end(tmp_path):
    pytest.importorskip("pyarrow")
    from latentlab.core.files.bundled import default_checkpoint

    table, shot = tmp_path / "t.parquet", tmp_path / "shot.png"
    write_parquet(table, table_columns(20_000, 2))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--table", str(table), "--checkpoint",
                           str(default_checkpoint()), "--screenshot", str(shot)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert shot.stat().st_size > 10_000
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    done = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--table", str(bad), "--checkpoint",
                           str(default_checkpoint()), "--screenshot", str(shot)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("latentlab: error:")] == \
        ["latentlab: error: bad.parquet is not a readable Parquet file (Parquet magic bytes not found in footer. "
         "Either the file is corrupted or this is not a parquet file)."]
