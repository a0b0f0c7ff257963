"""Fault suite: real `rnnkit textgen train` processes killed, terminated, starved of disk and doubled.

Every case must end with a loadable checkpoint (and a `--resume` that finishes the run) or one clear
line. The kills are real SIGKILLs of real subprocesses at random moments and, half of them, at the moment
a checkpoint save is seen in progress (a `.checkpoint.tmp-PID` folder), so the rename window is hit.
The counts are printed (pytest -s) and are the figures docs/testing.md reports.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from fault_tools import env, fill, one_line_error, popen, rnnkit, tmpfs
from rnnkit.errors import UserError
from rnnkit.tasks import textgen as tg
from rnnkit.train import load_checkpoint
from rnnkit.train.checkpoint import save_checkpoint

WORDS = "the quick brown fox jumps over a lazy dog and runs far away".split()
TINY = ["--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch", "4", "--eval-every", "0",
        "--sample-length", "0", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(0)
    f = tmp_path / "c.txt"
    f.write_text(" ".join(rng.choice(WORDS) for _ in range(1500)))
    return f


def wait_for_training(p: subprocess.Popen, timeout: float = 120) -> None:
    """Block until the run has printed its 'N parameters' line (data read, model built, loop starting)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = p.stderr.readline()
        if not line:
            break
        if "parameters" in line:
            return
    raise AssertionError(f"the run did not start training (exit {p.poll()})")


def wait_for_save(out, p: subprocess.Popen, nth: int = 1, timeout: float = 30) -> bool:
    """Poll until the `nth` checkpoint save of `p` is in progress (its .tmp- folder exists); False if the
    process ended or the time ran out first."""
    tmp = out / f".checkpoint.tmp-{p.pid}"
    t0, seen, was = time.monotonic(), 0, False
    while time.monotonic() - t0 < timeout and p.poll() is None:
        now = tmp.exists()
        if now and not was:
            seen += 1
            if seen >= nth:
                return True
        was = now
    return False


def copies(out) -> list[str]:
    return sorted(n for n in os.listdir(out) if ".tmp-" in n or ".old-" in n) if out.exists() else []


def saved_step(out) -> int | None:
    """The step of the checkpoint in `out` (recovering it from a complete copy if need be); None if none."""
    try:
        _, jsons = load_checkpoint(out / "checkpoint")
    except UserError as e:
        assert "does not exist" in str(e), f"a kill left a damaged checkpoint: {e}"
        return None
    return jsons["trainer"]["step"]


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(corpus, tmp_path):
    """24 SIGKILLs (12 at random moments, 12 during a save); after each the checkpoint loads (or none was
    written yet) and never goes back in steps; a final --resume finishes. The step budget is far more than
    the kills leave time for, so that a fast machine cannot finish the run between two kills."""
    out, total, rng = tmp_path / "run", 1_000_000, random.Random(1234)
    counts = {"kills": 0, "during_save": 0, "left_copies": 0, "recovered_from_copy": 0, "no_checkpoint_yet": 0}
    last = 0
    for i in range(24):
        start = (["--resume", out] if last else [corpus, "--out", out, "--steps", total,
                                                 "--checkpoint-seconds", "0.01", *TINY])
        p = popen("textgen", "train", *start)
        try:
            wait_for_training(p)
            if i % 2:
                counts["during_save"] += wait_for_save(out, p, nth=rng.randint(1, 40))
            else:
                time.sleep(rng.uniform(0, 1.5))
        finally:
            p.kill()
            p.wait()
            p.stderr.close()
        counts["kills"] += 1
        left = copies(out)
        counts["left_copies"] += bool(left)
        had = (out / "checkpoint" / "manifest.json").is_file()
        step = saved_step(out)
        if step is None:
            counts["no_checkpoint_yet"] += 1
            assert last == 0, "a checkpoint that existed was lost"
            continue
        counts["recovered_from_copy"] += not had
        assert step >= last, f"kill {i}: the checkpoint went back from step {last} to {step}"
        last = step
    print(f"\nkill -9 fault cases: {counts}, last saved step {last} of {total}")
    # the resumed runs kept the run's own settings (no option given on resume)
    tcfg = load_checkpoint(out / "checkpoint")[1]["trainer"]["train_config"]
    assert tcfg["checkpoint_seconds"] == 0.01 and tcfg["steps"] == total and tcfg["eval_every"] == 0
    assert last > 0, "no kill left a checkpoint"
    r = rnnkit("textgen", "train", "--resume", out, "--checkpoint-seconds", "0", "--steps", last + 20,
               timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == last + 20
    assert load_checkpoint(out / "checkpoint")[1]["trainer"]["train_config"]["checkpoint_seconds"] == 0
    assert counts["kills"] == 24 and counts["during_save"] >= 6 and last < total
    assert copies(out) == []  # the dead processes' copies were cleaned


def test_kill_9_default_run_keeps_a_checkpoint(corpus, tmp_path):
    """A run with no checkpoint option (so --checkpoint-seconds' default applies; here 1 s to be quick)
    killed by SIGKILL keeps a loadable checkpoint that --resume continues."""
    out = tmp_path / "run"
    p = popen("textgen", "train", corpus, "--out", out, "--steps", "100000", "--checkpoint-seconds", "1", *TINY)
    try:
        wait_for_training(p)
        t0 = time.monotonic()
        while not (out / "checkpoint" / "manifest.json").is_file() and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        p.kill()
        p.wait()
        p.stderr.close()
    step = saved_step(out)
    assert step is not None and step > 0
    r = rnnkit("textgen", "train", "--resume", out, "--steps", step + 3, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 3


@pytest.mark.parametrize("during_save", [False, True])
def test_sigterm_saves_and_exits(corpus, tmp_path, during_save):
    out = tmp_path / "run"
    p = popen("textgen", "train", corpus, "--out", out, "--steps", "100000", "--checkpoint-seconds",
              "0.01" if during_save else "0", *TINY)
    wait_for_training(p)
    if during_save:
        assert wait_for_save(out, p)
    else:
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "checkpoint saved" in err and "Traceback" not in err
    step = saved_step(out)   # may be 0: the signal can come before the first step ends
    assert step is not None and copies(out) == []
    r = rnnkit("textgen", "train", "--resume", out, "--steps", step + 2, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 2


def test_two_runs_on_one_folder(corpus, tmp_path):
    out = tmp_path / "run"
    a = popen("textgen", "train", corpus, "--out", out, "--steps", "100000", "--checkpoint-seconds", "0.2", *TINY)
    try:
        wait_for_training(a)
        for argv in ([corpus, "--out", out, "--steps", "5", *TINY], ["--resume", out, "--steps", "5"]):
            r = rnnkit("textgen", "train", *argv)
            assert r.returncode == 2
            line = one_line_error(r.stderr)
            assert "in use by another rnnkit run" in line and f"process {a.pid}" in line, line
        assert a.poll() is None  # the first run goes on
        while not (out / "checkpoint").is_dir():
            time.sleep(0.05)
    finally:
        a.kill()
        a.wait()
        a.stderr.close()
    # the kernel dropped the dead run's lock: the folder is free at once
    r = rnnkit("textgen", "train", "--resume", out, "--steps", saved_step(out) + 2)
    assert r.returncode == 0, r.stderr


def test_full_disk_while_saving(corpus, tmp_path):
    """The disk fills during training: the next save fails with one line; the previous checkpoint loads;
    with space again, --resume finishes."""
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "run"
        p = popen("textgen", "train", corpus, "--out", out, "--steps", "100000", "--checkpoint-seconds", "0.01",
                  *TINY)
        wait_for_training(p)
        while not (out / "checkpoint" / "manifest.json").is_file():
            time.sleep(0.01)
        fill(disk)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2, err
        line = one_line_error(err)
        assert "disk is full" in line and "previous checkpoint is intact" in line, line
        step = saved_step(out)
        assert step is not None and copies(out) == []
        (disk / "filler").unlink()
        r = rnnkit("textgen", "train", "--resume", out, "--steps", step + 2)
        assert r.returncode == 0, r.stderr


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_rename_window_recovered(corpus, tmp_path, capsys):
    """The folder states a crash between the two renames of a save leaves (built from real saves, owned
    by a dead process): the newest complete copy is put in place and the stale ones removed."""
    from rnnkit.cli import main

    out = tmp_path / "run"
    assert main(["textgen", "train", str(corpus), "--out", str(out), "--steps", "2", *TINY]) == 0
    ck, dead = out / "checkpoint", _dead_pid()
    arrays, jsons = load_checkpoint(ck)
    newer = dict(jsons, trainer=dict(jsons["trainer"], step=jsons["trainer"]["step"] + 1))
    # 1. first rename done, second not: no checkpoint, .old (previous) and .tmp (new, complete)
    os.replace(ck, out / f".checkpoint.old-{dead}")
    save_checkpoint(out / f".checkpoint.tmp-{dead}", arrays, newer)
    assert tg.load(out)[2].hidden_size == 8          # the load path itself recovers
    assert load_checkpoint(ck)[1]["trainer"]["step"] == 3 and copies(out) == []
    # 2. the new copy incomplete (no manifest yet): the previous one is used
    os.replace(ck, out / f".checkpoint.old-{dead}")
    save_checkpoint(out / f".checkpoint.tmp-{dead}", arrays, jsons)
    (out / f".checkpoint.tmp-{dead}" / "manifest.json").unlink()
    assert load_checkpoint(ck)[1]["trainer"]["step"] == 3 and copies(out) == []
    # 3. a complete checkpoint with stale copies beside it: kept, copies removed by the folder check
    save_checkpoint(out / f".checkpoint.tmp-{dead}", arrays, jsons)
    save_checkpoint(out / f".checkpoint.old-{dead}", arrays, jsons)
    assert main(["textgen", "train", "--resume", str(out), "--steps", "4"]) == 0
    assert copies(out) == [] and load_checkpoint(ck)[1]["trainer"]["step"] == 4
    # 4. a live process's copy is never touched (it may be saving right now)
    live = out / f".checkpoint.tmp-{os.getppid()}"
    save_checkpoint(live, arrays, jsons)
    load_checkpoint(ck)
    assert live.is_dir()


def test_signal_handlers_restored_and_resume_keeps_settings(corpus, tmp_path, capsys):
    """After training, the process's SIGTERM/SIGINT handlers are the ones it had; a resume keeps the
    saved intervals unless given again."""
    from rnnkit.cli import main

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    out = tmp_path / "run"
    assert main(["textgen", "train", str(corpus), "--out", str(out), "--steps", "4", "--checkpoint-every", "2",
                 "--checkpoint-seconds", "7", *TINY[:8], "--eval-every", "3", "--no-progress",
                 "--sample-length", "0"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert main(["textgen", "train", "--resume", str(out), "--steps", "6", "--sample-length", "0"]) == 0
    tcfg = load_checkpoint(out / "checkpoint")[1]["trainer"]["train_config"]
    assert (tcfg["checkpoint_every"], tcfg["checkpoint_seconds"], tcfg["eval_every"], tcfg["steps"]) == (2, 7, 3, 6)
    assert main(["textgen", "train", "--resume", str(out), "--steps", "7", "--eval-every", "1",
                 "--sample-length", "0"]) == 0
    tcfg = load_checkpoint(out / "checkpoint")[1]["trainer"]["train_config"]
    assert (tcfg["checkpoint_every"], tcfg["eval_every"], tcfg["steps"]) == (2, 1, 7)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_env_has_this_checkout():
    assert env()["PYTHONPATH"].split(os.pathsep)[0].endswith("src")
