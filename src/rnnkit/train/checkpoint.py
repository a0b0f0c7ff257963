"""Checkpoints: a folder of safetensors weight files and JSON files, written atomically.

Layout of a checkpoint folder:
    manifest.json         {"format": "rnnkit-checkpoint", "version": 1, "rnnkit_version", "files": {name: sha256}}
    <name>.safetensors    arrays (model weights, optimiser moments, carried state ...)
    <name>.json           everything else (config, vocabulary, step, RNG state ...)

Atomicity: everything is written into a hidden temporary folder beside the target, flushed, and then
renamed into place (the old checkpoint is first renamed aside and deleted only after the new one is in
place). A crash at any moment leaves either the old or the new checkpoint complete, never a mixture;
the manifest's SHA-256 sums catch truncated or edited files when loading. A crash between the two
renames leaves no checkpoint at `path` but complete copies beside it (`.NAME.tmp-PID`, `.NAME.old-PID`):
`recover` moves the newest complete one of a dead process into place, and `tidy_folder` does that for a
whole output folder and deletes the copies dead processes left behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import UserError

FORMAT = "rnnkit-checkpoint"
VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_COPY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _complete(path: Path) -> bool:
    """True when `path` is a checkpoint whose manifest and every listed file verify."""
    try:
        _verified_manifest(path)
    except UserError:
        return False
    return True


def _dead_copies(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """name -> [(kind, path)] of `.NAME.tmp-PID` / `.NAME.old-PID` folders whose process is gone."""
    found: dict[str, list[tuple[str, Path]]] = {}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return found
    for p in entries:
        m = _COPY.match(p.name)
        if m and not p.is_symlink() and p.is_dir() and not _alive(int(m["pid"])):
            found.setdefault(m["name"], []).append((m["kind"], p))
    return found


def recover(path) -> bool:
    """If `path` is missing or incomplete and a dead process left a complete copy beside it, put that
    copy in place (the new `.tmp-` one before the previous `.old-` one); remove the dead copies.
    Returns True when a copy was moved into place."""
    path = Path(path)
    copies = _dead_copies(path.parent).get(path.name, [])
    moved = False
    if copies and not _complete(path):
        for kind, copy in sorted(copies, key=lambda kc: kc[0] != "tmp"):
            if _complete(copy):
                if path.exists() or path.is_symlink():
                    aside = path.parent / f".{path.name}.old-{os.getpid()}"
                    os.replace(path, aside)
                    shutil.rmtree(aside, ignore_errors=True)
                os.replace(copy, path)
                moved = True
                break
    for _, copy in copies:
        if copy.exists():
            shutil.rmtree(copy, ignore_errors=True)
    return moved


def tidy_folder(folder) -> list[str]:
    """`recover` every checkpoint in `folder` that dead processes left copies of; returns the names
    put back in place."""
    folder = Path(folder)
    return [name for name in _dead_copies(folder) if recover(folder / name)]


def save_checkpoint(path, arrays: dict[str, dict[str, np.ndarray]], jsons: dict[str, object]) -> Path:
    """Write `arrays` (file stem -> {key: array}) and `jsons` (file stem -> object) into folder `path`."""
    from safetensors.numpy import save_file

    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files = {}
        for stem, tensors in arrays.items():
            name = f"{stem}.safetensors"
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / name))
            files[name] = _sha256(tmp / name)
        for stem, obj in jsons.items():
            name = f"{stem}.json"
            (tmp / name).write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
            files[name] = _sha256(tmp / name)
        manifest = {"format": FORMAT, "version": VERSION, "rnnkit_version": __version__, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _verified_manifest(path: Path) -> dict:
    """The manifest of checkpoint folder `path` after checking it and every file it lists; else UserError."""
    if not path.is_dir():
        raise UserError(f"checkpoint folder {str(path)!r} does not exist")
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{str(path)!r} is not an rnnkit checkpoint (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UserError(f"checkpoint {str(path)!r} is damaged: manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{str(path)!r} is not an rnnkit checkpoint (unknown format)")
    if manifest.get("version") != VERSION:
        raise UserError(f"checkpoint {str(path)!r} has format version {manifest.get('version')!r}; this "
                        f"rnnkit reads version {VERSION} (retrain, or use the rnnkit version "
                        f"{manifest.get('rnnkit_version')!r} that wrote it)")
    for name, digest in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise UserError(f"checkpoint {str(path)!r} is incomplete: {name} is missing")
        if _sha256(f) != digest:
            raise UserError(f"checkpoint {str(path)!r} is damaged: {name} is truncated or modified")
    return manifest


def load_checkpoint(path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, object]]:
    """Read a checkpoint folder; returns (arrays, jsons) keyed by file stem. Problems raise UserError."""
    from safetensors.numpy import load_file

    path = Path(path)
    recover(path)
    manifest = _verified_manifest(path)
    arrays, jsons = {}, {}
    for name in manifest.get("files", {}):
        f = path / name
        if name.endswith(".safetensors"):
            arrays[name[: -len(".safetensors")]] = load_file(str(f))
        else:
            jsons[name[: -len(".json")]] = json.loads(f.read_text(encoding="utf-8"))
    return arrays, jsons
