"""WAV reading (bad files refused clearly), resampling, mel filterbank, MFCC, normalisation."""
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import audio
from rnnkit.errors import UserError

DATA = Path(os.environ.get("RNNKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def _tone(freq=1000.0, sr=8000, secs=0.5, amp=0.5):
    t = np.arange(int(sr * secs)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def test_wav_round_trip_and_stereo(tmp_path):
    x = _tone()
    audio.write_wav(tmp_path / "a.wav", x, 8000)
    y, info = audio.read_wav(tmp_path / "a.wav")
    assert info == audio.AudioInfo(8000, 1, None)
    assert np.max(np.abs(x - y)) < 1e-4
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:  # stereo 16-bit: averaged to mono
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        pcm = np.stack([x, x], 1) * 32767
        w.writeframes(np.round(pcm).astype("<i2").tobytes())
    z, info = audio.read_wav(tmp_path / "s.wav")
    assert info.channels == 2 and np.max(np.abs(z - x)) < 1e-4


def test_bad_wavs_are_refused(tmp_path):
    (tmp_path / "x.wav").write_text("hello, not audio")
    with pytest.raises(UserError, match="not a WAV"):
        audio.read_wav(tmp_path / "x.wav")
    with pytest.raises(UserError, match="no such"):
        audio.read_wav(tmp_path / "missing.wav")
    audio.write_wav(tmp_path / "silent.wav", np.zeros(800), 8000)
    with pytest.raises(UserError, match="silent"):
        audio.read_wav(tmp_path / "silent.wav")
    # IEEE float WAV (format 3): refused as unsupported, not misread
    good = (tmp_path / "silent.wav").read_bytes()
    bad = bytearray(good)
    bad[20:22] = (3).to_bytes(2, "little")
    (tmp_path / "float.wav").write_bytes(bytes(bad))
    with pytest.raises(UserError, match="unsupported WAV"):
        audio.read_wav(tmp_path / "float.wav")


def test_other_rate_is_resampled(tmp_path):
    audio.write_wav(tmp_path / "16k.wav", _tone(1000.0, sr=16000), 16000)
    y, info = audio.read_wav(tmp_path / "16k.wav", sample_rate=8000)
    assert info.sample_rate == 8000 and info.resampled_from == 16000
    assert len(y) == 4000
    np.testing.assert_allclose(y[100:-100], _tone(1000.0, sr=8000)[100:-100], atol=2e-3)


def test_mel_filterbank_properties():
    fb = audio.mel_filterbank(20, 256, 8000)
    assert fb.shape == (20, 129) and fb.min() >= 0 and fb.max() <= 1
    freqs = np.linspace(0, 4000, 129)
    centres = freqs[np.argmax(fb, axis=1)]
    assert np.all(np.diff(centres) > 0)  # ordered filters
    # centres equally spaced in mel (up to bin quantisation)
    edges = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(4000), 22))
    assert np.all(np.abs(centres - edges[1:-1]) <= 4000 / 128)
    assert np.allclose(audio.mel_to_hz(audio.hz_to_mel([0, 700, 3000])), [0, 700, 3000])
    assert np.isclose(audio.hz_to_mel(700), 2595 * np.log10(2))


def test_log_mel_peaks_at_the_tone():
    f = audio.log_mel(_tone(1000.0), 8000, n_mels=30)
    assert f.shape == (1 + int(np.ceil((4000 - 200) / 80)), 30)
    centres = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(4000), 32))[1:-1]
    assert abs(centres[np.argmax(f[10])] - 1000.0) < 150


def test_dct_and_mfcc_match_scipy():
    sfft = pytest.importorskip("scipy.fft")
    d = audio.dct_matrix(40, 40)
    np.testing.assert_allclose(d @ d.T, np.eye(40), atol=1e-12)
    lm = audio.log_mel(_tone(440.0), 8000, n_mels=40)
    np.testing.assert_allclose(audio.mfcc(_tone(440.0), 8000, n_mfcc=13, n_mels=40),
                               sfft.dct(lm, type=2, norm="ortho", axis=1)[:, :13], atol=1e-10)


def test_normalised_features():
    rng = np.random.default_rng(0)
    x = _tone(700.0) + 0.01 * rng.normal(size=4000)
    for kind, n in (("logmel", 40), ("mfcc", 13)):
        f = audio.features(x, 8000, kind, n)
        assert f.shape[1] == n
        np.testing.assert_allclose(f.mean(0), 0, atol=1e-8)
    with pytest.raises(ValueError, match="kind"):
        audio.features(x, 8000, "spectrogram")


def test_reads_fsdd_recording():
    path = DATA / "fsdd" / "recordings" / "7_jackson_0.wav"
    if not path.exists():
        pytest.skip("shared data absent")
    x, info = audio.read_wav(path)
    assert info.sample_rate == 8000 and x.ndim == 1 and 0 < np.abs(x).max() <= 1
