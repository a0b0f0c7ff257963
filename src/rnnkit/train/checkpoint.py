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

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import UserError, describe_os_error
from ..jsonio import to_json

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
    try:
        if copies and not _complete(path):
            newest_first = sorted(copies, key=lambda kc: (-kc[1].stat().st_mtime, kc[0] != "tmp"))
            for _, copy in newest_first:
                if _complete(copy):
                    if path.exists() or path.is_symlink():
                        aside = path.parent / f".{path.name}.old-{os.getpid()}"
                        os.replace(path, aside)
                        shutil.rmtree(aside, ignore_errors=True)
                    os.replace(copy, path)
                    moved = True
                    break
    except OSError:  # a read-only folder, a copy gone meanwhile: loading then reports what is there
        return moved
    for _, copy in copies:
        if copy.exists():
            shutil.rmtree(copy, ignore_errors=True)
    return moved


def checkpoint_dir(run_dir) -> Path:
    """The checkpoint folder of a run folder (`RUN/checkpoint`, recovered from a complete copy if a crash
    left one), or `run_dir` itself when it is the checkpoint folder."""
    run_dir = Path(run_dir)
    ck = run_dir / "checkpoint"
    recover(ck)
    return ck if ck.is_dir() else run_dir


def tidy_folder(folder) -> list[str]:
    """`recover` every checkpoint in `folder` that dead processes left copies of; returns the names
    put back in place."""
    folder = Path(folder)
    return [name for name in _dead_copies(folder) if recover(folder / name)]


def save_checkpoint(path, arrays: dict[str, dict[str, np.ndarray]], jsons: dict[str, object]) -> Path:
    """Write `arrays` (file stem -> {key: array}) and `jsons` (file stem -> object) into folder `path`.
    A write that fails (full disk, ...) raises one UserError line and leaves the previous checkpoint."""
    path = Path(path)
    try:
        _save(path, arrays, jsons)
    except OSError as e:  # a full disk, a folder gone read-only: the previous checkpoint is untouched
        state = "the previous checkpoint is intact" if _complete(path) else "no checkpoint was saved"
        raise UserError(f"cannot save the checkpoint {str(path)!r}: {describe_os_error(e)}; {state}") from None
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)  # the renames themselves reach the disk
    except OSError:
        pass
    finally:
        os.close(fd)


def _save(path: Path, arrays, jsons) -> None:
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    from .. import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files = {}
        for stem, tensors in arrays.items():
            name = f"{stem}.safetensors"
            try:
                save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / name))
            except SafetensorError as e:  # its I/O errors carry the OS error number in the text only
                m = re.search(r"os error (\d+)", str(e))
                raise OSError(int(m[1]) if m else errno.EIO, str(e)) from None
            files[name] = _sha256(tmp / name)
        for stem, obj in jsons.items():
            name = f"{stem}.json"
            (tmp / name).write_text(to_json(obj), encoding="utf-8")
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
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# safetensors dtypes rnnkit reads, with their item sizes (no object or pointer types exist in the format)
_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
           "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
MAX_HEADER = 100 << 20           # safetensors' own limit on the JSON header


def _plain_name(name) -> bool:
    """A manifest entry must name a plain file inside the folder: no path, no hidden or special name."""
    return (isinstance(name, str) and name == os.path.basename(name) and "\\" not in name and "\0" not in name
            and not name.startswith(".") and name != "manifest.json"
            and (name.endswith(".safetensors") or name.endswith(".json")))


def _regular_file(f: Path) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.lstat(f).st_mode)  # lstat: a symlink (to /dev/zero, out of the folder) is not one
    except OSError:
        return False


def _check_safetensors(f: Path, where: str) -> None:
    """Check a safetensors file's header against its size before anything is allocated from it."""
    size = f.stat().st_size
    damaged = f"checkpoint {where} is damaged: {f.name}"
    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UserError(f"{damaged} is too short to be a safetensors file")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER, size - 8):
            raise UserError(f"{damaged} has a header size ({n} bytes) beyond the file ({size} bytes)")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UserError(f"{damaged} has a header that is not valid JSON") from None
    if not isinstance(header, dict):
        raise UserError(f"{damaged} has a header that is not a JSON object")
    data = size - 8 - n
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in _DTYPES and isinstance(info.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in info["shape"])
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in info["data_offsets"]))
        if not ok:
            raise UserError(f"{damaged}: the entry {str(key)[:60]!r} has no valid dtype, shape and offsets")
        b, e = info["data_offsets"]
        nbytes = _DTYPES[info["dtype"]] * int(np.prod(info["shape"], dtype=object))
        if not 0 <= b <= e <= data or e - b != nbytes:
            raise UserError(f"{damaged}: {str(key)[:60]!r} has shape {info['shape']} but its bytes "
                            f"[{b}, {e}) do not match (the file holds {data} data bytes)")
        spans.append((b, e))
    spans.sort()
    if any(e0 > b1 for (_, e0), (b1, _) in zip(spans, spans[1:])):
        raise UserError(f"{damaged}: two arrays share bytes")


def _verified_manifest(path: Path) -> dict:
    """The manifest of checkpoint folder `path` after checking it and every file it lists; else UserError."""
    from ..jsonio import read_json

    if not path.is_dir():
        raise UserError(f"checkpoint folder {str(path)!r} does not exist")
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{str(path)!r} is not an rnnkit checkpoint (no manifest.json)")
    manifest = read_json(mpath, f"checkpoint {str(path)!r}: manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{str(path)!r} is not an rnnkit checkpoint (unknown format)")
    if manifest.get("version") != VERSION:
        raise UserError(f"checkpoint {str(path)!r} has format version {manifest.get('version')!r}; this "
                        f"rnnkit reads version {VERSION} (retrain, or use the rnnkit version "
                        f"{manifest.get('rnnkit_version')!r} that wrote it)")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise UserError(f"checkpoint {str(path)!r} is damaged: manifest.json has no valid file list")
    stems = [n.rsplit(".", 1)[0] for n in files if isinstance(n, str)]
    for name, digest in files.items():
        if not _plain_name(name):
            raise UserError(f"checkpoint {str(path)!r} is damaged: manifest.json lists {str(name)[:80]!r}, "
                            "which is not a plain .safetensors/.json file name inside the folder")
        f = path / name
        if not _regular_file(f):
            raise UserError(f"checkpoint {str(path)!r} is incomplete: {name} is missing or not a regular file")
        if _sha256(f) != digest:
            raise UserError(f"checkpoint {str(path)!r} is damaged: {name} is truncated or modified")
    if len(set(stems)) != len(stems):
        raise UserError(f"checkpoint {str(path)!r} is damaged: manifest.json lists one name twice")
    return manifest


def load_checkpoint(path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, object]]:
    """Read a checkpoint folder; returns (arrays, jsons) keyed by file stem. Problems raise UserError.

    Every byte is checked before it is used: the manifest's names are plain files of the folder, their
    SHA-256 sums match, each safetensors header agrees with its file's size (so no array is allocated
    beyond what the file holds), and each JSON file is strict UTF-8 JSON."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from ..jsonio import read_json

    path = Path(path)
    recover(path)
    manifest = _verified_manifest(path)
    arrays, jsons = {}, {}
    for name in manifest["files"]:
        f = path / name
        if name.endswith(".safetensors"):
            _check_safetensors(f, repr(str(path)))
            try:
                arrays[name[: -len(".safetensors")]] = load_file(str(f))
            except (SafetensorError, ValueError, TypeError, OSError) as e:
                raise UserError(f"checkpoint {str(path)!r} is damaged: {name} cannot be read "
                                f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
        else:
            jsons[name[: -len(".json")]] = read_json(f, f"checkpoint {str(path)!r}: {name}")
    return arrays, jsons


class checkpoint_content:
    """`with checkpoint_content(path):` around code that interprets a loaded checkpoint: a missing key, a
    value of the wrong type or shape (a file edited, or taken from another model) ends as one UserError
    line naming the checkpoint, never as a traceback from deep inside the model."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None or issubclass(kind, UserError):
            return False
        if issubclass(kind, (KeyError, TypeError, ValueError, IndexError, AttributeError)):
            what = f"missing entry {exc}" if issubclass(kind, KeyError) else str(exc).splitlines()[0][:200]
            raise UserError(f"checkpoint {self.path!r} is damaged or from another model: {what}") from None
        return False


def _layer_sizes(saved: dict) -> tuple[dict[str, set[int]], dict[str, int]]:
    """From torch-named recurrent weights (`PREFIX.weight_hh_lK[_reverse]`, shape (G*H, H)): the hidden
    sizes and the layer count of each recurrent stack."""
    hidden: dict[str, set[int]] = {}
    layers: dict[str, int] = {}
    for key, a in saved.items():
        m = re.match(r"^(?P<prefix>.*?)weight_hh_l(?P<k>\d+)(_reverse)?$", key)
        if m and getattr(a, "ndim", 0) == 2:
            hidden.setdefault(m["prefix"], set()).add(int(a.shape[1]))
            layers[m["prefix"]] = max(layers.get(m["prefix"], 0), int(m["k"]) + 1)
    return hidden, layers


def check_config_sizes(path, saved: dict, hidden=None, layers: int | None = None, **others) -> None:
    """Before a model is built from a checkpoint's config, the config's sizes must be those of the saved
    weights (shapes from the safetensors headers): `hidden` (an int, or a tuple when stacks differ, e.g.
    an encoder of H and a decoder of 2H) is the set of hidden sizes of the recurrent stacks, `layers` the
    layer count of each, and every other size (an embedding width, a feature count) is at most the
    largest saved dimension. So a damaged config (`hidden_size: 10**7` in 300 bytes) is refused rather
    than allocating gigabytes."""
    where = f"checkpoint {str(path)!r}"
    wanted = hidden if isinstance(hidden, tuple) else (hidden,)
    sizes = {"hidden size": h for h in wanted} | {"layer count": layers, **others}
    for name, v in sizes.items():
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise UserError(f"{where} is damaged: its {name} {v!r} is not a positive integer")
    hid, lay = _layer_sizes(saved)
    if (hidden is not None or layers is not None) and not hid:
        raise UserError(f"{where} is damaged: it holds no recurrent weights (weight_hh_l0)")
    found = set().union(*hid.values()) if hid else set()
    if hidden is not None and found != set(wanted):
        raise UserError(f"{where} is damaged: its config says hidden size {'/'.join(map(str, wanted))}, "
                        f"its saved recurrent weights have {'/'.join(map(str, sorted(found)))}")
    if layers is not None and set(lay.values()) != {layers}:
        raise UserError(f"{where} is damaged: its config says {layers} layer(s), its saved weights have "
                        f"{'/'.join(map(str, sorted(set(lay.values()))))}")
    largest = max((max(a.shape, default=1) for a in saved.values() if hasattr(a, "shape")), default=0)
    for name, v in others.items():
        if v is not None and v > largest:
            raise UserError(f"{where} is damaged: its config says {name} {v}, larger than any saved "
                            f"weight dimension ({largest})")
