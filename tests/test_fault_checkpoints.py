"""Fault suite: a catalogue of damaged checkpoints, each made by the test from a real saved one.

Most damage is done with the manifest rewritten to match (so the SHA-256 sums pass and the damage reaches
the code that interprets the bytes). Every case must end, for `textgen sample` (the load path) and
`textgen train --resume` (the Trainer's path), in exit status 2 with one line on stderr and no traceback;
a few run as real subprocesses as well. The other tasks' load paths get the damage that applies to any
checkpoint (see test_other_tasks_damaged).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from fault_tools import one_line_error, rnnkit
from test_seq_cli import _tones  # a manifest of synthetic spoken 'words' (tones) for transcribe
from rnnkit.cli import main

TEXT = "the cat sat on the mat. the dog sat on the log. " * 30
SMALL = ["--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch", "4", "--no-progress", "--sample-length", "0"]


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def rewrite_manifest(ck) -> None:
    """Make the manifest's sums match the (damaged) files again, as an attacker or a bad tool would."""
    m = json.loads((ck / "manifest.json").read_text())
    m["files"] = {n: _sha(ck / n) if (ck / n).is_file() and not (ck / n).is_symlink() else d
                  for n, d in m["files"].items()}
    (ck / "manifest.json").write_text(json.dumps(m))


def st_parts(p):
    """(header dict, data bytes) of a safetensors file."""
    b = p.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_write(p, header, data, raw_header: bytes | None = None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(h)) + h + data)


def edit_json(name, fn):
    def damage(ck):
        p = ck / name
        obj = json.loads(p.read_text())
        obj = fn(obj)
        p.write_text(json.dumps(obj))
        rewrite_manifest(ck)
    return damage


def edit_header(fn, name="model.safetensors"):
    def damage(ck):
        h, data = st_parts(ck / name)
        h, data = fn(h, data)
        st_write(ck / name, h, data)
        rewrite_manifest(ck)
    return damage


def raw(name, fn, rewrite=True):
    def damage(ck):
        p = ck / name
        p.write_bytes(fn(p.read_bytes()))
        if rewrite:
            rewrite_manifest(ck)
    return damage


def first_tensor(h):
    return next(k for k in h if k != "__metadata__")


def _set(d, k, v):
    d = dict(d)
    d[k] = v
    return d


def _del(d, k):
    d = dict(d)
    del d[k]
    return d


def _shape(h, data, shape):
    k = first_tensor(h)
    h[k]["shape"] = shape
    return h, data


def _dtype(h, data, dtype):
    h[first_tensor(h)]["dtype"] = dtype
    return h, data


def _offsets(h, data, off):
    h[first_tensor(h)]["data_offsets"] = off
    return h, data


def _overlap(h, data):
    keys = [k for k in h if k != "__metadata__"]
    a, b = sorted(keys, key=lambda k: h[k]["data_offsets"][0])[:2]
    n = h[b]["data_offsets"][1] - h[b]["data_offsets"][0]
    h[b]["data_offsets"] = [h[a]["data_offsets"][0], h[a]["data_offsets"][0] + n]
    return h, data


def _drop_tensor(h, data):
    del h[first_tensor(h)]
    return h, data


def _flip_header_byte(b: bytes) -> bytes:
    n = struct.unpack("<Q", b[:8])[0]
    i = 8 + n // 2
    return b[:i] + bytes([b[i] ^ 0x5A]) + b[i + 1:]


def _manifest(fn):
    def damage(ck):
        m = json.loads((ck / "manifest.json").read_text())
        (ck / "manifest.json").write_text(json.dumps(fn(m, ck)))
    return damage


def _symlink_entry(m, ck):
    os.symlink("/dev/zero", ck / "zero.json")
    m["files"]["zero.json"] = "0" * 64
    return m


def _foreign(kind, name):
    """Replace `name` by the same file of a run with another cell (`kind`), manifest rewritten."""
    def damage(ck, other=None):
        shutil.copy(other[kind] / "checkpoint" / name, ck / name)
        rewrite_manifest(ck)
    damage.foreign = kind
    return damage


def _replace_folder_by_file(ck):
    shutil.rmtree(ck)
    ck.write_text("not a folder")


CATALOGUE = {
    # safetensors bytes
    "model header byte flipped": raw("model.safetensors", _flip_header_byte),
    "model header size field huge": raw("model.safetensors", lambda b: struct.pack("<Q", 1 << 60) + b[8:]),
    "model header size field zero": raw("model.safetensors", lambda b: struct.pack("<Q", 0) + b[8:]),
    "model header not JSON": raw("model.safetensors", lambda b: b[:8] + b"\0" + b[9:]),
    "model weights truncated (manifest rewritten)": raw("model.safetensors", lambda b: b[: len(b) - 100]),
    "model weights truncated to 4 bytes": raw("model.safetensors", lambda b: b[:4]),
    "model weights empty": raw("model.safetensors", lambda b: b""),
    "model weights truncated (manifest not rewritten)": raw("model.safetensors", lambda b: b[: len(b) // 2],
                                                            rewrite=False),
    "model header shape enormous": edit_header(lambda h, d: _shape(h, d, [10 ** 7, 10 ** 4])),
    "model header shape negative": edit_header(lambda h, d: _shape(h, d, [-1, 4])),
    "model header dtype F64 (size mismatch)": edit_header(lambda h, d: _dtype(h, d, "F64")),
    "model header dtype unknown": edit_header(lambda h, d: _dtype(h, d, "OBJ")),
    "model header offsets beyond the file": edit_header(lambda h, d: _offsets(h, d, [0, 10 ** 9])),
    "model header offsets not numbers": edit_header(lambda h, d: _offsets(h, d, ["a", "b"])),
    "model header arrays overlap": edit_header(_overlap),
    "model tensor missing": edit_header(_drop_tensor),
    "optimizer header byte flipped": raw("optimizer.safetensors", _flip_header_byte),
    "state weights truncated": raw("state.safetensors", lambda b: b[: len(b) - 8]),
    # JSON files
    "config not JSON": raw("config.json", lambda b: b"{not json"),
    "config not UTF-8": raw("config.json", lambda b: b"\xff\xfe" + b),
    "config has NaN": raw("config.json", lambda b: b.replace(b'"seed": 0', b'"seed": NaN')),
    "config hidden_size 10**7 (19 GiB)": edit_json("config.json", lambda d: _set(d, "hidden_size", 10 ** 7)),
    "config hidden_size a string": edit_json("config.json", lambda d: _set(d, "hidden_size", "big")),
    "config hidden_size missing": edit_json("config.json", lambda d: _del(d, "hidden_size")),
    "config embed_dim 10**8": edit_json("config.json", lambda d: _set(d, "embed_dim", 10 ** 8)),
    "config num_layers 3": edit_json("config.json", lambda d: _set(d, "num_layers", 3)),
    "config cell gru over LSTM weights": edit_json("config.json", lambda d: _set(d, "cell", "gru")),
    "config is a list": edit_json("config.json", lambda d: [d]),
    "config of another task": edit_json("config.json", lambda d: _set(d, "task", "forecast")),
    "config unknown key": edit_json("config.json", lambda d: _set(d, "evil", 1)),
    "vocab symbols removed": edit_json("vocab.json", lambda d: _set(d, "symbols", d["symbols"][:-3])),
    "vocab symbols of wrong type": edit_json("vocab.json", lambda d: _set(d, "symbols", [1, 2, 3])),
    "vocab not JSON": raw("vocab.json", lambda b: b[:-5]),
    "trainer step missing": edit_json("trainer.json", lambda d: _del(d, "step")),
    "trainer step a string": edit_json("trainer.json", lambda d: _set(d, "step", "ten")),
    "trainer step negative": edit_json("trainer.json", lambda d: _set(d, "step", -5)),
    "trainer rng state garbage": edit_json("trainer.json", lambda d: _set(d, "rng_state", {"bit_generator": 5})),
    "trainer optimizer entry missing": edit_json("trainer.json", lambda d: _del(d, "optimizer")),
    "trainer history a number": edit_json("trainer.json", lambda d: _set(d, "history", 3)),
    "trainer JSON nested 100000 deep": raw("trainer.json", lambda b: b"[" * 100000 + b"]" * 100000),
    # manifest
    "manifest not JSON": raw("manifest.json", lambda b: b[: len(b) // 2], rewrite=False),
    "manifest not UTF-8": raw("manifest.json", lambda b: b"\x80" + b, rewrite=False),
    "manifest entry '../x.json'": _manifest(lambda m, ck: _set(m, "files", {**m["files"], "../x.json": "0" * 64})),
    "manifest entry absolute path": _manifest(lambda m, ck: _set(m, "files", {**m["files"], "/etc/passwd.json": "0"})),
    "manifest entry a symlink to /dev/zero": _manifest(_symlink_entry),
    "manifest entry hidden name": _manifest(lambda m, ck: _set(m, "files", {**m["files"], ".x.json": "0"})),
    "manifest lists a missing file": _manifest(lambda m, ck: _set(m, "files", {**m["files"], "gone.json": "0"})),
    "manifest files not an object": _manifest(lambda m, ck: _set(m, "files", ["model.safetensors"])),
    "manifest version 99": _manifest(lambda m, ck: _set(m, "version", 99)),
    "manifest format unknown": _manifest(lambda m, ck: _set(m, "format", "pickle")),
    "manifest is a folder": lambda ck: ((ck / "manifest.json").unlink(), (ck / "manifest.json").mkdir()),
    "checkpoint folder is a file": _replace_folder_by_file,
    # files of another model
    "optimizer file of a GRU run": _foreign("gru", "optimizer.safetensors"),
    "state file of a GRU run": _foreign("gru", "state.safetensors"),
    "model file of a GRU run": _foreign("gru", "model.safetensors"),
    "model file of a wider LSTM run": _foreign("wide", "model.safetensors"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real checkpoints: the LSTM run the catalogue damages, and runs of other models to take files from."""
    d = tmp_path_factory.mktemp("ck")
    (d / "text.txt").write_text(TEXT)
    made = {}
    for kind, extra in {"lstm": [], "gru": ["--cell", "gru"], "wide": ["--hidden", "12"]}.items():
        out = d / kind
        assert main(["textgen", "train", str(d / "text.txt"), "--out", str(out), "--steps", "3", *SMALL,
                     *extra]) == 0
        made[kind] = out
    made["text"] = d / "text.txt"
    return made


def damaged_copy(runs, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(runs["lstm"], run)
    damage = CATALOGUE[name]
    if getattr(damage, "foreign", None):
        damage(run / "checkpoint", other=runs)
    else:
        damage(run / "checkpoint")
    return run


def test_catalogue_has_30_plus_cases():
    assert len(CATALOGUE) >= 30


def training_state_only(name: str) -> bool:
    """Damage to the training state (optimiser, carried state, trainer.json) leaves the model loadable:
    sampling may work, resuming must refuse."""
    return name.split()[0] in ("optimizer", "state", "trainer")


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_damaged_checkpoint_one_line(name, runs, tmp_path, capsys):
    run = damaged_copy(runs, tmp_path, name)
    for argv in (["textgen", "sample", str(run), "--length", "5"],
                 ["textgen", "train", str(runs["text"]), "--resume", str(run), "--steps", "6", "--no-progress",
                  "--sample-length", "0"]):
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        if code == 0 and argv[1] == "sample" and training_state_only(name):
            assert len(out) == 6 and err == "", (name, out, err)   # the intact model sampled
            continue
        assert code == 2, (name, argv[1], code, err)
        line = one_line_error(err)
        assert line.startswith("rnnkit: error:") and len(line) < 400, line
        assert out == "", (name, out)


@pytest.mark.parametrize("name", ["model header shape enormous", "config hidden_size 10**7 (19 GiB)",
                                  "manifest entry a symlink to /dev/zero"])
def test_damaged_checkpoint_subprocess(name, runs, tmp_path):
    """The real CLI in its own process: one line, exit 2, and (for the 19 GiB config) no big allocation."""
    run = damaged_copy(runs, tmp_path, name)
    r = rnnkit("textgen", "sample", run, "--length", "5", timeout=120)
    assert r.returncode == 2, r.stderr
    assert "damaged" in one_line_error(r.stderr) or "not a regular file" in r.stderr


def test_intact_copy_still_loads(runs, tmp_path, capsys):
    """The catalogue's base is a good checkpoint (so each refusal is the damage's doing)."""
    run = tmp_path / "run"
    shutil.copytree(runs["lstm"], run)
    assert main(["textgen", "sample", str(run), "--length", "5", "--seed", "1"]) == 0
    assert main(["textgen", "train", str(runs["text"]), "--resume", str(run), "--steps", "5", *SMALL]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 5


# -- the other tasks' load paths ------------------------------------------------------------------------
GENERIC = {
    "weights truncated (manifest rewritten)": lambda ck: raw("model.safetensors", lambda b: b[: len(b) - 64])(ck),
    "header byte flipped": lambda ck: raw("model.safetensors", _flip_header_byte)(ck),
    "header shape enormous": lambda ck: edit_header(lambda h, d: _shape(h, d, [10 ** 7, 10 ** 4]))(ck),
    "tensor missing": lambda ck: edit_header(_drop_tensor)(ck),
    "json not UTF-8": None,   # filled per task: its own JSON file
    "json sizes 10**7": None,
    "json wrong types": None,
    "json key missing": None,
}


def _task_json(ck):
    names = [n for n in json.loads((ck / "manifest.json").read_text())["files"]
             if n.endswith(".json") and n != "trainer.json"]
    return names[0]


def _set_sizes(obj):
    if isinstance(obj, dict):
        return {k: (10 ** 7 if k in ("hidden", "hidden_size", "embed", "embedding_dim", "horizon", "n_features",
                                     "input_size_") else _set_sizes(v)) for k, v in obj.items()}
    return obj


def _wrong_types(obj):
    if isinstance(obj, dict):
        return {k: ([v] if k in ("hidden", "hidden_size", "layers", "num_layers", "alphabet", "cell", "classes_")
                    else _wrong_types(v)) for k, v in obj.items()}
    return obj


def _drop_keys(obj):
    if isinstance(obj, dict):
        return {k: _drop_keys(v) for k, v in obj.items() if k not in ("hidden", "hidden_size", "params", "alphabet")}
    return obj


def generic_damage(name, ck):
    if name == "json not UTF-8":
        return raw(_task_json(ck), lambda b: b"\xff" + b)(ck)
    if name == "json sizes 10**7":
        return edit_json(_task_json(ck), _set_sizes)(ck)
    if name == "json wrong types":
        return edit_json(_task_json(ck), _wrong_types)(ck)
    if name == "json key missing":
        return edit_json(_task_json(ck), _drop_keys)(ck)
    return GENERIC[name](ck)


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """Real tiny runs of classify, forecast, names, translate and transcribe, with the command that loads
    each."""
    d = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 5, 2))
    np.savez(d / "seq.npz", X=X, y=(X[:, :, 0].sum(1) > 0).astype(int))
    t = np.arange(60)
    (d / "s.csv").write_text("v\n" + "\n".join(f"{10 + np.sin(i / 3):.4f}" for i in t) + "\n")
    names = d / "names"
    names.mkdir()
    (names / "English.txt").write_text("\n".join(["Smith", "Jones", "Brown", "Black", "White"] * 4) + "\n")
    (names / "Italian.txt").write_text("\n".join(["Rossi", "Bianchi", "Russo", "Ricci", "Conti"] * 4) + "\n")
    (d / "pairs.tsv").write_text("\n".join(f"{a} sat\t{b} sass" for a, b in
                                           [("the cat", "le chat"), ("a dog", "un chien"), ("the dog", "le chien"),
                                            ("a cat", "un chat")] * 6) + "\n")
    fast = ["--epochs", "1", "--hidden", "4", "--no-progress"]
    manifest = _tones(d)
    cmds = {
        "classify": (["classify", "train", str(d / "seq.npz"), "--out", str(d / "classify"), *fast],
                     ["classify", "predict", str(d / "classify"), str(d / "seq.npz")], "model"),
        "forecast": (["forecast", "train", str(d / "s.csv"), "--column", "v", "--horizon", "2", "--origins", "1",
                      "--out", str(d / "forecast"), *fast], ["forecast", "predict", str(d / "forecast")], "model"),
        "names": (["names", "train", str(names), "--out", str(d / "names_run"), "--steps", "3", "--hidden", "4",
                   "--no-progress"],
                  ["names", "sample", str(d / "names_run"), "--language", "English", "-n", "2"], "checkpoint"),
        "translate": (["translate", "train", str(d / "pairs.tsv"), "--out", str(d / "translate"), "--steps", "3",
                       "--hidden", "4", "--no-progress"],
                      ["translate", "predict", str(d / "translate"), "the", "cat"], "checkpoint"),
        "transcribe": (["transcribe", "train", str(manifest), "--out", str(d / "transcribe"), "--steps", "2",
                        "--batch-size", "4", "--n-features", "8", "--hidden", "4", "--no-progress"],
                       ["transcribe", "predict", str(d / "transcribe"), str(d / "u0.wav")], "checkpoint"),
    }
    for task, (train, _, _) in cmds.items():
        assert main(train) == 0, task
    return cmds


@pytest.mark.parametrize("damage", sorted(GENERIC))
@pytest.mark.parametrize("task", ["classify", "forecast", "names", "translate", "transcribe"])
def test_other_tasks_damaged(task, damage, task_runs, tmp_path, capsys):
    train, load, sub = task_runs[task]
    src = train[train.index("--out") + 1]
    run = tmp_path / "run"
    shutil.copytree(src, run)
    generic_damage(damage, run / sub)
    argv = [str(run) if a == src else a for a in load]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (task, damage, code, err, out)
    assert one_line_error(err).startswith("rnnkit: error:")


def test_pickle_in_npz_does_not_run(tmp_path):
    """An object array in an .npz is a pickle: loading it must not run the code it names."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    X = np.empty(2, dtype=object)
    X[0], X[1] = Evil(), Evil()
    np.savez(tmp_path / "evil.npz", X=X, y=np.array([0, 1]))
    r = subprocess.run([sys.executable, "-m", "rnnkit", "classify", "train", str(tmp_path / "evil.npz"), "--out",
                        str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(__import__("fault_tools").SRC)), timeout=120)
    assert r.returncode == 2 and "pickle" in one_line_error(r.stderr)
    assert not marker.exists()
    assert not (tmp_path / "o").exists()
