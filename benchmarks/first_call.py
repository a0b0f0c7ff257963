"""First-use cost of the fused kernels: Numba compiles them once per environment, then loads its cache.

Copies `src/` into a temporary folder without any `__pycache__` (so Numba's on-disk cache is empty, as
after `pip install`), then in a fresh Python process times, per cell, the first float32 forward +
backward + step of a tiny layer (the compile), and runs the same process again (the cached load).

Usage: python3 benchmarks/first_call.py [--cells lstm,gru,rnn]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, rnnkit
out = {"import rnnkit": time.perf_counter() - t0}
for name in sys.argv[1].split(","):
    t0 = time.perf_counter()
    layer = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[name](8, 16, dtype=np.float32, seed=0)
    x = np.zeros((5, 2, 8), np.float32)
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    layer.step(x[0])
    out[name] = time.perf_counter() - t0
print(json.dumps(out))
"""


def run(src: Path, cells: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, cells], env={"PYTHONPATH": str(src), "PATH": ""},
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
        first, cached = run(src, a.cells), run(src, a.cells)
    print("seconds, in the order run (the first cell also pays for importing Numba and shared helpers):")
    for k in first:
        print(f"  {k:14s} first use {first[k]:6.2f}   cached {cached[k]:6.2f}")
    return first, cached


if __name__ == "__main__":
    main()
