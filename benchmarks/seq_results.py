"""Different-length and one-to-many mappings on real data, each with a bounded training budget.

    python3 benchmarks/seq_results.py [--data ../shared/data] [--budget 300] [--small-budget 60] [--out DIR]

Rows: CTC speech recognition on joined FSDD digits (CER and sequence accuracy on held-out recordings and
on a held-out speaker), English->French translation (BLEU as sacreBLEU's default, exact match; greedy and
beam 5), digit image -> spelled name, language -> surname. Prints a Markdown table and writes
DIR/seq_results.json. Every number comes from the run itself.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.tasks import one_to_many, speech, translate  # noqa: E402
from rnnkit.train import TrainConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RNNKIT_SHARED_DATA",
                                                     str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")))
    ap.add_argument("--budget", type=float, default=300, help="training seconds for speech and translation")
    ap.add_argument("--small-budget", type=float, default=60, help="training seconds for the one-to-many tasks")
    ap.add_argument("--out", default="bench_seq")
    ap.add_argument("--only", nargs="*", default=["speech", "translate", "digits", "names"])
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, results = [], {}

    def cfg(budget, lr=2e-3):
        return TrainConfig(time_budget=budget, lr=lr, seed=0, progress=False, eval_every=0)

    if "speech" in args.only:
        man = speech.build_fsdd_utterances(data / "fsdd" / "recordings", out / "fsdd", n_train=2000, n_test=300,
                                           n_speaker=300, min_digits=1, max_digits=4, holdout_speaker="theo")
        m = speech.train_speech(man["train"], out / "speech", cfg(args.budget),
                                speech.SpeechConfig(hidden=64), {"test": man["test"], "speaker": man["speaker"]})
        model, scfg = speech.load_speech_model(out / "speech")
        m["eval_beam8"] = {}
        for name in ("test", "speaker"):
            f, y = speech.load_dataset(speech.read_manifest(man[name]), scfg)
            m["eval_beam8"][name] = speech.evaluate(model, f, y, scfg.alphabet, beam=8)
        results["speech"] = m
        for name, label in (("test", "held-out recordings"), ("speaker", "held-out speaker (theo)")):
            for dec, e in (("greedy", m["eval"][name]), ("prefix beam 8", m["eval_beam8"][name])):
                rows.append(("CTC speech, FSDD 1-4 joined digits", f"biLSTM 64, {label}, {dec}",
                             f"CER {e['cer']:.3f}, seq. acc. {e['seq_acc']:.3f} (n={e['n']})",
                             m["train_seconds"], m["steps"]))
    if "translate" in args.only:
        m = translate.train_translate(data / "translation" / "fra-eng.txt", out / "translate", cfg(args.budget),
                                      translate.TranslateConfig(hidden=96, min_freq=2), batch_size=64)
        model, sv, tv, tcfg = translate.load_translator(out / "translate")
        pairs = translate.read_pairs(data / "translation" / "fra-eng.txt")
        _, test = translate.split_by_source(pairs, 0.05, 0)
        t0 = time.perf_counter()
        beam = translate.evaluate(model, sv, tv, test, beam=5, max_len=tcfg.max_len)
        m["test_beam5"] = beam | {"seconds": round(time.perf_counter() - t0, 1)}
        results["translate"] = m
        for label, e in (("greedy", m["test"]), ("beam 5", beam)):
            rows.append(("Translation en->fr (fra-eng.txt)", f"biLSTM 96 + Luong attention, {label}",
                         f"BLEU {e['bleu']:.2f}, exact {e['exact_match']:.3f} (n={e['n']})",
                         m["train_seconds"], m["steps"]))
    if "digits" in args.only:
        m = one_to_many.spell_digits(cfg(args.small_budget, 1e-2), one_to_many.OneToManyConfig(hidden=64),
                                     out_dir=out / "digits")
        results["digits"] = m
        rows.append(("8x8 digit image -> spelled name", "LSTM 64, state from image",
                     f"exact {m['exact_match']:.3f}, CER {m['cer']:.3f} (n={m['test']})", m["train_seconds"],
                     m["steps"]))
    if "names" in args.only:
        m = one_to_many.train_names(data / "names", out / "names", cfg(args.small_budget, 5e-3),
                                    one_to_many.OneToManyConfig(hidden=128))
        results["names"] = m
        rows.append(("language -> surname (names/)", "LSTM 128, state from one-hot language",
                     f"held-out {m['test_bits_per_char']:.3f} bits/char (n={m['test']})", m["train_seconds"],
                     m["steps"]))

    lines = ["| task | model / split | metrics | train s | steps |", "|---|---|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d:.0f} | {e} |" for a, b, c, d, e in rows]
    table = "\n".join(lines)
    print(table)
    results["machine"] = {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
    (out / "seq_results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    (out / "seq_results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
