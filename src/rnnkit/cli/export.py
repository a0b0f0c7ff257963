"""`rnnkit export DIR --onnx FILE`: a trained task model (or a folder from `rnnkit import`) as ONNX.

The folder's kind is recognised by the files its task writes (`KINDS`, tried in order); each kind is
read through its task's own loader and exported with `rnnkit.interop.export_onnx`; what the task keeps
beside the network (vocabulary, classes, scaling, alphabet) goes into the ONNX metadata as JSON.
A seq2seq model is two graphs: FILE with `-encoder` and `-decoder_step` before `.onnx`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..tasks.persist import _jsonable


def _estimator_class(d: Path):
    f = d / "model" / "estimator.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("class")
    except (ValueError, AttributeError):
        raise UserError(f"{f} is damaged: not valid JSON") from None


def _textgen(d: Path):
    from ..tasks import textgen as tg

    model, vocab, _ = tg.load(d)
    return [(model, {}, "")], {"rnnkit.task": "textgen", "rnnkit.vocab": vocab.to_json()}


def _classifier(d: Path):
    from ..tasks.classify import SequenceClassifier

    est = SequenceClassifier.load(d / "model")
    meta = {k: _jsonable(getattr(est, k, None)) for k in ("classes_", "input_kind_", "vocab_", "mean_", "std_")}
    meta.update(tokenizer=est.tokenizer, lowercase=est.lowercase)
    members = getattr(est.model_, "members", None)
    if members is None:
        return [(est.model_, {}, "")], {"rnnkit.task": "classify", "rnnkit.estimator": meta}
    # an ensemble: one graph per member (FILE_m0.onnx, ...); its probabilities are the mean of their softmaxes
    meta.update(ensemble=len(members), combine="mean of the members' softmax probabilities")
    return [(m, {}, f"_m{k}") for k, m in enumerate(members)], {"rnnkit.task": "classify", "rnnkit.estimator": meta}


def _forecaster(d: Path):
    from ..tasks.forecast import Forecaster

    est = Forecaster.load(d / "model")
    # the statistical steps around the network (rnnkit.tasks.forecast) travel as metadata; an ensemble's
    # other networks are graphs of their own, FILE-member1.onnx ..., whose outputs are averaged
    meta = {k: _jsonable(getattr(est, k, None)) for k in ("mean_", "std_", "n_features_in_", "lookback_",
                                                          "transform_", "deseasonalized_", "seasonal_",
                                                          "difference_", "level_", "n_members_")}
    meta.update({k: _jsonable(v) for k, v in est.get_params().items() if k != "train_config"})
    graphs = [(est.model_, {"sequence_lens": False}, "")]
    graphs += [(net, {"sequence_lens": False}, f"-member{i}") for i, net in enumerate(est.members_, 1)]
    return graphs, {"rnnkit.task": "forecast", "rnnkit.estimator": meta}


def _speech(d: Path):
    from ..tasks.speech import config_dict, load_speech_model

    model, cfg = load_speech_model(d)
    return [(model, {}, "")], {"rnnkit.task": "transcribe", "rnnkit.speech_config": config_dict(cfg)}


def _translate(d: Path):
    from dataclasses import asdict

    from ..tasks.translate import load_translator

    model, src, tgt, cfg = load_translator(d)
    meta = {"rnnkit.task": "translate", "rnnkit.src_vocab": src.itos, "rnnkit.tgt_vocab": tgt.itos,
            "rnnkit.translate_config": asdict(cfg)}
    return [(model, {"part": "encoder"}, "-encoder"), (model, {"part": "decoder_step"}, "-decoder_step")], meta


def _imported(d: Path):
    from ..interop.checkpoint import load_imported

    return [(load_imported(d), {}, "")], {"rnnkit.task": "imported"}


def _imported_folder(d: Path):
    from ..interop.checkpoint import imported_folder

    return imported_folder(d)


def _checkpoint_has(d: Path, stem: str) -> bool:
    return (d / f"{stem}.json").is_file() or (d / "checkpoint" / f"{stem}.json").is_file()


# kind -> (does folder d hold it?, its loader); the first match wins
KINDS = {
    "classify": (lambda d: _estimator_class(d) == "SequenceClassifier", _classifier),
    "forecast": (lambda d: _estimator_class(d) == "Forecaster", _forecaster),
    "transcribe": (lambda d: _checkpoint_has(d, "speech_config"), _speech),
    "translate": (lambda d: _checkpoint_has(d, "translate_config"), _translate),
    "textgen": (lambda d: _checkpoint_has(d, "vocab") and _checkpoint_has(d, "config"), _textgen),
    "imported": (lambda d: _imported_folder(d) is not None, _imported),
}


def _signature(path: Path) -> str:
    import onnx

    g = onnx.load(str(path)).graph

    def dims(v):
        return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim) + ")"

    ins = ", ".join(f"{v.name} {dims(v)}" for v in g.input)
    outs = ", ".join(f"{v.name} {dims(v)}" for v in g.output)
    return f"inputs {ins}; outputs {outs}"


def _export(args) -> int:
    from ..interop import export_onnx

    d = Path(args.dir)
    if not d.is_dir():
        raise UserError(f"model folder {str(d)!r} does not exist")
    out = Path(args.onnx)
    if out.suffix != ".onnx":
        raise UserError(f"--onnx {args.onnx!r}: the output file name must end in .onnx")
    kind = next((k for k, (holds, _) in KINDS.items() if holds(d)), None)
    if kind is None:
        raise UserError(f"{str(d)!r} holds no model rnnkit can export (expected a folder written by rnnkit "
                        f"{', '.join(k for k in KINDS if k != 'imported')} train, or by rnnkit import)")
    parts, meta = KINDS[kind][1](d)
    for model, options, suffix in parts:
        path = out.with_name(out.stem + suffix + out.suffix)
        export_onnx(model, path, metadata=meta, **options)
        print(f"{path}: {kind} model ({_signature(path)})")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a trained model as ONNX (for ONNX Runtime)",
                       description="Export a trained rnnkit model folder as an ONNX graph.")
    p.add_argument("dir", metavar="DIR", help="a model folder written by 'rnnkit <task> train' or 'rnnkit import'")
    p.add_argument("--onnx", metavar="FILE", required=True, help="the ONNX file to write (FILE.onnx)")
    p.set_defaults(func=_export)
