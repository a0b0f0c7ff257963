"""The main job on a busy machine: throughput idle, beside a plain busy process and beside a PyTorch
training job, for rnnkit and for PyTorch training the same model (issue 16, "fast on a busy machine").

The job is `textgen_vs_torch.py`'s: character LSTM on Tiny Shakespeare (embedding 64, LSTM 256, batch
32, sequence 100, Adam), trained for `--budget` seconds after one untimed step, each framework in a
fresh process (`--only ... --warmup --no-eval`: throughput only, no validation score).
Conditions:
    idle         nothing started beside it (the machine may still be shared: see the load printed)
    busy         beside one plain busy process (a Python spin loop: one core's worth of work)
    torch-job    beside a PyTorch training job (a torch LSTM training loop, torch's default threads)
For each framework the ratio is characters/s in the condition over characters/s idle. The load
average (1 min) is printed before each run, since other programs on the machine change the baseline.

Usage: python3 benchmarks/busy_machine.py [--budget 20] [--rounds 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "while True:\n    pass\n"
TORCH_JOB = """
import torch
torch.manual_seed(0)
net = torch.nn.LSTM(64, 256)
head = torch.nn.Linear(256, 65)
opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=1e-3)
x = torch.randn(100, 32, 64)
y = torch.randint(0, 65, (100 * 32,))
while True:
    out, _ = net(x)
    loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, 65), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
CONDITIONS = {"idle": None, "busy": SPIN, "torch-job": TORCH_JOB}


def run_job(framework: str, budget: float, data: str | None) -> dict:
    """One training run of `framework` ("rnnkit" or "torch", or "rnnkit@1" / "torch@1": with one
    BLAS/torch thread, `--threads 1`) in a fresh process; its result dict."""
    framework, _, threads = framework.partition("@")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "textgen_vs_torch.py"), "--only", framework,
           "--budget", str(budget), "--no-write", "--no-eval", "--warmup"]
    if threads:
        cmd += ["--threads", threads]
    if data:
        cmd += ["--data", data]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"busy_machine: the {framework} run failed:\n{done.stderr.strip()[-2000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(framework + " {"):
            return ast.literal_eval(line[len(framework) + 1:].replace("nan", "None"))  # --no-eval
    sys.exit(f"busy_machine: no result line in the {framework} run's output:\n{done.stdout[-2000:]}")


def measure(frameworks, budget, rounds, data=None, conditions=CONDITIONS) -> list[dict]:
    rows = []
    for rnd in range(rounds):
        for cond, code in conditions.items():
            for fw in (frameworks if rnd % 2 == 0 else frameworks[::-1]):
                beside = None
                if code is not None:
                    beside = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
                    time.sleep(3.0)                                  # let it start (torch imports)
                load = os.getloadavg()[0]
                try:
                    r = run_job(fw, budget, data)
                finally:
                    if beside is not None:
                        beside.kill()
                        beside.wait()
                rate = r["tokens"] / r["seconds"]
                rows.append({"round": rnd, "condition": cond, "framework": fw, "chars_per_s": rate,
                             "steps": r["steps"], "load": load})
                print(f"round {rnd + 1} {cond:9s} {fw:6s} {rate:10,.0f} chars/s  {r['steps']} steps  "
                      f"(load {load:.2f} before)", flush=True)
    return rows


def table(rows, frameworks) -> str:
    lines = ["| condition | " + " | ".join(f"{fw} chars/s | {fw} vs idle" for fw in frameworks) + " | load |",
             "|---|" + "---:|---:|" * len(frameworks) + "---|"]
    idle = {fw: statistics.median(r["chars_per_s"] for r in rows
                                  if r["framework"] == fw and r["condition"] == "idle") for fw in frameworks}
    for cond in dict.fromkeys(r["condition"] for r in rows):
        cells = []
        for fw in frameworks:
            rate = statistics.median(r["chars_per_s"] for r in rows
                                     if r["framework"] == fw and r["condition"] == cond)
            cells.append(f"{rate:,.0f} | {rate / idle[fw]:.2f}x")
        loads = [r["load"] for r in rows if r["condition"] == cond]
        lines.append(f"| {cond} | " + " | ".join(cells) + f" | {min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=20.0, help="training seconds per run (default 20)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--frameworks", default="rnnkit,torch",
                   help="comma list of rnnkit, torch, rnnkit@1, torch@1 (@1: one BLAS/torch thread)")
    p.add_argument("--data", default=None, help="text file (default: textgen_vs_torch's)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    frameworks = [f for f in a.frameworks.split(",") if f]
    known = {"rnnkit", "torch", "rnnkit@1", "torch@1"}
    if not frameworks or set(frameworks) - known or a.budget <= 0 or a.rounds < 1:
        p.error(f"--frameworks takes {','.join(sorted(known))}; --budget > 0; --rounds >= 1")
    rows = measure(frameworks, a.budget, a.rounds, a.data)
    print(f"\n{a.budget:g} s of training per run, median over {a.rounds} round(s); "
          f"{os.cpu_count()} CPUs\n")
    print(table(rows, frameworks))
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
