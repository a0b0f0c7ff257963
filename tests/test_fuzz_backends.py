"""Differential fuzz suite: every backend of a recurrent layer gives the NumPy reference's numbers.

The NumPy cells (`rnnkit.cells`) are the oracle; the fused Numba kernels must reproduce them on every
shape and memory layout a user can hand in (issue 16: batch 1 with a reversed view gave wrong
gradients silently, and the fixed-shape tests never drew it). Hypothesis draws the case (cell, layers,
direction, B, T, D, H, lengths, batch_first, dtype, the memory layout of every input, initial state
and dstate or not, input_grad) and every backend must agree with the reference on outputs, final
states, dx, the initial-state gradients and every named gradient. All runs go through `run_on(backend,
...)`, the one place that knows how a backend is selected, so a new backend is one entry in `BACKENDS`.

Profiles (`RNNKIT_FUZZ_PROFILE`): `ci` (default: deterministic, a few minutes) and `long` (thousands of
random cases, run before touching the kernels); RNNKIT_FUZZ_EXAMPLES=N sets the number of layer cases
(a quarter as many step cases):
    RNNKIT_FUZZ_PROFILE=long python3 -m pytest tests/test_fuzz_backends.py
"""
import contextlib
import copy
import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit import backends

LAYERS = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


def _why_not_numba():
    return None if backends.available("numba") else "numba is not installed"


def _why_not_compiled_loop():
    if not backends.available("numba"):
        return "numba is not installed"
    from rnnkit.kernels import _blas
    return None if _blas.AVAILABLE else "NumPy's CBLAS gemm was not found in this process"


def _why_not_side_by_side():
    if _why_not_compiled_loop():
        return _why_not_compiled_loop()
    from rnnkit.kernels import _blas
    return None if _blas.threads() is not None else "NumPy's BLAS is not an OpenBLAS rnnkit can call"


def _python_loop():
    """The fused kernels with their Python time loops (np.matmul per step): the path for a BLAS that
    rnnkit cannot call from compiled code."""
    from rnnkit.kernels import _blas
    return _blas.disabled()


@contextlib.contextmanager
def _side_by_side(bidirectional: bool):
    """A bidirectional layer's two directions on two threads at any size (`kernels._parallel`; both
    add into one dx under a lock); the block must have run them as a pair."""
    from core_cases import side_by_side
    with side_by_side() as pairs:
        yield
    assert pairs or not bidirectional, "the side-by-side backend never ran the two directions as a pair"


def _on(name: str, context=lambda layer: contextlib.nullcontext()):
    """context(layer) that first sets the layer's registered backend (`rnnkit.backends`, the layer's
    `backend=`) to `name`, then enters `context(layer)`."""
    def enter(layer):
        layer.backend = name
        return context(layer)
    return enter


# backend name -> (why it cannot run here: a reason or None, context(layer) under which a layer runs on
# it); the registered backend each runs on is `registered(name)`
BACKENDS = {
    "numpy": (lambda: None, _on("numpy")),
    "numba": (_why_not_compiled_loop, _on("numba")),
    "numba-python-loop": (_why_not_numba, _on("numba", lambda layer: _python_loop())),
    "numba-side-by-side": (_why_not_side_by_side,
                           _on("numba", lambda layer: _side_by_side(layer.bidirectional))),
}


def registered(backend: str) -> str:
    """The `rnnkit.backends` name a fuzz backend runs on ("numba-python-loop" -> "numba")."""
    return backend.split("-")[0]
REFERENCE = "numpy"


def backends_here(bidirectional: bool = True) -> list[str]:
    """The backends other than the reference that can run in this process (side by side: only for
    bidirectional layers)."""
    return [b for b, (why_not, _) in BACKENDS.items() if b != REFERENCE and why_not() is None
            and (bidirectional or b != "numba-side-by-side")]


def run_on(backend: str, layer, x, state=None, lengths=None, dout=None, dstate=None, input_grad=True,
           repeat=False):
    """{quantity: array} of a forward and backward of a copy of `layer` on `backend`: out, the final
    states (h_n, c_n), dx, the initial-state gradients (dh_0, dc_0), every named gradient and, when
    the layer records them, the hidden-state gradients (dh_seq_l<l>_d<d>). dout=None: a fixed random
    upstream gradient. repeat: run both twice and return the second (it writes over the first's
    dropped buffers, the layer's workspaces); the first call's outputs must be left as they were."""
    layer = copy.deepcopy(layer)
    with BACKENDS[backend][1](layer):
        for run in range(2 if repeat else 1):
            out, final = layer.forward(x, state, lengths=lengths)
            made = layer._cache.backend
            assert made == registered(backend), f"backend {backend} did not run (the cache is {made}'s)"
            if dout is None:
                dout = np.random.default_rng(12345).standard_normal(out.shape)
            dx, dfirst = layer.backward(dout, dstate, input_grad=input_grad)
            if run == 0 and repeat:
                kept = [out, dx, *(final if isinstance(final, tuple) else (final,))]
                copies = [None if a is None else a.copy() for a in kept]
        if repeat:
            for i, (a, c) in enumerate(zip(kept, copies)):
                assert c is None or np.array_equal(a, c, equal_nan=True), \
                    f"{backend}: a second forward/backward wrote into the first's output #{i}"
    final, dfirst = (final if isinstance(final, tuple) else (final,)), (
        dfirst if isinstance(dfirst, tuple) else (dfirst,))
    got = {"out": out, "dx": dx}
    for name, a, da in zip("hc", final, dfirst):
        got[f"{name}_n"], got[f"d{name}_0"] = a, da
    got.update(layer._grads)
    got.update({f"dh_seq_l{l}_d{d}": g for (l, d), g in layer.hidden_grads.items()})
    return {k: None if v is None else np.array(v, copy=True) for k, v in got.items()}


def assert_same(got: dict, want: dict, rtol: float, what: str = "", floor: float = 0.0) -> None:
    """Every quantity agrees to rtol relative to max(its largest magnitude, floor); the message names
    it. floor: a saturated gate's derivative 1 - h**2 is a difference of numbers near 1, exact only
    to float rounding in absolute terms, so a gradient made tiny by saturation is compared at
    rtol * floor absolutely (a wrong gradient is off by its own size, far above that)."""
    assert got.keys() == want.keys(), f"{what}: quantities differ: {sorted(got)} vs {sorted(want)}"
    for k, w in want.items():
        g = got[k]
        if w is None or g is None:
            assert g is None and w is None, f"{what}: {k} is None on one backend only"
            continue
        assert g.shape == w.shape and g.dtype == w.dtype, \
            f"{what}: {k} {g.shape} {g.dtype} vs {w.shape} {w.dtype}"
        assert np.array_equal(np.isfinite(g), np.isfinite(w)), f"{what}: {k} is not finite in the same places"
        scale = max(float(np.abs(w).max(initial=0.0)), floor, 1e-300)
        err = float(np.abs(g.astype(np.float64) - w).max(initial=0.0)) / scale
        assert err <= rtol, \
            f"{what}: {k} differs from the reference by {err:.2e} (relative; tolerance {rtol:g})"


# -- regressions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != REFERENCE])
@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_bidirectional_batch_one_beyond_one_chunk(backend, cell):
    """Issue 16: at B = 1 the reverse direction's time-reversed input and states reshape to (T, D) views
    with a negative row stride, which the chunked weight gradients handed to BLAS as positive ones
    (wrong weight_ih/weight_hh_reverse from T = 514 on: the second 512-step chunk, garbage or a
    segfault further on)."""
    if BACKENDS[backend][0]():
        pytest.skip(BACKENDS[backend][0]())
    layer = LAYERS[cell](2, 3, bidirectional=True, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((600, 1, 2))
    assert_same(run_on(backend, layer, x), run_on(REFERENCE, layer, x), 1e-10, f"{cell} T=600 B=1")


def test_bidirectional_batch_one_very_long():
    """The same cause read far enough past the arrays to segfault at T of about 30,000."""
    if _why_not_compiled_loop():
        pytest.skip(_why_not_compiled_loop())
    layer = rnnkit.LSTM(1, 2, bidirectional=True, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((30_000, 1, 1))
    assert_same(run_on("numba", layer, x), run_on(REFERENCE, layer, x), 1e-10, "LSTM T=30000 B=1")


def test_blas_gemm_reads_and_writes_any_strides():
    """`_blas.gemm` on operands BLAS cannot address in place (negative, zero, non-unit and
    non-element strides) copies them instead of reading past the array."""
    if _why_not_compiled_loop():
        pytest.skip(_why_not_compiled_loop())
    from rnnkit.kernels import _blas
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 88))
    X = rng.standard_normal((600, 2))
    raw = np.zeros(88 * 16 + 1, np.uint8)[1:1 + 88 * 16].view(np.float64).reshape(88, 2)  # misaligned
    raw[...] = X[:88]
    odd = np.ndarray((88, 2), np.float64, buffer=np.zeros(88 * 24 + 4), offset=4, strides=(20, 8))
    odd[...] = X[:88]
    operands = {"reversed": X[::-1][:88], "reversed tail": X[::-1][500:588], "broadcast":
                np.broadcast_to(X[0], (88, 2)), "column stride 2": rng.standard_normal((88, 4))[:, ::2],
                "3-D slice": rng.standard_normal((88, 2, 2))[:, :, 0], "misaligned": raw,
                "row stride of 2.5 elements": odd}
    for name, b in operands.items():
        c = np.full((12, 2), 0.5)
        _blas.gemm(A, b, c, 1.0)
        np.testing.assert_allclose(c, A @ b + 0.5, rtol=1e-13, atol=1e-13, err_msg=name)
        c = np.zeros((2, 12))
        _blas.gemm(b.T, A.T, c, 0.0)
        np.testing.assert_allclose(c, b.T @ A.T, rtol=1e-13, atol=1e-13, err_msg=f"{name}, transposed")
    for name, c in {"Fortran order": np.zeros((12, 2), order="F"), "reversed": np.zeros((12, 2))[::-1],
                    "column stride 2": np.zeros((12, 4))[:, ::2]}.items():
        c += 1.0
        _blas.gemm(A, X[:88], c, 1.0)
        np.testing.assert_allclose(c, A @ X[:88] + 1.0, rtol=1e-13, atol=1e-13, err_msg=f"out {name}")


# -- the fuzz suite ------------------------------------------------------------------------------------

PROFILES = {  # Hypothesis settings per RNNKIT_FUZZ_PROFILE; not loaded globally (other suites have theirs)
    "ci": settings(max_examples=600, deadline=None, derandomize=True, database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
    "long": settings(max_examples=10000, deadline=None, database=None, print_blob=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
}
PROFILE = os.environ.get("RNNKIT_FUZZ_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"RNNKIT_FUZZ_PROFILE must be one of {sorted(PROFILES)}, got {PROFILE!r}")
FUZZ = PROFILES[PROFILE]
if os.environ.get("RNNKIT_FUZZ_EXAMPLES"):                 # e.g. a longer long run: 50000
    FUZZ = settings(FUZZ, max_examples=int(os.environ["RNNKIT_FUZZ_EXAMPLES"]))
STEP_FUZZ = settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 4))

# how an input array is laid out in memory; its values are the same in every layout
LAYOUTS = ("C", "F", "strided", "reversed", "flipped", "offset", "readonly", "batch-major", "unaligned",
           "byteswapped")
TOL = {"float64": 1e-10, "float32": 2e-4}   # relative to a quantity's largest magnitude, or to FLOOR
FLOOR = {"float64": 1e-3, "float32": 1.0}     # (`assert_same`)


def lay_out(a: np.ndarray, layout: str) -> np.ndarray:
    """`a` with the same values in the memory layout `layout` (one of LAYOUTS)."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":                          # every other element of a larger array, all axes
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        view = big[(slice(1, None, 2),) * a.ndim]
    elif layout == "reversed":                       # a time-reversed view (negative first stride)
        view = np.empty_like(a)[::-1]
    elif layout == "flipped":                        # every axis reversed
        view = np.empty_like(a)[(slice(None, None, -1),) * a.ndim]
    elif layout == "offset":                         # C order inside a larger buffer (base is not None)
        view = np.zeros(a.size + 3, a.dtype)[3:].reshape(a.shape)
    elif layout == "batch-major":                    # the first two axes swapped in memory
        view = np.empty_like(a.swapaxes(0, 1)).swapaxes(0, 1) if a.ndim > 1 else np.empty_like(a)
    elif layout == "unaligned":                      # a byte offset that is not a whole element
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        view = raw.view(a.dtype).reshape(a.shape)
    elif layout == "byteswapped":                    # non-native byte order (the layer converts it)
        return a.astype(a.dtype.newbyteorder())
    elif layout == "readonly":
        view = np.array(a)
        view.setflags(write=False)
        return view
    else:
        raise ValueError(f"unknown layout {layout!r}")
    view[...] = a
    return view


@dataclasses.dataclass(frozen=True)
class Case:
    """One drawn configuration; the arrays are made from `seed` (`arrays`)."""

    cell: str = "lstm"                  # "rnn", "rnn_relu", "lstm", "gru"
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    T: int = 5
    B: int = 2
    D: int = 3
    H: int = 4
    lengths: str = "none"               # "none", "full" (all T), "equal" (all one length), "random"
    dtype: str = "float64"
    x_dtype: str = "same"               # "same" or another float dtype (the layer converts)
    x_scale: float = 1.0                # 30: saturated gates
    x_layout: str = "C"
    state: str = "none"                 # initial state: "none" or a layout
    dout_layout: str = "C"
    dstate: str = "none"                # "none" or a layout
    input_grad: bool = True
    dropout: float = 0.0                # between layers, training mode
    chunk_steps: int | None = None      # force the fused backward's steps per chunk (None: its own)
    record_hidden_grads: bool = False   # the layer also returns dL/dh_t per step (diagnostics)
    repeat: bool = False                # forward/backward twice (the second writes over the first's buffers)
    step_kernel: str = "auto"           # step(): "small" (one compiled call), "large" (BLAS + gate kernel)
    seed: int = 0


@st.composite
def cases(draw, unidirectional=False) -> Case:
    """Cases weighted towards small shapes (fast) with long sequences now and then."""
    band = draw(st.integers(0, 99))
    if band < 75:
        T = draw(st.integers(1, 16))
    elif band < 93:
        T = draw(st.integers(17, 120))
    elif band < 98:
        T = draw(st.integers(500, 1100))            # around the 512-row weight-gradient chunks
    else:
        T = draw(st.integers(1100, 3000))
    B = draw(st.sampled_from([1, 1, 2, 3, 5, 8]))
    dtype = draw(st.sampled_from(["float64", "float64", "float64", "float32"]))
    if dtype == "float32":
        T = min(T, 64)                               # float32 round-off grows with T: compared short
    num_layers = draw(st.integers(1, 2))
    wide = draw(st.integers(0, 99)) < 20 and T <= 120   # wider layers: the gate loops' vector bodies
    D = draw(st.integers(7, 40) if wide else st.integers(1, 6))
    H = draw(st.integers(9, 72) if wide else st.integers(1, 8))
    lengths = draw(st.sampled_from(["none", "none", "full", "equal", "random"]))
    return Case(
        cell=draw(st.sampled_from(["rnn", "rnn_relu", "lstm", "gru"])),
        num_layers=num_layers,
        bidirectional=False if unidirectional else draw(st.booleans()),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        T=T, B=B, D=D, H=H,
        lengths="none" if unidirectional else lengths,
        dtype=dtype,
        x_dtype=draw(st.sampled_from(["same"] * 5 + ["float32" if dtype == "float64" else "float64"])),
        x_scale=draw(st.sampled_from([1.0, 1.0, 1.0, 30.0])),
        x_layout=draw(st.sampled_from(LAYOUTS)),
        state=draw(st.sampled_from(("none",) + LAYOUTS)),
        dout_layout=draw(st.sampled_from(LAYOUTS)),
        dstate=draw(st.sampled_from(("none",) + LAYOUTS)),
        input_grad=draw(st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.0, 0.3])) if num_layers > 1 else 0.0,
        chunk_steps=draw(st.sampled_from([None, None, 1, 2, 3, 7])) if T <= 120 else None,
        record_hidden_grads=draw(st.booleans()),
        repeat=draw(st.booleans()),
        step_kernel=draw(st.sampled_from(["auto", "small", "large"])) if unidirectional else "auto",
        seed=draw(st.integers(0, 2**16)),
    )


def make_layer(case: Case):
    kw = {"nonlinearity": "relu"} if case.cell == "rnn_relu" else {}
    layer = LAYERS[case.cell.split("_")[0]](
        case.D, case.H, num_layers=case.num_layers, bias=case.bias, batch_first=case.batch_first,
        bidirectional=case.bidirectional, dropout=case.dropout, dtype=np.dtype(case.dtype),
        seed=case.seed, **kw)
    layer.record_hidden_grads = case.record_hidden_grads
    return layer


def arrays(case: Case, layer) -> dict:
    """x, state, lengths, dout and dstate of the case (the keyword arguments of `run_on`)."""
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.dtype)
    T, B, nd = case.T, case.B, 2 if case.bidirectional else 1
    x_dtype = dtype if case.x_dtype == "same" else np.dtype(case.x_dtype)
    x = case.x_scale * rng.standard_normal((B, T, case.D) if case.batch_first else (T, B, case.D))
    x = x.astype(x_dtype)
    n_states = 2 if case.cell == "lstm" else 1
    s_shape = (case.num_layers * nd, B, case.H)

    def state(layout, scale):
        if layout == "none":
            return None
        parts = tuple(lay_out((scale * rng.standard_normal(s_shape)).astype(dtype), layout)
                      for _ in range(n_states))
        return parts if n_states == 2 else parts[0]

    lengths = None
    if case.lengths == "full":
        lengths = np.full(B, T)
    elif case.lengths == "equal":
        lengths = np.full(B, rng.integers(1, T + 1))
    elif case.lengths == "random":
        lengths = rng.integers(1, T + 1, size=B)
    out_shape = (B, T, nd * case.H) if case.batch_first else (T, B, nd * case.H)
    return {"x": lay_out(x, case.x_layout), "state": state(case.state, 0.5), "lengths": lengths,
            "dout": lay_out(rng.standard_normal(out_shape).astype(dtype), case.dout_layout),
            "dstate": state(case.dstate, 1.0), "input_grad": case.input_grad, "repeat": case.repeat}


@contextlib.contextmanager
def chunks_of(steps):
    """Force the fused backward's steps per weight-gradient chunk (many chunks at small T)."""
    from rnnkit.kernels import _seq
    saved = _seq.CHUNK_STEPS
    _seq.CHUNK_STEPS = steps
    try:
        yield
    finally:
        _seq.CHUNK_STEPS = saved


def _snapshot(inputs: dict) -> dict:
    flat = {}
    for k, v in inputs.items():
        for i, a in enumerate(v if isinstance(v, tuple) else (v,)):
            if isinstance(a, np.ndarray):
                flat[f"{k}{i}"] = a.copy()
    return flat


def check_case(case: Case) -> None:
    """Every backend that runs here agrees with the reference on the case, and no run writes into
    its inputs."""
    backends = backends_here(case.bidirectional)
    if not backends:
        pytest.skip("no backend besides the NumPy reference can run here (numba is not installed)")
    layer = make_layer(case)
    inputs = arrays(case, layer)
    before = _snapshot(inputs)
    want = run_on(REFERENCE, layer, **inputs)
    for backend in backends:
        with chunks_of(case.chunk_steps):
            got = run_on(backend, layer, **inputs)
        assert_same(got, want, TOL[case.dtype], f"{backend} on {case}", FLOOR[case.dtype])
    after = _snapshot(inputs)
    for k, a in before.items():
        assert np.array_equal(a, after[k]), f"{k} was written into by a forward or backward ({case})"


@pytest.mark.slow  # 146 s in the fast set at load 13 (600 drawn cases): run before touching kernels
@FUZZ
@given(case=cases())
@example(case=Case(cell="lstm", bidirectional=True, T=600, B=1, D=2, H=3))     # issue 16
@example(case=Case(cell="gru", bidirectional=True, T=515, B=1, D=2, H=3, x_layout="reversed"))
def test_backends_match_the_reference(case):
    event(f"T {'1' if case.T == 1 else '2-16' if case.T <= 16 else '17-120' if case.T <= 120 else '500+'}")
    event(f"B {'1' if case.B == 1 else '2+'}, {'bi' if case.bidirectional else 'uni'}directional")
    event(f"H {'9+' if case.H > 8 else '1-8'}, {case.dtype}")
    check_case(case)


@contextlib.contextmanager
def step_kernel(kind: str):
    """Force the fused step's choice between its small-layer kernel and BLAS + the gate kernel."""
    from rnnkit.kernels import _seq
    saved = _seq.SMALL_STEP_MACS
    _seq.SMALL_STEP_MACS = {"auto": saved, "small": 1 << 62, "large": -1}[kind]
    try:
        yield
    finally:
        _seq.SMALL_STEP_MACS = saved


def step_through(backend: str, layer, x, state, kernel="auto"):
    """(the outputs (T, B, H) of layer.step over x, the final state) on `backend`."""
    layer = copy.deepcopy(layer)
    outs = []
    with BACKENDS[backend][1](layer), step_kernel(kernel):
        for t in range(x.shape[0]):
            y, state = layer.step(x[t], state)
            outs.append(np.array(y, copy=True))
    final = state if isinstance(state, tuple) else (state,)
    return np.stack(outs), tuple(np.array(s, copy=True) for s in final)


@STEP_FUZZ
@given(case=cases(unidirectional=True))
@example(case=Case(cell="rnn", num_layers=2, T=1, B=1, D=1, H=2, state="F"))  # x_t of layer 2 strided
def test_step_matches_forward(case):
    """layer.step(x_t) over a sequence on every backend gives the reference forward's outputs and
    final state (unidirectional layers; time-major x)."""
    case = dataclasses.replace(case, T=min(case.T, 40), batch_first=False, dropout=0.0)
    event(f"step kernel {case.step_kernel}, H {'9+' if case.H > 8 else '1-8'}")
    layer = make_layer(case)
    inputs = arrays(case, layer)
    want = run_on(REFERENCE, layer, **inputs)
    want_state = (want["h_n"],) + ((want["c_n"],) if "c_n" in want else ())
    for backend in [REFERENCE] + backends_here(bidirectional=False):
        outs, final = step_through(backend, layer, inputs["x"], inputs["state"], case.step_kernel)
        assert_same({"out": outs, **{f"state{i}": s for i, s in enumerate(final)}},
                    {"out": want["out"], **{f"state{i}": s for i, s in enumerate(want_state)}},
                    TOL[case.dtype], f"step on {backend}, {case}", FLOOR[case.dtype])
