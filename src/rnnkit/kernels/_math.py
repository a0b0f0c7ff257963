"""Scalar activations for the Numba kernels, vectorisable in float32 and exact in float64.

Numba calls libm for `math.tanh`/`math.exp`, one element at a time (about 17 ns per tanh here), which
would dominate a fused LSTM step. For float32 we evaluate e^x ourselves with only multiply/add/select,
so LLVM vectorises the gate loop (about 1.3 ns per tanh with AVX-512):
    e^x = 2^n * e^f,   n = round(x log2 e),  f = x - n ln 2 in [-ln2/2, ln2/2],
    e^f by its degree-7 Taylor polynomial (remainder < 1e-8 relative),
    2^n built from its bits: the int32 (n + 127) << 23 reinterpreted as float32 (an LLVM bitcast,
    free and vectorisable; |n| <= 31: the callers clamp x). The earlier branch-free product over
    the bits of n cost 6 multiplies and floors per call and made the activations 2x slower.
    tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)) for |x| <= 9 (tanh(9) rounds to 1 in float32),
    sigmoid(x) = 1 / (1 + e^{-x})     for |x| <= 20.
Absolute error against float64 tanh: below 2e-7 over the whole line (float32 eps is 1.2e-7).
float64 arguments (the finite-difference tests) use libm's exact functions.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from llvmlite import ir
from numba.extending import intrinsic, overload

JIT = dict(cache=True, fastmath=True, error_model="numpy", nogil=True)


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer `bits` (an LLVM truncate and
    bitcast: free, and vectorisable)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if bits.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(bits), codegen


@njit(fastmath=True, error_model="numpy")
def _exp32(x):
    y = x * np.float32(1.4426950408889634)                          # x log2(e)
    n = np.floor(y + np.float32(0.5))
    f = (y - n) * np.float32(0.6931471805599453)
    p = np.float32(1.0 / 5040.0)
    p = p * f + np.float32(1.0 / 720.0)
    p = p * f + np.float32(1.0 / 120.0)
    p = p * f + np.float32(1.0 / 24.0)
    p = p * f + np.float32(1.0 / 6.0)
    p = p * f + np.float32(0.5)
    p = p * f + np.float32(1.0)
    p = p * f + np.float32(1.0)                                     # e^f
    # 2^n from its bits: exponent field n + 127 (|n| <= 31, the callers clamp x), mantissa 0
    return p * _f32_from_bits((np.int32(n) + 127) << 23)


def tanh(x):
    """tanh for Numba kernels (see the module docstring); plain Python falls back to math.tanh."""
    return math.tanh(x)


def sigmoid(x):
    """1 / (1 + e^-x) for Numba kernels."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(tanh, jit_options={"fastmath": True, "error_model": "numpy"})
def _tanh_impl(x):
    if x == types.float32:
        def tanh32(x):
            # on |x|, sign restored: for x < 0, 1 - 2 / (e^{2x} + 1) is a difference of numbers near
            # 2 and 1 (3.2e-7 off at x = -1.94, against 1.4e-7 at worst this way)
            a = min(abs(x), np.float32(9.0))
            t = np.float32(1.0) - np.float32(2.0) / (_exp32(np.float32(2.0) * a) + np.float32(1.0))
            return -t if x < 0 else t
        return tanh32
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options={"fastmath": True, "error_model": "numpy"})
def _sigmoid_impl(x):
    if x == types.float32:
        def sigmoid32(x):
            x = min(max(x, np.float32(-20.0)), np.float32(20.0))
            return np.float32(1.0) / (np.float32(1.0) + _exp32(-x))
        return sigmoid32
    return lambda x: 1.0 / (1.0 + math.exp(-x))
