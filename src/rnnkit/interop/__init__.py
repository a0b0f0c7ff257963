"""Interchange: rnnkit models in and out of PyTorch, ONNX (run by ONNX Runtime) and Keras 3.

One module per format (`pytorch`, `onnx_export`, `onnx_import`, `keras_io`); each imports its library
(torch, onnx, onnxruntime, keras) inside the functions that need it, so `import rnnkit.interop` costs
nothing and a missing extra fails only where it is used, with the pip command to fix it.
The shared pieces (gate orders, layer configs, atomic file writes, model structures) are in `_common`;
`checkpoint` saves an imported model as an rnnkit checkpoint folder.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it (PEP 562 lazy attributes: nothing heavy at import)
_API = {"from_torch": "pytorch", "to_torch": "pytorch", "load_torch_checkpoint": "pytorch",
        "export_onnx": "onnx_export", "import_onnx": "onnx_import",
        "from_keras": "keras_io", "to_keras": "keras_io",
        "save_imported": "checkpoint", "load_imported": "checkpoint"}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'rnnkit.interop' has no attribute {name!r}")
