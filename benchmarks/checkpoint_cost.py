"""The cost of crash safety: time to save and to load (verified) one checkpoint of a textgen model.

    python3 benchmarks/checkpoint_cost.py [--hidden 256] [--repeats 5]

Builds the default `rnnkit textgen` model (embed 64, LSTM 256, a 100-symbol vocabulary), takes one real
Adam step so the optimiser moments are saved too, then times `Trainer.save` (fsync included) and
`load_checkpoint` (SHA-256 and header checks included). Prints the medians and the load average: on a
shared machine the figures are indicative only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def main() -> None:
    from rnnkit.losses import softmax_cross_entropy
    from rnnkit.tasks import textgen as tg
    from rnnkit.train import Trainer, TrainConfig, load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    cfg = tg.TextGenConfig(hidden_size=a.hidden)
    model = tg.build_model(cfg, 100)
    trainer = Trainer(model, TrainConfig(steps=1, progress=False, checkpoint_seconds=0), out_dir=tempfile.mkdtemp())
    ids = np.random.default_rng(0).integers(0, 100, size=(cfg.seq_len + 1, cfg.batch))

    def step(_):
        logits, _ = model.forward(ids[:-1])
        loss, dlogits = softmax_cross_entropy(logits, ids[1:])
        model.backward(dlogits)
        return loss, ids[1:].size

    trainer.fit(lambda epoch, rng: [None], step)
    saves, loads = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        trainer.save()
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        load_checkpoint(trainer.out_dir / "checkpoint")
        loads.append(time.perf_counter() - t0)
    size = sum(f.stat().st_size for f in (trainer.out_dir / "checkpoint").iterdir())
    print(f"textgen LSTM {a.hidden}: {model.num_parameters():,} parameters, checkpoint {size / 1e6:.2f} MB; "
          f"save {1000 * statistics.median(saves):.1f} ms, load {1000 * statistics.median(loads):.1f} ms "
          f"(medians of {a.repeats}); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
