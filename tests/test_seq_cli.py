"""`rnnkit transcribe` and `rnnkit translate` end to end on tiny data, and their bad-input errors."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.audio import write_wav

DATA = Path(os.environ.get("RNNKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
FAST = ["--no-progress", "--hidden", "8", "--seed", "0"]


def _err(capsys, argv):
    with pytest.raises(SystemExit) as e:
        rc = main(argv)
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit: error:") and "\n" not in err and "Traceback" not in err, err
    return err


def _tones(tmp_path, rate=8000):
    """A manifest of synthetic 'words': symbol a = 500 Hz tone, b = 1500 Hz tone, joined by silence."""
    rng = np.random.default_rng(0)
    rows = ["path,transcript"]
    for i in range(12):
        text = "".join(rng.choice(list("ab"), size=rng.integers(1, 4)))
        t = np.arange(int(0.15 * rate)) / rate
        parts = []
        for ch in text:
            parts += [0.5 * np.sin(2 * np.pi * (500 if ch == "a" else 1500) * t), np.zeros(int(0.05 * rate))]
        write_wav(tmp_path / f"u{i}.wav", np.concatenate(parts) + 0.001 * rng.normal(size=sum(map(len, parts))),
                  rate)
        rows.append(f"u{i}.wav,{text}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "m.csv"


def test_transcribe_train_predict(tmp_path, capsys):
    m = _tones(tmp_path)
    rc = main(["transcribe", "train", str(m), "--eval", f"dev={m}", "--out", str(tmp_path / "run"),
               "--steps", "3", "--batch-size", "4", "--n-features", "8", *FAST])
    assert rc == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and 0 <= metrics["eval"]["dev"]["cer"] and "seq_acc" in metrics["eval"]["dev"]
    capsys.readouterr()
    assert main(["transcribe", "predict", str(tmp_path / "run"), str(tmp_path / "u0.wav"), "--beam", "3"]) == 0
    out = capsys.readouterr().out.strip()
    assert set(out) <= set("ab")
    # resume continues the same run
    assert main(["transcribe", "train", str(m), "--out", str(tmp_path / "run"), "--resume", str(tmp_path / "run"),
                 "--steps", "4", "--batch-size", "4", *FAST]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 4


def test_transcribe_bad_input(tmp_path, capsys):
    m = _tones(tmp_path)
    out = str(tmp_path / "o")
    assert "outside the alphabet" in _err(capsys, ["transcribe", "train", str(m), "--alphabet", "a", "--out", out, *FAST])
    (tmp_path / "empty.csv").write_text("u0.wav,ab\n\nu1.wav,a\n")
    assert "empty line" in _err(capsys, ["transcribe", "train", str(tmp_path / "empty.csv"), "--out", out])
    (tmp_path / "side.csv").write_text("u0.wav,\n")
    assert "both fields" in _err(capsys, ["transcribe", "train", str(tmp_path / "side.csv"), "--out", out])
    (tmp_path / "x.wav").write_text("not audio")
    (tmp_path / "nw.csv").write_text("x.wav,a\n")
    assert "not a WAV" in _err(capsys, ["transcribe", "train", str(tmp_path / "nw.csv"), "--out", out])
    write_wav(tmp_path / "silent.wav", np.zeros(4000), 8000)
    (tmp_path / "sil.csv").write_text("silent.wav,a\n")
    assert "silent" in _err(capsys, ["transcribe", "train", str(tmp_path / "sil.csv"), "--out", out])
    (tmp_path / "long.csv").write_text("u0.wav,abababababababababababab\n")
    assert "cannot align" in _err(capsys, ["transcribe", "train", str(tmp_path / "long.csv"), "--out", out])
    assert "does not exist" in _err(capsys, ["transcribe", "predict", str(tmp_path), str(tmp_path / "u0.wav")])


def test_transcribe_other_rate_is_resampled_with_a_note(tmp_path, capsys):
    m = _tones(tmp_path, rate=16000)
    assert main(["transcribe", "train", str(m), "--out", str(tmp_path / "r"), "--steps", "1",
                 "--batch-size", "4", *FAST]) == 0
    assert "resampled from 16000 Hz to 8000 Hz" in capsys.readouterr().out


def test_build_fsdd_manifest(tmp_path, capsys):
    rec = DATA / "fsdd" / "recordings"
    if not rec.exists():
        pytest.skip("shared data absent")
    assert main(["transcribe", "build-fsdd", str(rec), str(tmp_path), "--train", "3", "--test", "2",
                 "--speaker", "2", "--max-digits", "3"]) == 0
    rows = (tmp_path / "speaker.csv").read_text().splitlines()
    assert rows[0] == "path,transcript" and len(rows) == 3
    path, text = rows[1].split(",")
    assert (tmp_path / path).exists() and text.isdigit() and 1 <= len(text) <= 3
    assert "exceeds" in _err(capsys, ["transcribe", "build-fsdd", str(rec), str(tmp_path), "--min-digits", "5"])


PAIRS = "Go.\tVa !\nHi.\tSalut !\nRun!\tCours !\nI see.\tJe vois.\nI won!\tJ'ai gagné !\nStop!\tArrête !\n" * 3


def test_translate_train_predict(tmp_path, capsys):
    (tmp_path / "p.tsv").write_text(PAIRS, encoding="utf-8")
    rc = main(["translate", "train", str(tmp_path / "p.tsv"), "--out", str(tmp_path / "t"), "--steps", "3",
               "--batch-size", "4", "--embed", "8", "--test-fraction", "0.34", *FAST])
    assert rc == 0
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["test"]["n"] == 2 and 0 <= metrics["test"]["bleu"] <= 100
    capsys.readouterr()
    assert main(["translate", "predict", str(tmp_path / "t"), "I see.", "Go.", "--beam", "2"]) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 2 and out.err == ""
    assert main(["translate", "train", str(tmp_path / "p.tsv"), "--out", str(tmp_path / "t"), "--resume",
                 str(tmp_path / "t"), "--steps", "4", "--batch-size", "4", "--test-fraction", "0.34", *FAST]) == 0
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["steps"] == 4


def test_tokens_split_and_vocab():
    from rnnkit.tasks.translate import Vocab, detokenize, split_by_source, tokenize
    s = "J'ai gagné ! C'est 3,5 km."
    assert detokenize(tokenize(s)) == s
    assert tokenize("Va !") == ["Va", "\u2581!"]
    v = Vocab.build(["Je vois."])
    assert v.decode(v.encode("Je vois bien.")) == "Je vois <unk>."
    pairs = [("a", "x"), ("a", "y"), ("b", "z"), ("c", "w")]
    train, test = split_by_source(pairs, 0.34, seed=0)
    assert len(test) == 1 and all(s not in test for s, _ in train)
    assert sum(len(r) for r in test.values()) + len(train) == 4


def test_translate_bad_input(tmp_path, capsys):
    (tmp_path / "e.tsv").write_text("Go.\tVa !\n\nHi.\tSalut !\n")
    assert "empty line" in _err(capsys, ["translate", "train", str(tmp_path / "e.tsv"), "--out", str(tmp_path / "o")])
    (tmp_path / "m.tsv").write_text("Go.\tVa !\nHi.\t \n")
    assert ":2:" in _err(capsys, ["translate", "train", str(tmp_path / "m.tsv"), "--out", str(tmp_path / "o")])
    (tmp_path / "n.tsv").write_text("Go. Va !\n")
    assert "tab" in _err(capsys, ["translate", "train", str(tmp_path / "n.tsv"), "--out", str(tmp_path / "o")])
    assert "checkpoint" in _err(capsys, ["translate", "predict", str(tmp_path), "Hello"])
