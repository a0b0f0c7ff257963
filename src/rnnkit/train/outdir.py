"""The output folder of a run: checked before any training, and locked against a second run.

`prepare_out_dir(path)` refuses, with one `UserError` line naming the problem and the fix, a folder that
is a file, lies under a file, cannot be created or written, or sits on a full disk (a small write probe
finds what permission bits and free-space figures miss: read-only mounts, quotas, ENOSPC). It then takes
an exclusive `fcntl.flock` on `DIR/.rnnkit.lock`: the kernel drops the lock when the process dies, so a
killed run never blocks the next one, while a live one refuses a second run on the same folder.
The lock is held until `release_out_dirs()` (the CLI calls it when a command ends) or process exit; a
folder the command created but left empty (it was refused after the check) is removed then.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import UserError, describe_os_error

LOCK_NAME = ".rnnkit.lock"
PROBE_BYTES = 64 * 1024          # the write probe: enough to hit a full disk, small enough to be free
MIN_FREE_BYTES = 1 << 20         # below this the disk counts as full (a checkpoint needs more)

# resolved folder -> (lock file descriptor, folder, the folders this process created for it)
_held: dict[Path, tuple[int, Path, list[Path]]] = {}


def _refuse_files_on_path(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {str(path)!r} is a file, not a folder; give a folder path (or remove the file)")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {str(path)!r} lies under the file {str(parent)!r}; give a folder path")
            break


def _probe(path: Path, option: str) -> None:
    """Write, flush and delete a small file in `path`; refuse when the disk is full or not writable."""
    try:
        st = os.statvfs(path)
        if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
            raise UserError(f"{option} {str(path)!r}: the disk is full "
                            f"({st.f_bavail * st.f_frsize} bytes free); free some space or choose another --out")
    except (AttributeError, OSError):
        pass  # no statvfs here: the probe below still finds a full disk
    probe = path / f".rnnkit-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise UserError(f"{option} {str(path)!r} cannot be written: {describe_os_error(e)}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def _lock(path: Path, option: str, created: list[Path]) -> None:
    import fcntl

    key = path.resolve()
    if key in _held:
        return
    lock = path / LOCK_NAME
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{option} {str(path)!r} cannot be locked: {describe_os_error(e)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                other = os.read(fd, 32).decode("ascii", "replace").strip()
            except OSError:
                other = ""
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f" (process {other})" if other.isdigit() else ""
                raise UserError(f"{option} {str(path)!r} is in use by another rnnkit run{who}; wait for it "
                                "to finish or choose another --out") from None
            raise UserError(f"{option} {str(path)!r} cannot be locked: {describe_os_error(e)}") from None
        try:  # a run that ended empty-handed removes its lock file: lock the file that is there now
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:  # the holder's PID, for the message a second run prints (the lock itself is the flock)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    _held[key] = (fd, path, created)


def prepare_out_dir(path, *, resume: bool = False, option: str = "--out") -> Path:
    """Check, create and lock the output folder `path` before any training; returns it as a Path.

    `resume=True`: the folder must already exist (it holds the run to continue). Stale `.tmp-`/`.old-`
    copies of checkpoints left by dead processes are recovered or removed (see `checkpoint.tidy_folder`).
    Problems raise `UserError` with one line naming the problem and the fix.
    """
    from .checkpoint import tidy_folder

    path = Path(path)
    _refuse_files_on_path(path, option)
    if resume and not path.is_dir():
        raise UserError(f"{option} {str(path)!r} does not exist; there is no run to resume there")
    created = [p for p in (path, *path.absolute().parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option} {str(path)!r} cannot be created: {describe_os_error(e)}") from None
    try:
        _probe(path, option)
        _lock(path, option, created)
    except UserError:
        _remove_if_empty(path, created)
        raise
    tidy_folder(path)
    return path


def _remove_if_empty(path: Path, created: list[Path]) -> None:
    for p in created:  # deepest first; stops at the first that is not empty
        try:
            p.rmdir()
        except OSError:
            return


def release_out_dirs() -> None:
    """Release every output-folder lock this process holds (the end of a CLI command). A folder this
    process created and wrote nothing into is removed again, so a refused command leaves no output."""
    while _held:
        _, (fd, path, created) = _held.popitem()
        try:
            if created and [p.name for p in path.iterdir()] == [LOCK_NAME]:
                (path / LOCK_NAME).unlink()
        except OSError:
            pass
        try:
            os.close(fd)  # closing the descriptor releases its flock
        except OSError:
            pass
        _remove_if_empty(path, created)
