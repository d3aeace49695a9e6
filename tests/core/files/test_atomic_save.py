"""Saving is atomic: a process killed at any moment of a save leaves the previous checkpoint intact,
and the temporary files of killed saves do not pile up beside it.

A helper process imports torch once, saves the checkpoint a first time, then forks one child per
round that saves the same checkpoint in a loop until the test SIGKILLs it at a random moment.
Forking avoids paying torch's import for every kill, so 25 kills take a few seconds.
"""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

from latentlab.core.errors import CheckpointError
from latentlab.core.files.atomic import write_atomic
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"),
                                reason="needs fork and SIGKILL (POSIX)")

BIG = ModelConfig(image_shape=(1, 28, 28), latent_dim=2, hidden=(512, 256))  # ~4 MB checkpoint
KILLS = 25

SERVER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from latentlab.core.files.checkpoint import save_checkpoint
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    target = Path(sys.argv[1])
    model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=2, hidden=(512, 256)), seed=0)
    history = [{"epoch": i, "beta": 1.0, "recon": 100.0 / (i + 1), "kl": 3.5, "elbo": -3.5 - 100.0 / (i + 1),
                "kl_per_dim": [1.5, 2.0]} for i in range(50)]
    save_checkpoint(target, model, dataset="digits", history=history)  # exists before any kill
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:  # the child saves until it is killed
            try:
                while True:
                    save_checkpoint(target, model, dataset="digits", history=history)
            finally:
                os._exit(3)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print("reaped", status, flush=True)
""")


def temp_files(folder, name):
    pattern = re.compile(re.escape(f".{name}.") + r".*\.tmp")
    return sorted(p.name for p in folder.iterdir() if pattern.fullmatch(p.name))


class Server:
    """The helper process, with a line reader that never blocks the test for more than `timeout`."""

    def __init__(self, target, timeout=60.0):
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread pools to break across fork
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(target)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=target.parent)
        self.lines: queue.Queue = queue.Queue()
        self.timeout = timeout
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def readline(self) -> str:
        try:
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.close()
            pytest.fail(f"helper process stopped answering; stderr: {self.proc.stderr.read()[-2000:]}")
        return line

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def test_killed_saves_leave_a_loadable_file_and_no_pile_of_temporaries(tmp_path):
    target = tmp_path / "model.safetensors"
    expected = build_model(BIG, seed=0).state_dict()
    rng = random.Random()
    server = Server(target)
    orphans_seen = 0
    try:
        assert server.readline() == "ready"
        assert target.stat().st_size > 3_000_000
        for _ in range(KILLS):
            server.send("go")
            child = int(server.readline())
            time.sleep(rng.uniform(0.0, 0.2))
            os.kill(child, signal.SIGKILL)  # the child we asked for, by its id
            reaped = server.readline().split()
            status = int(reaped[1])
            assert reaped[0] == "reaped" and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
                f"the saving child ended on its own (status {status}) instead of being killed"

            ckpt = load_checkpoint(target)  # the old or the new file, never a mix
            assert len(ckpt.history) == 50
            state = ckpt.model.state_dict()
            assert all(torch.equal(v, state[k]) for k, v in expected.items())
            leftovers = temp_files(tmp_path, target.name)
            # Each save first removes what killed saves left, so there is never more than one.
            assert len(leftovers) <= 1, leftovers
            orphans_seen += len(leftovers)
        server.send("stop")
    finally:
        server.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != target.name) == temp_files(tmp_path, target.name)
    assert len(temp_files(tmp_path, target.name)) <= 1
    # One more successful save clears the last one.
    save_checkpoint(target, load_checkpoint(target).model, dataset="digits")
    assert temp_files(tmp_path, target.name) == []
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    print(f"{KILLS} kills, {orphans_seen} of them left a temporary file behind")


# ---------------------------------------------------------------- what the clean-up may and may not delete


def test_cleanup_removes_only_dead_temporaries_of_the_same_target(tmp_path):
    import fcntl

    target = tmp_path / "m[1].safetensors"  # regex and glob characters in the name
    write_atomic(target, b"old")
    prefix = f".{target.name}."
    dead = [tmp_path / f"{prefix}abcdefgh.tmp", tmp_path / f"{prefix}x_1y2z3w.tmp"]
    for p in dead:
        p.write_bytes(b"half a checkpoint")
    live = tmp_path / f"{prefix}livewrit.tmp"
    keep = [
        tmp_path / ".m1.safetensors.abcdefgh.tmp",            # another target (would match an unescaped pattern)
        tmp_path / f".{target.name}.bak.abcdefgh.tmp",        # a temporary of the target `m[1].safetensors.bak`
        tmp_path / f"{prefix}ABCDEFGH.tmp",                   # not a name mkstemp makes
        tmp_path / f"{prefix}abcdefgh.tmp.keep",
        tmp_path / f"{target.name}.abcdefgh.tmp",             # no leading dot
        tmp_path / f"{prefix}abcdefghi.tmp",
        tmp_path / "notes.txt",
    ]
    for p in keep:
        p.write_bytes(b"keep me")
    folder_like = tmp_path / f"{prefix}folder00.tmp"
    folder_like.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"precious")
    link = tmp_path / f"{prefix}symlink0.tmp"
    link.symlink_to(precious)

    with open(live, "wb") as held:  # a writer that is still alive holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        write_atomic(target, b"new")
        assert live.exists()
    assert target.read_bytes() == b"new"
    assert not any(p.exists() for p in dead)
    assert all(p.read_bytes() == b"keep me" for p in keep)
    assert folder_like.is_dir() and link.is_symlink() and precious.read_bytes() == b"precious"
    write_atomic(target, b"newer")  # the writer is gone now, so its file is an orphan
    assert not live.exists()


def test_cleanup_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".m.safetensors.abcdefgh.tmp").write_bytes(b"orphan")
    write_atomic("m.safetensors", b"x")  # a bare name: the folder is "."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_a_failed_save_removes_its_own_temporary(tmp_path):
    (tmp_path / "m.safetensors").mkdir()  # os.replace onto a folder fails
    with pytest.raises(CheckpointError):
        write_atomic(tmp_path / "m.safetensors", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_an_unwritable_folder_is_a_checkpoint_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(16,)), seed=0)
    path = save_checkpoint(tmp_path / "m.safetensors", model, dataset="digits")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="Cannot write"):
            save_checkpoint(path, model, dataset="digits")
    finally:
        tmp_path.chmod(0o700)
    assert load_checkpoint(path).dataset == "digits"


def test_concurrent_saves_of_the_same_target_never_fail_or_mix(tmp_path):
    """Each save's clean-up must leave the other saves' live temporary files alone."""
    target = tmp_path / "m.safetensors"
    payloads = [bytes([65 + i]) * (50_000 + i) for i in range(4)]
    write_atomic(target, payloads[0])
    errors, seen, done = [], set(), threading.Event()

    def writer(payload):
        try:
            for _ in range(60):
                write_atomic(target, payload)
        except Exception as exc:  # reported below
            errors.append(exc)

    def reader():
        while not done.is_set():
            data = target.read_bytes()
            seen.add(data in payloads)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    watcher.join(timeout=60)
    assert errors == []
    assert seen == {True}  # the target was always one whole payload
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_new_file_gets_the_mode_the_umask_gives_and_the_umask_is_left_alone(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.bin", b"x")
        assert os.umask(0o027) == 0o027     # still what it was: read, not set
    finally:
        os.umask(old)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640
