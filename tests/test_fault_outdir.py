"""Fault suite: a bad output folder for every command ends in one line and exit 2, before any training.

Each command is given an input that does not exist, so the only way to get the output-folder message is
for the folder check to run first (before data is read or a model trained). Cases: `--out` is a file,
lies under a file, is on a read-only file system, is on a full disk (both real tmpfs mounts, root only),
and is held by another live run (a real second process holding the lock).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fault_tools import env, fill, tmpfs
from rnnkit.cli import main
from rnnkit.errors import UserError
from rnnkit.train.outdir import prepare_out_dir, release_out_dirs

# command -> argv with OUT standing for the output folder; inputs are missing files on purpose
COMMANDS = {
    "textgen": ["textgen", "train", "missing.txt", "--out", "OUT", "--steps", "1"],
    "textgen-resume": ["textgen", "train", "--resume", "OUT", "--steps", "1"],
    "classify": ["classify", "train", "missing.csv", "--out", "OUT"],
    "forecast": ["forecast", "train", "missing.csv", "--column", "v", "--horizon", "2", "--out", "OUT"],
    "translate": ["translate", "train", "missing.tsv", "--out", "OUT"],
    "names": ["names", "train", "missing_dir", "--out", "OUT"],
    "transcribe": ["transcribe", "train", "missing.csv", "--out", "OUT"],
    "transcribe-build": ["transcribe", "build-fsdd", "missing_dir", "OUT"],
    "memory": ["memory", "--out", "OUT"],
    "diagnose": ["diagnose", "DIAG_SRC", "--out", "OUT"],
}


def run_main(argv, capsys, tmp_path, out) -> str:
    argv = [str(out) if a == "OUT" else str(tmp_path / "src") if a == "DIAG_SRC" else a for a in argv]
    (tmp_path / "src").mkdir(exist_ok=True)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(autouse=True)
def _release():
    yield
    release_out_dirs()


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_out_is_a_file(cmd, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    msg = run_main(COMMANDS[cmd], capsys, tmp_path, f)
    assert "is a file" in msg and "afile" in msg
    assert f.read_text() == "x"


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_out_under_a_file(cmd, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    msg = run_main(COMMANDS[cmd], capsys, tmp_path, f / "run")
    assert ("lies under the file" in msg or "does not exist" in msg) and "afile" in msg


def test_read_only_and_full_disk_every_command(tmp_path, capsys):
    """Real tmpfs mounts: one read-only, one filled to the last byte."""
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as ro:
        for cmd, argv in COMMANDS.items():
            target = ro if cmd == "textgen-resume" else ro / "run"
            msg = run_main(argv, capsys, tmp_path, target)
            assert "read-only" in msg, (cmd, msg)
    with tmpfs(tmp_path / "full", "256k") as full:
        (full / "run").mkdir()
        fill(full)
        for cmd, argv in COMMANDS.items():
            msg = run_main(argv, capsys, tmp_path, full / "run")
            assert "disk is full" in msg, (cmd, msg)
        assert sorted(p.name for p in (full / "run").iterdir()) == []  # the probe left nothing behind


def test_permission_denied_every_command(tmp_path, capsys):
    """A folder without write permission (not root: root may write anyway, the read-only mount above
    covers it)."""
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits; the read-only tmpfs test covers this as root")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for cmd, argv in COMMANDS.items():
            msg = run_main(argv, capsys, tmp_path, locked if cmd == "textgen-resume" else locked / "run")
            assert "not writable" in msg, (cmd, msg)
    finally:
        locked.chmod(0o700)


HOLDER = textwrap.dedent("""
    import sys
    from rnnkit.train.outdir import prepare_out_dir
    prepare_out_dir(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()
""")


def test_folder_in_use_by_another_run(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        for cmd, argv in COMMANDS.items():
            msg = run_main(argv, capsys, tmp_path, out)
            assert "in use by another rnnkit run" in msg and f"process {holder.pid}" in msg, (cmd, msg)
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the folder is usable at once
    assert prepare_out_dir(out) == out


def test_prepare_out_dir_library(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b")
    assert out.is_dir() and (out / ".rnnkit.lock").is_file()
    assert prepare_out_dir(out) == out  # the same process may ask again
    with pytest.raises(UserError, match="no run to resume"):
        prepare_out_dir(tmp_path / "nothing", resume=True)
