"""WAV reading and speech features (log-mel filterbank energies, MFCC) in NumPy.

Reading uses the standard library's `wave` module: uncompressed PCM only (8-, 16-, 24- or 32-bit
integer), any channel count (averaged to mono). Compressed or float WAVs and non-WAV files are refused
with a `UserError` naming the file. A file at another sample rate is resampled to the requested rate by
FFT (band-limited: the spectrum is truncated or zero-padded, as `scipy.signal.resample` does) and the
caller is told through the returned `AudioInfo.resampled_from`. A silent file (peak below 1e-4 of full
scale, about -80 dBFS) is refused, since its features would be constant and its normalisation undefined.

Features follow the usual speech front end (e.g. HTK book ch. 5; Davis & Mermelstein 1980):
    frames of `win_ms` every `hop_ms`, Hann window, power spectrum |FFT|^2 / n_fft,
    mel(f) = 2595 log10(1 + f / 700)                       (HTK mel scale)
    M filters: triangles with centres equally spaced in mel between `fmin` and `fmax`, peak 1
    logmel = log(P @ F^T + 1e-10)                           (T, M)
    mfcc = logmel @ DCT-II(orthonormal)^T, first `n_mfcc` coefficients
Per-utterance normalisation subtracts each feature's mean over time and divides by its standard
deviation (cepstral mean and variance normalisation).

Shapes: N samples, T frames, K = n_fft // 2 + 1 frequency bins, M mel filters.
"""
from __future__ import annotations

import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import UserError

SILENCE_PEAK = 1e-4


class AudioInfo(NamedTuple):
    sample_rate: int
    channels: int
    resampled_from: int | None  # the file's own rate when it was resampled, else None


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D signal by truncating or zero-padding its spectrum."""
    if sr_in == sr_out:
        return x
    n_out = max(1, int(round(len(x) * sr_out / sr_in)))
    spec = np.fft.rfft(x)
    k = n_out // 2 + 1
    out_spec = np.zeros(k, dtype=complex)
    m = min(k, spec.size)
    out_spec[:m] = spec[:m]
    return np.fft.irfft(out_spec, n_out) * (n_out / len(x))


def read_wav(path, sample_rate: int | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Samples of a PCM WAV file as float64 in [-1, 1], mono, at `sample_rate` (the file's if None).

    Raises UserError for a missing file, a non-WAV or compressed file, an empty or a silent one.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file")
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise UserError(f"{path}: not a WAV file (no RIFF/WAVE header); convert it to 16-bit PCM WAV")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, sr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise UserError(f"{path}: unsupported WAV ({e}); only uncompressed integer PCM is read, "
                        "convert it to 16-bit PCM WAV") from None
    if n == 0 or not raw:
        raise UserError(f"{path}: the WAV file has no samples")
    if width == 1:  # 8-bit PCM is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width in (2, 4):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float64) / float(2 ** (8 * width - 1))
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 2 ** 23, v - 2 ** 24, v).astype(np.float64) / 2 ** 23
    else:
        raise UserError(f"{path}: unsupported sample width of {width} bytes")
    x = x[: (x.size // channels) * channels].reshape(-1, channels).mean(axis=1)  # (N,) mono
    if np.max(np.abs(x)) < SILENCE_PEAK:
        raise UserError(f"{path}: the recording is silent (peak amplitude below {SILENCE_PEAK:g} of full scale)")
    resampled_from = None
    if sample_rate is not None and sr != sample_rate:
        x = resample(x, sr, sample_rate)
        resampled_from, sr = sr, sample_rate
    return x, AudioInfo(sr, channels, resampled_from)


def write_wav(path, x: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as 16-bit PCM."""
    pcm = np.clip(np.round(np.asarray(x) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular filters (M, K) on the HTK mel scale, peak 1 at each centre (no area normalisation)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"mel_filterbank: need 0 <= fmin < fmax <= sample_rate/2, got {fmin}, {fmax}")
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (M + 2,) Hz
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)  # (K,) bin centres
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lo) / (mid - lo)
    falling = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows: D[k, m] = s_k cos(pi k (2m + 1) / (2 n_in)), s_0 = sqrt(1/n), else sqrt(2/n)."""
    k = np.arange(n_out)[:, None]
    m = np.arange(n_in)[None, :]
    d = np.cos(np.pi * k * (2 * m + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    d[0] /= np.sqrt(2.0)
    return d


def frame_signal(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(T, win) frames; the signal is zero-padded so the last samples fall in a frame."""
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    T = 1 + int(np.ceil((len(x) - win) / hop))
    x = np.pad(x, (0, (T - 1) * hop + win - len(x)))
    idx = np.arange(win)[None, :] + hop * np.arange(T)[:, None]  # (T, win)
    return x[idx]


def log_mel(x: np.ndarray, sample_rate: int, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0,
            fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Log mel filterbank energies (T, M) of a mono signal x (N,)."""
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    n_fft = 1 << (win - 1).bit_length()
    frames = frame_signal(np.asarray(x, dtype=np.float64), win, hop) * np.hanning(win)[None]  # (T, win)
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2 / n_fft  # (T, K)
    return np.log(power @ mel_filterbank(n_mels, n_fft, sample_rate, fmin, fmax).T + 1e-10)


def mfcc(x: np.ndarray, sample_rate: int, n_mfcc: int = 13, n_mels: int = 40, **kw) -> np.ndarray:
    """Mel-frequency cepstral coefficients (T, n_mfcc): orthonormal DCT-II of the log mel energies."""
    lm = log_mel(x, sample_rate, n_mels=n_mels, **kw)
    return lm @ dct_matrix(n_mfcc, n_mels).T


def normalize(feats: np.ndarray) -> np.ndarray:
    """Per-utterance mean and variance normalisation of (T, F) features, over time."""
    return (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-5)


# kind -> (signal, sample_rate, n) -> (T, n)
FEATURES = {
    "logmel": lambda x, sr, n: log_mel(x, sr, n_mels=n),
    "mfcc": lambda x, sr, n: mfcc(x, sr, n_mfcc=n),
}


def features(x: np.ndarray, sample_rate: int, kind: str = "logmel", n: int = 40) -> np.ndarray:
    """Normalised features (T, n) of kind "logmel" (n mel filters) or "mfcc" (n coefficients)."""
    if kind not in FEATURES:
        raise ValueError(f"features: kind must be one of {sorted(FEATURES)}, got {kind!r}")
    return normalize(FEATURES[kind](x, sample_rate, n))
