"""Shared pieces of the fault suite (tests/test_fault_*.py): real small file systems and subprocess runs.

`tmpfs(path, size)` mounts a real tmpfs (root only, else the test is skipped with the reason), so a
full or read-only disk is a real one, not a mock; `rnnkit(*argv)` runs the real CLI in a subprocess
with this checkout on PYTHONPATH.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(SRC) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.setdefault("OPENBLAS_NUM_THREADS", "1")
    return e


def rnnkit(*argv, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, argv)], capture_output=True, text=True,
                          env=env(), timeout=timeout, **kw)


def popen(*argv, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnkit", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(), **kw)


def _mount_reason() -> str | None:
    if sys.platform != "linux":
        return "tmpfs mounts need Linux"
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root (run the fault suite as root to cover full/read-only disks)"
    return None


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m", readonly: bool = False):
    """A real tmpfs of `size` at `path` for the duration of the block; skips the test when not possible."""
    reason = _mount_reason()
    if reason:
        pytest.skip(reason)
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount -t tmpfs not allowed here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system of `folder` to the last byte (unbuffered writes, down to single bytes)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def one_line_error(stderr: str) -> str:
    """The single error line of a refused command (asserts there is nothing else, no traceback)."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]
