"""`rnnkit import FILE --out DIR`: a PyTorch, ONNX or Keras model file as an rnnkit checkpoint folder.

The file's type (its suffix, `READERS`) picks the reader in `rnnkit.interop`; none of them runs code
from the file (safetensors, `torch.load(weights_only=True)`, ONNX protobuf, Keras with safe_mode on).
DIR is checked and locked by the shared `prepare_out_dir` (a file in the way, no write permission, a
full disk, a second run); the model goes into DIR/model (weights in safetensors, the structure as
JSON), written whole or not at all, and loads with `rnnkit.interop.load_imported(DIR)`;
`rnnkit export DIR --onnx FILE` exports it.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def _torch(path: Path):
    from ..interop import from_torch, load_torch_checkpoint

    return from_torch(load_torch_checkpoint(path))


def _onnx(path: Path):
    from ..interop import import_onnx

    return import_onnx(path)


def _keras(path: Path):
    from ..interop import from_keras

    return from_keras(path)


def _weights_only(path: Path):
    raise UserError(f"{path}: a .weights.h5 file holds no architecture; save the whole Keras model "
                    "(model.save('model.keras')) and import that")


# file suffix -> reader
READERS = {".onnx": _onnx, ".safetensors": _torch, ".pt": _torch, ".pth": _torch, ".bin": _torch,
           ".keras": _keras, ".weights.h5": _weights_only}


def _suffix(path: Path) -> str:
    return ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix


def _import(args) -> int:
    from ..interop._common import summary
    from ..interop.checkpoint import save_imported
    from .common import prepare_out_dir

    path, out = Path(args.file), Path(args.out)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist or is not a file")
    reader = READERS.get(_suffix(path))
    if reader is None:
        raise UserError(f"{path}: unknown model file type {_suffix(path)!r}; rnnkit imports "
                        f"{', '.join(READERS)}")
    if out.is_dir() and any(p.name != ".rnnkit.lock" for p in out.iterdir()):
        raise UserError(f"--out {str(out)!r} already exists and is not an empty folder; choose a new one")
    model = reader(path)                            # read before the folder is made: a refused file leaves none
    out = prepare_out_dir(out)
    save_imported(model, out / "model", source=path.name)
    print(f"{out}: {summary(model)}; {model.num_parameters():,} parameters from {path.name}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="read a PyTorch, ONNX or Keras model file into an rnnkit folder",
                       description="Convert a model file (.onnx, .safetensors, .pt, .keras) to an rnnkit "
                                   "checkpoint folder.")
    p.add_argument("file", metavar="FILE", help="the model file")
    p.add_argument("--out", metavar="DIR", required=True, help="the new folder to write")
    p.set_defaults(func=_import)
