"""Word-level LSTM language model: rnnkit vs PyTorch for the same wall-clock budget, one after the other.

The model and training of PyTorch's classic word_language_model example (examples/word_language_model:
`main.py --model LSTM --tied`), written here for both frameworks:
  - embedding E -> dropout -> 2-layer LSTM of H = E (dropout between the layers) -> dropout -> linear
    decoder whose weight is the embedding matrix (tied), decoder bias zero, all dropouts p = 0.2 drawn
    per element (nn.Dropout; rnnkit `variational=False`); the embedding U(-0.1, 0.1);
  - plain SGD, lr 20, the gradient's global norm clipped at 0.25, truncated BPTT of 35 steps over 20
    contiguous streams with the hidden state carried between batches (the gradient stops at the batch
    boundary); after each epoch the validation loss is measured, and if it did not improve, lr /= 4;
    the weights of the best validation loss are kept and scored on the test part.
Both start from the same initial weights (rnnkit's, copied into torch) and see the same batches. The
budget counts training steps only (validation between epochs is not counted, for either).

Data: ../shared/data/tinyshakespeare.txt read as words (`rnnkit.tasks.words.tokenize`: whitespace-
separated tokens, `<eos>` at each line end), split 90/5/5 into train/validation/test in text order; the
vocabulary is the training words seen at least twice (others `<unk>`).

    python3 benchmarks/wordlm_vs_torch.py --budget 240 --threads 2

It prints the table and rewrites it between the markers in docs/readme/textgen.md (--no-write: print
only), and writes benchmarks/results/wordlm_vs_torch.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=240.0, help="training seconds per framework (default 240)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads for numpy = torch threads")
    p.add_argument("--data", default=None, help="text file (default: $RNNKIT_SHARED_DATA/tinyshakespeare.txt)")
    p.add_argument("--size", type=int, default=200, help="embedding = hidden size (default 200)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["rnnkit", "torch"], default=None)
    p.add_argument("--no-write", action="store_true", help="print the table, do not update the docs")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "wordlm_vs_torch.json"),
                   help="where to write the results ('' for nowhere)")
    return p.parse_args(argv)


EVAL_BATCH = 10          # the example's eval batch size


def data_path(args) -> Path:
    if args.data:
        return Path(args.data)
    shared = Path(os.environ.get("RNNKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return shared / "tinyshakespeare.txt"


def load_data(args):
    """(vocab, train_ids, val_ids, test_ids): words of the text, 90/5/5 in text order."""
    from rnnkit.tasks.words import WordVocab, tokenize

    tokens = tokenize(data_path(args).read_text(encoding="utf-8"))
    if args.max_tokens:
        tokens = tokens[: args.max_tokens]
    n = len(tokens)
    a, b = int(n * 0.9), int(n * 0.95)
    vocab = WordVocab.build(tokens[:a], min_count=args.min_count)
    ids = vocab.encode(tokens)
    return vocab, ids[:a], ids[a:b], ids[b:]


class Plateau:
    """The example's schedule: after each epoch, lr /= 4 unless validation improved; keeps the best."""

    def __init__(self, lr: float):
        self.lr, self.best, self.best_state, self.epochs = lr, math.inf, None, 0

    def epoch_end(self, val: float, state) -> None:
        self.epochs += 1
        if val < self.best:
            self.best, self.best_state = val, state()
        else:
            self.lr /= 4.0


def run_rnnkit(args, model, train_ids, val_ids, test_ids):
    import numpy as np

    from rnnkit.kernels._threads import when_oversubscribed
    from rnnkit.optim import clip_grad_norm, make_optimizer
    from rnnkit.tasks import textgen as tg

    carry = tg.CarriedState()
    train_step = tg.make_train_step(model, carry)
    opt = make_optimizer("sgd", args.lr)
    sched = Plateau(args.lr)
    steps = tokens = 0
    seconds = 0.0
    done = False
    while not done:
        model.train()
        t0 = time.perf_counter()
        for batch in tg.stream_batches(train_ids, args.batch, args.bptt):
            if seconds + time.perf_counter() - t0 >= args.budget:
                done = True
                break
            with when_oversubscribed():          # as the Trainer runs each step
                loss, n = train_step(batch)
                grads = model.grads
                clip_grad_norm(grads, args.clip)
                opt.lr = sched.lr
                opt.step(model.params, grads)
            steps += 1
            tokens += n
        seconds += time.perf_counter() - t0
        val = tg.evaluate(model, val_ids, EVAL_BATCH, args.bptt)
        sched.epoch_end(val, model.state_dict)
        print(f"  rnnkit epoch {sched.epochs}: {steps} steps, {seconds:.0f} s, val ppl {math.exp(val):.2f}, "
              f"lr {sched.lr:g}", flush=True)
    model.load_state_dict(sched.best_state)
    val = tg.evaluate(model, val_ids, EVAL_BATCH, args.bptt)
    test = tg.evaluate(model, test_ids, EVAL_BATCH, args.bptt)
    return {"steps": steps, "tokens": tokens, "seconds": seconds, "epochs": sched.epochs, "val_nats": val,
            "test_nats": test, "final_lr": sched.lr, "numpy": np.__version__}


def run_torch(args, init_state, V, train_ids, val_ids, test_ids):
    import numpy as np
    import torch

    from rnnkit.tasks import textgen as tg

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    E, p = args.size, args.dropout

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, E)
            self.rnn = torch.nn.LSTM(E, E, args.layers, dropout=p)
            self.head = torch.nn.Linear(E, V)
            self.head.weight = self.embedding.weight          # tied, as the example's --tied
            self.drop = torch.nn.Dropout(p)

        def forward(self, x, state=None):
            h, state = self.rnn(self.drop(self.embedding(x)), state)
            return self.head(self.drop(h)), state

    net = Net()
    net.load_state_dict({k: torch.tensor(v) for k, v in init_state.items()})

    def evaluate(ids):
        net.eval()
        B = max(1, min(EVAL_BATCH, (len(ids) - 1) // args.bptt))
        total = count = 0.0
        state = None
        with torch.no_grad():
            for x, y, _ in tg.stream_batches(ids, B, args.bptt):
                logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1), reduction="sum").item()
                count += y.size
        return total / count

    sched = Plateau(args.lr)
    steps = tokens = 0
    seconds = 0.0
    done = False
    while not done:
        net.train()
        state = None
        t0 = time.perf_counter()
        for x, y, _ in tg.stream_batches(train_ids, args.batch, args.bptt):
            if seconds + time.perf_counter() - t0 >= args.budget:
                done = True
                break
            if state is not None:
                state = tuple(s.detach() for s in state)       # truncated BPTT: the state carries over
            logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                     torch.from_numpy(y.astype(np.int64)).reshape(-1))
            net.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
            with torch.no_grad():
                for q in net.parameters():
                    q.add_(q.grad, alpha=-sched.lr)
            steps += 1
            tokens += y.size
        seconds += time.perf_counter() - t0
        val = evaluate(val_ids)
        sched.epoch_end(val, lambda: {k: v.clone() for k, v in net.state_dict().items()})
        print(f"  torch  epoch {sched.epochs}: {steps} steps, {seconds:.0f} s, val ppl {math.exp(val):.2f}, "
              f"lr {sched.lr:g}", flush=True)
    net.load_state_dict(sched.best_state)
    val, test = evaluate(val_ids), evaluate(test_ids)
    return {"steps": steps, "tokens": tokens, "seconds": seconds, "epochs": sched.epochs, "val_nats": val,
            "test_nats": test, "final_lr": sched.lr, "version": torch.__version__}


def make_table(args, results, vocab, n_tokens, loads) -> str:
    cmd = "python3 benchmarks/wordlm_vs_torch.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{cmd.strip()}`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} BLAS/torch threads; Python "
             f"{platform.python_version()}"
             + (f", NumPy {results['rnnkit']['numpy']}" if "rnnkit" in results else "")
             + (f", PyTorch {results['PyTorch']['version']}" if "PyTorch" in results else "") + ".  ",
             f"Data: {data_path(args).name} as words ({n_tokens:,} tokens, vocabulary {len(vocab):,}: training "
             f"words seen >= {args.min_count} times), 90/5/5 split; model: embedding = LSTM {args.size} x "
             f"{args.layers} layers, tied decoder, dropout {args.dropout:g}; SGD lr {args.lr:g} / 4 on plateau, "
             f"clip {args.clip:g}, BPTT {args.bptt}, batch {args.batch}; {args.budget:g} s of training each.",
             "",
             "| framework | steps | epochs | words/s | validation perplexity | test perplexity | load average |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['steps']:,} | {r['epochs']} | {r['tokens'] / max(r['seconds'], 1e-9):,.0f} | "
                     f"{math.exp(r['val_nats']):.2f} | {math.exp(r['test_nats']):.2f} | {loads[name]:.1f} |")
    return "\n".join(lines)


START, END = "<!-- wordlm-bench:start -->", "<!-- wordlm-bench:end -->"


def write_table(table: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _docs import write_block

    write_block(ROOT / "docs" / "readme" / "textgen.md", START, END, table)


def main(argv=None) -> dict:
    args = parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
        os.environ.setdefault(var, str(args.threads))
    sys.path.insert(0, str(ROOT / "src"))
    from rnnkit.models import RNNLanguageModel

    path = data_path(args)
    if not path.is_file():
        sys.exit(f"wordlm_vs_torch: {path} not found (set RNNKIT_SHARED_DATA or pass --data)")
    vocab, train_ids, val_ids, test_ids = load_data(args)
    n = len(train_ids) + len(val_ids) + len(test_ids)
    p = args.dropout
    model = RNNLanguageModel(len(vocab), args.size, args.size, args.layers, "lstm", seed=args.seed,
                             tie_weights=True, dropout_input=p, dropout_hidden=p, dropout_output=p,
                             variational=False)
    init_state = model.state_dict()
    print(f"{path.name}: {n:,} words, vocabulary {len(vocab):,}, train {len(train_ids):,}, val {len(val_ids):,}, "
          f"test {len(test_ids):,}; budget {args.budget:g} s each, {args.threads} threads", flush=True)
    results, loads = {}, {}
    if args.only in (None, "rnnkit"):
        loads["rnnkit"] = os.getloadavg()[0]
        print(f"rnnkit (load average {loads['rnnkit']:.1f})", flush=True)
        results["rnnkit"] = run_rnnkit(args, model, train_ids, val_ids, test_ids)
        print("rnnkit", results["rnnkit"], flush=True)
    if args.only in (None, "torch"):
        loads["PyTorch"] = os.getloadavg()[0]
        print(f"torch (load average {loads['PyTorch']:.1f})", flush=True)
        results["PyTorch"] = run_torch(args, init_state, len(vocab), train_ids, val_ids, test_ids)
        print("torch", results["PyTorch"], flush=True)
    table = make_table(args, results, vocab, n, loads)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "load_average": loads, "results": results},
                                              indent=1), encoding="utf-8")
    if not args.no_write:
        write_table(table)
    return results


if __name__ == "__main__":
    main()
