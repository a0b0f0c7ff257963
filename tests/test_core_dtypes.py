"""Parameter dtypes: float32 and float64 run; every other dtype is refused at construction (and by
`astype`) with one TypeError that names it, not deep inside a compiled kernel (issue 16)."""
import numpy as np
import pytest

import rnnkit
from rnnkit.layers.attention import Attention

BUILDERS = {
    "RNN": lambda dtype: rnnkit.RNN(3, 4, dtype=dtype),
    "LSTM": lambda dtype: rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=dtype),
    "GRU": lambda dtype: rnnkit.GRU(3, 4, dtype=dtype),
    "Linear": lambda dtype: rnnkit.Linear(3, 4, dtype=dtype),
    "Embedding": lambda dtype: rnnkit.Embedding(5, 4, dtype=dtype),
    "Attention": lambda dtype: Attention(4, 4, dtype=dtype),
}
BAD = {"float16": np.float16, "longdouble": np.longdouble, "int32": np.int32, "int64": "int64",
       "uint8": np.uint8, "complex128": np.complex128, "bool": bool, "object": object, "str": "U3",
       "big-endian float64": ">f8", "not a dtype": "floaty"}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("layer", sorted(BUILDERS))
def test_unsupported_dtypes_are_refused_at_construction(layer, bad):
    with pytest.raises(TypeError) as info:
        BUILDERS[layer](BAD[bad])
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{layer}: dtype must be")
    assert "np.float32 or np.float64" in msg
    shown = "floaty" if bad == "not a dtype" else str(np.dtype(BAD[bad]))
    assert msg.endswith(f"got {shown}"), msg


@pytest.mark.parametrize("layer", sorted(BUILDERS))
def test_astype_refuses_them_too_and_changes_nothing(layer):
    module = BUILDERS[layer](np.float32)
    before = {k: v.copy() for k, v in module.params.items()}
    with pytest.raises(TypeError, match=r"dtype must be .*got float16"):
        module.astype(np.float16)
    assert all(v.dtype == np.float32 and np.array_equal(v, before[k]) for k, v in module.params.items())
    module.astype(np.float64)
    assert all(v.dtype == np.float64 for v in module.params.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", np.dtype("<f8")])
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_supported_dtypes_run_forward_and_backward(cell, dtype):
    layer = BUILDERS[cell](dtype)
    out, _ = layer.forward(np.ones((4, 2, 3)))
    dx, _ = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.dtype(dtype) and np.isfinite(dx).all()
