"""Helpers the fused sequence loops and step kernels share: the padding mask as rows, the input
projection into a preallocated time-major buffer (no bias: the step kernels add the biases, which
saves two passes over the (T, B, G*H) buffer), the bias vectors, the small matrix-vector products
of single-step generation, and the chunked weight gradients of the backward.

Chunked weight gradients (`backward_in_chunks`). The NumPy cells keep the pre-activation gradient dz
of every step, (T, B, G*H), and then form dW_ih = dZ^T X, dW_hh = dZ^T H_prev, db and dX = dZ W_ih as
one product each over all T*B rows (`cells._common.weight_grads`). That dz is as large as the gate
cache. Here BPTT walks back through time K steps at a time into a (K, B, G*H) buffer, and after each
chunk the products over its K*B rows are added to the gradients (dX of the chunk is written straight
into its rows of dx). Only the buffer, dx and the parameter-sized gradients exist besides the cache.
The cache is never written (a second backward of the same forward must give the same result).

K = ceil(CHUNK_ROWS / B) steps (at most T): 512 rows per product. Measured with one BLAS thread on the
benchmark sizes, 512-row chunks keep the products within 0-7% of one product over all rows (smaller
chunks pay per-call overhead: 128 rows cost up to 19%, 1024 rows 2-6%), and the buffer stays at a
sixth of the full dz or less for the sizes with T*B >= 3200. `CHUNK_STEPS` forces K (tests).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _blas, _parallel
from ._math import JIT
from ._parallel import ADD_LOCK

_SHARED: dict = {}  # zero biases and all-ones mask rows, by shape and dtype (never written)

CHUNK_ROWS = 512           # rows (steps x batch) per weight-gradient product
CHUNK_STEPS: int | None = None  # force K (steps per chunk), e.g. in tests; None: from CHUNK_ROWS
SCRATCH_PARTS = 4          # a chunk's weight-gradient product is added in this many row blocks


def buffer(workspace, name: str, shape: tuple, dtype) -> np.ndarray:
    """`workspace.buffer(name, shape, dtype)` (a layer's `rnnkit.backends.Workspace`, whose stated
    ownership says when its buffers are written over), or a new array when there is no workspace."""
    return np.empty(shape, dtype) if workspace is None else workspace.buffer(name, shape, dtype)


def mask_rows(mask, T: int, B: int, dtype) -> np.ndarray:
    """(T, B) 0/1 rows from the cells' (T, B, 1) mask; all ones when there is no padding."""
    return np.ones((T, B), dtype) if mask is None else np.ascontiguousarray(mask[:, :, 0], dtype=dtype)


def zeros_cached(n: int, dtype) -> np.ndarray:
    """A shared zero vector (the bias of a layer built with bias=False); never written. Not flagged
    read-only: Numba would compile every kernel a second time for read-only arrays."""
    key = (n, np.dtype(dtype))
    z = _SHARED.get(key)
    if z is None:
        z = _SHARED[key] = np.zeros(n, dtype)
    return z


def ones_row(B: int, dtype) -> np.ndarray:
    """A shared all-ones mask row (step() without padding; no allocation per token)."""
    key = ("ones", B, np.dtype(dtype))
    o = _SHARED.get(key)
    if o is None:
        o = _SHARED[key] = np.ones(B, dtype)
    return o


def project(params: dict, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out (T, B, G*H) = x W_ih^T: one BLAS product for all steps, written in place, no bias.

    out may be a strided view: the RNN projects into its states, which in a bidirectional layer are
    half of a shared buffer, and for the reverse direction run backwards in time. The rows are
    independent, so a time-reversed out is filled in forward order (x[::-1] is then the caller's
    array, not a copy), which makes out one (T*B, G*H) matrix with a row stride.
    """
    T, B, D = x.shape
    xs, dest = (x[::-1], out[::-1]) if out.strides[0] < 0 else (x, out)
    rows = dest.reshape(T * B, out.shape[2])                         # (T*B, G*H)
    if not np.may_share_memory(rows, out):                           # a copy would lose the product
        raise ValueError(f"project: out with strides {out.strides} is not one matrix of rows")
    np.matmul(xs.reshape(T * B, D), params["weight_ih"].T, out=rows)
    return out


def state_rows(hs: np.ndarray) -> tuple:
    """rows = (hb, r0, dr, k): hs[s, b] == hb[r0 + dr*s, b, k] (H,) with hb a C-contiguous 4-D array;
    how the compiled loops address a states array hs (T+1, B, H) (`state_row`, `state_block`).

    hs is either its own contiguous array (hb = hs as (T+1, B, 1, H)) or a view of a bidirectional
    layer's (T+2, B, 2H) buffer: one half of its columns, forward or backward in time
    (`layers.recurrent._direction_states`; hb = the buffer as (T+2, B, 2, H)). Why not the strided
    (B, H) views: the gate kernels compiled for unknown strides are not vectorised (copying through
    contiguous temporaries instead cost the RNN 11% even unidirectional), and a row taken by
    integer indices is a contiguous vector to Numba (a slice hb[r, b, c0:c0+H] is too, but its
    bounds handling cost the RNN forward 2% at B16 H64).
    """
    T1, B, H = hs.shape
    if hs.flags.c_contiguous:
        return hs.reshape(T1, B, 1, H), 0, 1, 0
    owner, item = hs.base, hs.itemsize
    W = hs.strides[1] // item                                        # the buffer's row width (2H)
    ok = (isinstance(owner, np.ndarray) and owner.flags.c_contiguous and owner.dtype == hs.dtype
          and hs.strides[2] == item and hs.strides[1] % item == 0 and W % H == 0
          and hs.strides[0] % (B * W * item) == 0)
    if ok:
        flat = owner.reshape(-1)
        first = (hs.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) // item
        r0, c0 = divmod(first, B * W)                                # hs[0, 0, 0] = hb[r0, 0, c0]
        R, dr = flat.size // (B * W), hs.strides[0] // (B * W * item)
        ok = (c0 % H == 0 and c0 + H <= W and 0 <= min(r0, r0 + dr * (T1 - 1))
              and max(r0, r0 + dr * (T1 - 1)) < R)
    if not ok:
        raise ValueError("hs must be C-contiguous or whole rows of a C-contiguous (R, B, W) buffer, got "
                         f"shape {hs.shape}, strides {hs.strides}")
    return flat[:R * B * W].reshape(R, B, W // H, H), r0, dr, c0 // H


@njit(**JIT)
def state_row(rows, s, b):
    """hs[s, b] (H,), contiguous (see `state_rows`)."""
    hb, r0, dr, k = rows
    return hb[r0 + dr * s, b, k]


@njit(**JIT)
def state_block(rows, s):
    """hs[s] (B, H), a view with a row stride (for BLAS, which takes any leading dimension)."""
    hb, r0, dr, k = rows
    return hb[r0 + dr * s, :, k]


def biases(params: dict, GH: int, dtype):
    """(b_ih, b_hh), which the step kernels add; shared zeros for a layer built with bias=False."""
    if "bias_ih" not in params:
        z = zeros_cached(GH, dtype)
        return z, z
    return params["bias_ih"], params["bias_hh"]


# Single-step generation (batch 1, small layers): the two products inside one compiled call beat two
# BLAS calls plus the gate kernel, whose call overheads dominate there. Above SMALL_STEP_MACS
# multiply-adds the weights no longer sit in one core's cache and two-thread BLAS is faster.
SMALL_STEP_MACS = 400_000


def small_step(B: int, W_ih: np.ndarray, W_hh: np.ndarray) -> bool:
    return B * (W_ih.size + W_hh.size) <= SMALL_STEP_MACS


def bind_step(params: dict, B: int, small, large):
    """run(x_t, state, out) -> bool: one generation step for batch B with the weights bound (the
    backends' `stepper`); False, computing nothing, when x_t holds NaN/Inf. Small layers:
    `small(x_t, W_ih, W_hh, b_ih, b_hh, state, out)`, one compiled call that returns False for NaN/Inf
    in x_t. Others: the products z = x_t W_ih^T and r = h W_hh^T by BLAS, then
    `large(z, r, b_ih, b_hh, state, out, ones)` (the gate kernel with an all-ones mask).
    x_t may have any strides (a layer's next input is a view of its state, e.g. of a Fortran-ordered
    one): the kernels read it as a C-contiguous array (`all_finite`), so any other is copied first."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = biases(params, W_hh.shape[0], W_hh.dtype)
    if small_step(B, W_ih, W_hh):
        def run(x_t, state, out):
            if not x_t.flags.c_contiguous:
                x_t = np.ascontiguousarray(x_t)
            return small(x_t, W_ih, W_hh, b_ih, b_hh, state, out)
        return run
    ones, W_ihT, W_hhT = ones_row(B, W_hh.dtype), W_ih.T, W_hh.T

    def run(x_t, state, out):
        if not x_t.flags.c_contiguous:
            x_t = np.ascontiguousarray(x_t)
        if not all_finite(x_t):
            return False
        large(np.dot(x_t, W_ihT), np.dot(state[0], W_hhT), b_ih, b_hh, state, out, ones)  # np.dot:
        return True                                                  # less overhead than matmul
    return run


@njit(**JIT)
def matvec_rows(W, v, out):
    """out[g] = W[g] . v for a row-major W (G, K): dot products, four rows at a time (each v[k] loaded
    once for four rows; 14-16% faster than one row at a time for G <= 512, equal when W leaves L1)."""
    G, K = W.shape
    zero = np.zeros(1, W.dtype)[0]                                   # in W's dtype (a loop from 1 with
    g = 0                                                            # acc = w[0] v[0] was 2x slower)
    while g + 4 <= G:
        w0, w1, w2, w3 = W[g], W[g + 1], W[g + 2], W[g + 3]
        a0, a1, a2, a3 = zero, zero, zero, zero
        for k in range(K):
            vk = v[k]
            a0 += w0[k] * vk
            a1 += w1[k] * vk
            a2 += w2[k] * vk
            a3 += w3[k] * vk
        out[g], out[g + 1], out[g + 2], out[g + 3] = a0, a1, a2, a3
        g += 4
    while g < G:
        wr = W[g]
        acc = zero
        for k in range(K):
            acc += wr[k] * v[k]
        out[g] = acc
        g += 1


@njit(**JIT)
def copy_rows(src, dst):
    """dst[:, :] = src for (B, H) arrays, src with any strides (a loop: Numba's slice assignment
    made each calling kernel take seconds longer to compile)."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = src[b, j]


def dout_rows(dout: np.ndarray, B: int, H: int, dtype) -> tuple:
    """(whole, d) for reading dout_t in the backward loops (`dout_step`): a C-contiguous dout in the
    layer's dtype is read in place (whole = dout, d has no rows); any other (a bidirectional layer's
    half of its (T, B, 2H) gradient) is copied a step at a time into d (B, H), contiguous for the
    vectorised gate kernels (whole is then d[None], never read). In place saves the (B, H) copy: 2% of
    the states the RNN keeps at B128 T50 H512."""
    if dout.flags.c_contiguous and dout.dtype == dtype:
        return dout, np.empty((0, H), dtype)
    d = np.empty((B, H), dtype)
    return d[None], d


@njit(**JIT)
def dout_step(dout, whole, d, t):
    """dout[t] as a C-contiguous (B, H) array (`dout_rows`); the Python time loops call it too."""
    if d.shape[0] == 0:
        return whole[t]
    copy_rows(dout[t], d)
    return d


@njit(**JIT)
def all_finite(a):
    """True when no element of `a` is NaN or +-Inf, read from the exponent bits (fastmath may assume
    finite floats and fold a float comparison away)."""
    flat = a.reshape(-1)
    if flat.itemsize == 4:
        v = flat.view(np.uint32)
        e32 = np.uint32(0x7F800000)
        for k in range(v.size):
            if (v[k] & e32) == e32:
                return False
    else:
        v = flat.view(np.uint64)
        e64 = np.uint64(0x7FF0000000000000)
        for k in range(v.size):
            if (v[k] & e64) == e64:
                return False
    return True


def chunk_steps(T: int, B: int) -> int:
    """K, the steps per weight-gradient chunk (see the module docstring)."""
    rows = CHUNK_ROWS // 2 if _parallel.running() else CHUNK_ROWS  # two directions side by side
    k = CHUNK_STEPS if CHUNK_STEPS is not None else -(-rows // B)
    return max(1, min(T, int(k)))


def backward_in_chunks(params: dict, x: np.ndarray, h_prev: np.ndarray, width: int, steps,
                       tail: int = 0, dx_add: np.ndarray | None = None, need_dx: bool = True,
                       workspace=None):
    """Run `steps(t0, t1, dz, dtail)` for chunks [t0, t1) from the end back to t = 0 and return dx
    (T, B, D) and the gradients dict.

    `steps` walks t = t1-1 .. t0 and writes dz[t - t0] (B, width), the gradient of the input
    pre-activations x_t W_ih^T + b_ih, and for tail > 0 dtail[t - t0] (B, tail) (else None): the
    recurrent pre-activation gradient is dz_t with its last `tail` columns replaced by dtail_t (GRU:
    dan * r for the candidate's h_{t-1} W_hn^T + b_hn); with tail = 0 it equals dz_t. dz and dtail are
    the (K, B, .) buffers. x: (T, B, D); h_prev: (T, B, H), the state entering each step.
    dx_add: a (T, B, D) array (any strides, e.g. a time-reversed view) to add dx into instead of
    returning a new array (a bidirectional layer sums both directions' dx; see `cells.lstm.backward`),
    each chunk under `_parallel.ADD_LOCK` (the two directions may run side by side).
    need_dx=False: no dx product and no dx array; dx is returned as None (the input is data).
    workspace: the layer's `Workspace` for this direction: the gradients are its buffers, written over
    by each backward (the layer's `grads` are these arrays), not new arrays beside the last ones (0.12x
    of the states the RNN keeps at B128 H512, in every training step of a loop).
    """
    T, B, D = x.shape
    H = h_prev.shape[2]
    dtype = params["weight_hh"].dtype
    K = chunk_steps(T, B)
    head = width - tail                                              # dW_hh rows taken from dz
    dz = np.empty((K, B, width), dtype)
    dtail = np.empty((K, B, tail), dtype) if tail else None
    dx = (np.empty((T, B, D), dtype) if dx_add is None else dx_add) if need_dx else None
    grads = {"weight_ih": buffer(workspace, "grad_weight_ih", (width, D), dtype),
             "weight_hh": buffer(workspace, "grad_weight_hh", (width, H), dtype)}
    bias = "bias_ih" in params
    if bias:
        grads["bias_ih"] = buffer(workspace, "grad_bias_ih", (width,), dtype)
        grads["bias_hh"] = buffer(workspace, "grad_bias_hh", (width,), dtype)
    g_ih, g_hh, b_ih, b_hh = (grads.get(k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    fused = _blas.enabled()                                          # gemm with beta = 1 adds in place
    scratch = np.empty(-(-width // SCRATCH_PARTS) * max(D, H), dtype) if T > K and not fused else None
    for t1 in range(T, 0, -K):
        t0 = max(0, t1 - K)
        n = (t1 - t0) * B
        steps(t0, t1, dz, dtail)
        z = dz.reshape(K * B, width)[:n]
        xs, hs = x[t0:t1].reshape(n, D), h_prev[t0:t1].reshape(n, H)
        if need_dx and dx_add is None:
            np.matmul(z, params["weight_ih"], out=dx[t0:t1].reshape(n, D))
        elif need_dx:   # the whole product, then one addition: with both directions side by side each dx
            # element is +0 + p_fwd + p_rev in either order, the same bits (a gemm with beta = 1 would
            # interleave the other direction's value with its partial sums)
            part = (z @ params["weight_ih"]).reshape(t1 - t0, B, D)
            with ADD_LOCK:
                dx[t0:t1] += part
        first = t1 == T                                              # the first chunk writes
        _accumulate(g_ih, first, scratch, z.T, xs)
        _accumulate(g_hh[:head], first, scratch, z[:, :head].T, hs)
        if tail:
            zt = dtail.reshape(K * B, tail)[:n]
            _accumulate(g_hh[head:], first, scratch, zt.T, hs)
        if bias:
            _accumulate_sum(b_ih, first, z)
            if tail:
                _accumulate_sum(b_hh[head:], first, zt)
    if bias:
        b_hh[:head] = b_ih[:head]                                    # same pre-activation gradient
    return dx, grads


def _accumulate(out, first, scratch, a, b):
    """out = a @ b for the first chunk, else out += a @ b: one gemm with beta = 1 where NumPy's BLAS
    is callable (`_blas`), else computed into the scratch a quarter of out's rows at a time. (A full
    temporary of out's size put the H = 512 cases at 1.30x memory; 256-row pieces were 5-10% slower
    there with two BLAS threads: many small products.)"""
    if first:
        np.matmul(a, b, out=out)
        return
    if scratch is None:
        _blas.gemm(a, b, out, 1.0)
        return
    rows, cols = out.shape
    step = max(1, scratch.size // cols)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        dest = scratch[:(r1 - r0) * cols].reshape(r1 - r0, cols)
        np.matmul(a[r0:r1], b, out=dest)
        out[r0:r1] += dest


def _accumulate_sum(out, first, z):
    """out = z summed over its rows for the first chunk, else out += that sum."""
    if first:
        np.sum(z, axis=0, out=out)
    else:
        out += z.sum(axis=0)                                         # a (width,) temporary
