"""Checkpoints written on a thread of their own: newest wins, nothing lost at flush, failures surface."""

import threading

import pytest

from latentlab.core.errors import CheckpointError
from latentlab.core.files import atomic
from latentlab.core.files.atomic import BackgroundWriter


def test_flush_leaves_the_newest_payload_on_disk(tmp_path):
    w = BackgroundWriter()
    target = tmp_path / "m.bin"
    for i in range(50):
        w.submit(target, f"payload {i}".encode())
    w.flush()
    assert target.read_bytes() == b"payload 49"


def test_submit_does_not_wait_for_the_disk_and_waiting_payloads_are_replaced(tmp_path, monkeypatch):
    release = threading.Event()
    started = threading.Event()
    written = []
    real = atomic.write_atomic

    def slow_write(path, payload):
        started.set()
        assert release.wait(30)
        written.append(payload)
        real(path, payload)

    monkeypatch.setattr(atomic, "write_atomic", slow_write)
    w = BackgroundWriter()
    target = tmp_path / "m.bin"
    w.submit(target, b"first")
    assert started.wait(30)
    w.submit(target, b"second")   # returns while "first" is still being written
    w.submit(target, b"third")    # replaces "second", which never reached the disk
    assert written == []
    release.set()
    w.flush()
    assert written == [b"first", b"third"]
    assert target.read_bytes() == b"third"


def test_a_failed_write_is_raised_once_then_writing_goes_on(tmp_path, monkeypatch):
    calls = []

    def failing_once(path, payload):
        calls.append(payload)
        if len(calls) == 1:
            raise CheckpointError("Cannot save m.bin: the disk is full.")
        path.write_bytes(payload)

    monkeypatch.setattr(atomic, "write_atomic", failing_once)
    w = BackgroundWriter()
    w.submit(tmp_path / "m.bin", b"a")
    with pytest.raises(CheckpointError, match="disk is full"):
        w.flush()
    w.submit(tmp_path / "m.bin", b"b")
    w.flush()
    assert (tmp_path / "m.bin").read_bytes() == b"b"


def test_train_reports_a_failed_background_save_in_one_sentence(tmp_path, monkeypatch, capsys):
    from latentlab.cli import main

    def full_disk(path, payload):
        raise CheckpointError(f"Cannot save {path.name}: no space left on the device.")

    monkeypatch.setattr(atomic, "write_atomic", full_disk)
    code = main(["train", "--dataset", "digits", "--hidden", "16", "--epochs", "2", "--out", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no space left" in err and "Traceback" not in err
    assert not (tmp_path / "m.safetensors").exists()
