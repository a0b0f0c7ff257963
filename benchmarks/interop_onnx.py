"""rnnkit's forward and ONNX Runtime running rnnkit's exported graph, side by side in one process:
agreement (max abs difference, float32) and inference time of the same weights on the same input.

Models: the text generator's LM (LSTM, V=65, E=64, H=256, 2 layers) on ids (T=100, B=32), and a
classifier's network (bidirectional GRU, H=128, 2 layers, max pooling) on features (T=100, B=32, D=16)
with sequence_lens. The two runners alternate, each timed as the median of --repeats calls per
round; ONNX Runtime uses its default CPU threads, rnnkit its default BLAS threads.

Usage: PYTHONPATH=src python3 benchmarks/interop_onnx.py [--repeats 10] [--rounds 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))    # bench_vs_torch.median_time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    from bench_vs_torch import median_time
    from rnnkit.interop import export_onnx
    from rnnkit.models.language_model import RNNLanguageModel
    from rnnkit.tasks.seqnet import SequenceNet

    rng = np.random.default_rng(0)
    T, B = 100, 32
    lm = RNNLanguageModel(65, 64, 256, num_layers=2, cell="lstm", seed=0).eval()
    net = SequenceNet(16, 5, cell="gru", hidden_size=128, num_layers=2, bidirectional=True, pooling="max",
                      seed=0).eval()
    ids = rng.integers(0, 65, (T, B))
    zeros = np.zeros((2, B, 256), np.float32)
    x = rng.standard_normal((T, B, 16)).astype(np.float32)
    lens = rng.integers(T // 2, T + 1, B).astype(np.int32)
    cases = {
        "lm_lstm_T100_B32_H256_L2": (lm, {"ids": ids, "h0": zeros, "c0": zeros},
                                     lambda: lm.forward(ids, (zeros, zeros))[0]),
        "classifier_bigru_T100_B32_H128_L2_max": (net, {"x": x, "sequence_lens": lens},
                                                  lambda: net.forward(x, lens)),
    }
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for name, (model, feeds, ours) in cases.items():
            path = export_onnx(model, Path(d) / f"{name}.onnx")
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            theirs = lambda: sess.run(None, feeds)[0]                      # noqa: E731
            diff = float(np.abs(ours() - theirs()).max())
            t_ours, t_ort = [], []
            for _ in range(args.rounds):
                t_ours.append(median_time(ours, args.repeats) * 1e3)
                t_ort.append(median_time(theirs, args.repeats) * 1e3)
            results[name] = {"max_abs_diff": diff, "rnnkit_ms": statistics.median(t_ours),
                             "onnxruntime_ms": statistics.median(t_ort)}
            r = results[name]
            print(f"{name}: max |rnnkit - ORT| {diff:.2e}; rnnkit {r['rnnkit_ms']:.1f} ms, "
                  f"ONNX Runtime {r['onnxruntime_ms']:.1f} ms (median of {args.rounds} x {args.repeats})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
