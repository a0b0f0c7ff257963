"""Character-level LSTM on Tiny Shakespeare: rnnkit vs PyTorch for the same wall-clock budget.

Same model (embedding 64, one LSTM layer of 256, linear head, and the dropout of the text generator's
default, `TextGenConfig()`: variational dropout on the LSTM's input and output, one mask per stream and
batch, written for torch here as a (1, B, D) mask, and weight-drop on W_hh), same initial weights
(rnnkit's, copied into torch), same batches (32 contiguous streams, 100 steps of truncated BPTT, state
carried), same optimiser (Adam 2e-3, global-norm clip 5). Each framework trains for --budget seconds,
one after the other; then both are scored the same way on the held-out last 10% of the text (bits per character,
streams with the state carried). Throughput counts training time only.

    python3 benchmarks/textgen_vs_torch.py --budget 120 --threads 2

It rewrites the table between the markers in docs/readme/textgen.md (use --no-write to only print).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per framework (default 120)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads for numpy = torch threads")
    p.add_argument("--data", default=None, help="text file (default: $RNNKIT_SHARED_DATA/tinyshakespeare.txt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["rnnkit", "torch"], default=None)
    p.add_argument("--no-write", action="store_true", help="print the table, do not update the docs")
    p.add_argument("--no-eval", action="store_true", help="skip the validation score (throughput only)")
    p.add_argument("--warmup", action="store_true",
                   help="one untimed training step first (Numba's kernel load, torch's first call)")
    return p.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ[var] = str(ARGS.threads)
sys.path.insert(0, str(ROOT / "src"))
import rnnkit  # noqa: E402,F401

import numpy as np  # noqa: E402

from rnnkit.models import RNNLanguageModel  # noqa: E402
from rnnkit.tasks import textgen as tg  # noqa: E402
from rnnkit.train import TrainConfig, Trainer  # noqa: E402

EMBED, HIDDEN, SEQ, BATCH, LR, CLIP, VAL_FRAC = 64, 256, 100, 32, 2e-3, 5.0, 0.1
_DEFAULT = tg.TextGenConfig()
DROP_IN, DROP_OUT, WEIGHT_DROP = _DEFAULT.dropout_input, _DEFAULT.dropout_output, _DEFAULT.weight_drop
if (_DEFAULT.dropout_embedding, _DEFAULT.variational) != (0.0, True):
    sys.exit("textgen_vs_torch: the torch side writes variational input/output dropout and weight-drop "
             "only; extend it for the default's embedding dropout or element-wise dropout")


def data_path() -> Path:
    if ARGS.data:
        return Path(ARGS.data)
    shared = Path(os.environ.get("RNNKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return shared / "tinyshakespeare.txt"


def batches_for(train_ids):
    def batches(epoch, rng):
        return tg.stream_batches(train_ids, BATCH, SEQ, int(rng.integers(0, SEQ)))
    return batches


def run_rnnkit(model, train_ids, val_ids):
    carry = tg.CarriedState()
    step = tg.make_train_step(model, carry)
    if ARGS.warmup:                                  # on a copy: the timed run starts from the same weights
        import copy

        twin = copy.deepcopy(model)
        x, y, _ = next(iter(tg.stream_batches(train_ids, BATCH, SEQ)))
        tg.make_train_step(twin, tg.CarriedState())((x, y, True))
    cfg = TrainConfig(time_budget=ARGS.budget, lr=LR, clip=CLIP, optimizer="adam", eval_every=0, progress=False,
                      seed=ARGS.seed)
    tr = Trainer(model, cfg).fit(batches_for(train_ids), step, None, carry)
    val = float("nan") if ARGS.no_eval else tg.evaluate(model, val_ids, BATCH, SEQ)
    return {"steps": tr.step, "tokens": tr.items, "seconds": tr.elapsed, "val_nats": val,
            "last_train_nats": float(np.mean(tr.history["loss"][-20:]))}


def run_torch(init_state, V, train_ids, val_ids):
    import torch

    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, EMBED)
            self.rnn = torch.nn.LSTM(EMBED, HIDDEN)
            self.head = torch.nn.Linear(HIDDEN, V)

        def drop(self, a, p):
            """Variational dropout: one (1, B, D) mask for all steps, as rnnkit's VariationalDropout."""
            if not self.training or p == 0:
                return a
            return a * (torch.rand((1, *a.shape[1:])) >= p).to(a.dtype) / (1 - p)

        def lstm(self, e, state):
            """The LSTM, with DropConnect on W_hh in training (one mask per batch, as rnnkit's weight_drop):
            the masked matrix swapped in for the call, its gradient reaching the parameter through it."""
            if not self.training or WEIGHT_DROP == 0:
                return self.rnn(e, state)
            w = self.rnn.weight_hh_l0
            mask = (torch.rand(w.shape) >= WEIGHT_DROP).to(w.dtype) / (1 - WEIGHT_DROP)
            return torch.func.functional_call(self.rnn, {"weight_hh_l0": w * mask}, (e, state))

        def forward(self, x, state=None):
            h, state = self.lstm(self.drop(self.embedding(x), DROP_IN), state)
            return self.head(self.drop(h, DROP_OUT)), state

    net = Net()
    net.load_state_dict({k: torch.tensor(v) for k, v in init_state.items()})
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    rng = np.random.default_rng(ARGS.seed)   # the same batch order as rnnkit's Trainer
    batches = batches_for(train_ids)
    if ARGS.warmup:                                  # one untimed step on a copy
        import copy

        twin = copy.deepcopy(net)
        x, y, _ = next(iter(tg.stream_batches(train_ids, BATCH, SEQ)))
        logits, _ = twin(torch.from_numpy(x.astype(np.int64)))
        torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                          torch.from_numpy(y.astype(np.int64)).reshape(-1)).backward()
    steps = tokens = 0
    t0 = time.perf_counter()
    epoch = 0
    done = False
    while not done:
        state = None
        for x, y, reset in batches(epoch, rng):
            if time.perf_counter() - t0 >= ARGS.budget:
                done = True
                break
            if reset:
                state = None
            logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
            state = tuple(s.detach() for s in state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            opt.step()
            steps += 1
            tokens += y.size
        epoch += 1
    seconds = time.perf_counter() - t0
    if ARGS.no_eval:
        return {"steps": steps, "tokens": tokens, "seconds": seconds, "val_nats": float("nan"),
                "version": torch.__version__}
    # validation exactly as tg.evaluate does it: streams, state carried
    net.eval()
    B = max(1, min(BATCH, (len(val_ids) - 1) // SEQ))
    total = count = 0.0
    state = None
    with torch.no_grad():
        for x, y, _ in tg.stream_batches(val_ids, B, SEQ):
            logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1), reduction="sum").item()
            count += y.size
    return {"steps": steps, "tokens": tokens, "seconds": seconds, "val_nats": total / count,
            "version": torch.__version__}


def main():
    path = data_path()
    if not path.is_file():
        sys.exit(f"textgen_vs_torch: {path} not found (set RNNKIT_SHARED_DATA or pass --data)")
    text = tg.read_corpus(path, "char")
    vocab = tg.Vocab.build(text, "char")
    ids = vocab.encode(text)
    train_ids, val_ids = tg.split(ids, VAL_FRAC)
    model = RNNLanguageModel(len(vocab), EMBED, HIDDEN, 1, "lstm", seed=ARGS.seed, dropout_input=DROP_IN,
                             dropout_output=DROP_OUT, weight_drop=WEIGHT_DROP)
    init_state = model.state_dict()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{path.name}: {len(ids):,} chars, vocab {len(vocab)}, train {len(train_ids):,}, val {len(val_ids):,}; "
          f"budget {ARGS.budget:g} s each, {ARGS.threads} threads, load average {load:.1f}", flush=True)
    results = {}
    if ARGS.only in (None, "rnnkit"):
        results["rnnkit"] = run_rnnkit(model, train_ids, val_ids)
        print("rnnkit", results["rnnkit"], flush=True)
    if ARGS.only in (None, "torch"):
        results["PyTorch"] = run_torch(init_state, len(vocab), train_ids, val_ids)
        print("torch", results["PyTorch"], flush=True)
    table = make_table(results, path, len(ids), load)
    print(table)
    if not ARGS.no_write:
        write_table(table)


def make_table(results, path, n, load):
    ln2 = np.log(2)
    cmd = "python3 benchmarks/textgen_vs_torch.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{cmd.strip()}`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {ARGS.threads} BLAS/torch threads, "
             f"load average {load:.1f} at the start; Python {platform.python_version()}, NumPy {np.__version__}"
             + (f", PyTorch {results['PyTorch']['version']}" if "PyTorch" in results else "") + ".  ",
             f"Data: {path.name} ({n:,} chars), last {VAL_FRAC:.0%} held out; model: embedding {EMBED}, LSTM "
             f"{HIDDEN}, variational dropout {DROP_IN:g} in / {DROP_OUT:g} out, weight-drop {WEIGHT_DROP:g}, "
             f"seq {SEQ}, batch {BATCH}, Adam {LR:g}, "
             f"clip {CLIP:g}; {ARGS.budget:g} s of training each.",
             "",
             "| framework | steps | characters | characters/s | validation bits/char |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['steps']:,} | {r['tokens']:,} | {r['tokens'] / r['seconds']:,.0f} | "
                     f"{r['val_nats'] / ln2:.3f} |")
    return "\n".join(lines)


START, END = "<!-- textgen-bench:start -->", "<!-- textgen-bench:end -->"


def write_table(table):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _docs import write_block

    write_block(ROOT / "docs" / "readme" / "textgen.md", START, END, table)


if __name__ == "__main__":
    main()
