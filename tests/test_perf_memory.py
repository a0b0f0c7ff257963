"""Memory measured: tracemalloc peaks of a training step (forward + backward) as it runs in a loop,
against the activations the forward must keep. Deterministic (no timing), so they can fail."""
import numpy as np
import pytest

import rnnkit
from rnnkit import backends
from core_cases import peak_bytes

needs_numba = pytest.mark.skipif(not backends.available("numba"), reason="numba is not installed")


@needs_numba
def test_training_step_memory_stays_near_the_kept_activations():
    """tracemalloc peak of forward + backward (deterministic: no timing) for an LSTM against the 6H
    floats per step and row the forward keeps. Measured 1.24 with the chunked weight gradients; the
    whole-sequence dz it replaced gave 1.8, the NumPy cells 1.95."""
    T, B, D, H = 100, 32, 32, 64
    layer = rnnkit.LSTM(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    ratio = peak_bytes(layer, x, dout) / (T * B * 6 * H * 4)
    assert ratio < 1.35, f"peak memory {ratio:.2f}x the kept activations"


@needs_numba
@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_backward_without_input_grad_keeps_no_dx(cls):
    """input_grad=False saves the (T, B, D) dx array at the peak (tracemalloc, float32; to within a
    few Python objects' bytes)."""
    T, B, D, H = 60, 16, 48, 32
    layer = cls(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    full, part = peak_bytes(layer, x, dout), peak_bytes(layer, x, dout, input_grad=False)
    assert full - part >= 0.99 * T * B * D * 4, (full, part)


@needs_numba
@pytest.mark.parametrize("cls,kept", [(rnnkit.LSTM, 6), (rnnkit.GRU, 5)])
@pytest.mark.slow
def test_two_layer_bidirectional_memory_stays_within_the_goal(cls, kept):
    """tracemalloc peak of forward + backward for the benchmark's 2-layer bidirectional case against the
    kept activations (6H LSTM, 5H GRU per step, row, layer and direction). Measured 1.23 (LSTM) and
    1.25 (GRU) with the shared state buffer; concatenating each layer's output (kept again as the next
    layer's input) gave 1.30 and 1.33."""
    T, B, D, H = 100, 32, 64, 128
    layer = cls(D, H, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, 2 * H), dtype=np.float32)
    ratio = peak_bytes(layer, x, dout) / (2 * 2 * T * B * kept * H * 4)
    assert ratio < 1.28, f"peak memory {ratio:.2f}x the kept activations"


@needs_numba
@pytest.mark.slow
def test_rnn_memory_on_data_stays_within_the_goal():
    """The benchmark's largest RNN case, trained on data (input_grad=False): peak of forward + backward
    against the H floats per step and row it keeps. 1.303 while the backward copied each dout_t into
    a (B, H) buffer; 1.28 reading a contiguous dout in place (`_seq.dout_rows`)."""
    T, B, D, H = 50, 128, 256, 512
    layer = rnnkit.RNN(D, H, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dout = rng.standard_normal((T, B, H), dtype=np.float32)
    ratio = peak_bytes(layer, x, dout, input_grad=False) / (T * B * H * 4)
    assert ratio <= 1.3, f"peak memory {ratio:.3f}x the kept states"
