"""rnnkit <-> Keras 3 (torch backend, the one installed here): converted layers and models give Keras's
outputs within 1e-5, files load through Keras's own reader with safe_mode on, and what rnnkit lacks
(reset_after=False, other activations, masking) is refused by layer name."""
import os

import numpy as np
import pytest

from rnnkit import GRU, LSTM, RNN, UserError
from rnnkit.interop import from_keras, to_keras
from rnnkit.models.language_model import RNNLanguageModel
from rnnkit.tasks.seqnet import SequenceNet

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
# Keras 3's torch backend converts with np.array(x) (a NumPy 2 deprecation inside Keras, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
T, B, D, H = 6, 3, 4, 5


def run_keras(model, x):
    return keras.ops.convert_to_numpy(model(x))


def close(name, ours, theirs, tol=1e-5):
    assert np.shape(ours) == np.shape(theirs), f"{name}: shape {np.shape(ours)} vs Keras {np.shape(theirs)}"
    err = np.abs(np.asarray(ours) - np.asarray(theirs)).max()
    assert err < tol, f"{name}: max abs difference {err:.2e} from Keras"


def randomize(model, rng):
    """Random weights everywhere (Keras zero-initialises biases, which would hide a misplaced bias)."""
    for layer in model.layers:
        layer.set_weights([rng.uniform(-.6, .6, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def seq_model(layer, rng, d=D):
    return randomize(keras.Sequential([keras.Input((None, d)), layer]), rng)


def rnnkit_seq(layer, x):
    """rnnkit's batch-major output for a batch-major x (B, T, D)."""
    return layer.forward(x.transpose(1, 0, 2))[0].transpose(1, 0, 2)


KERAS_LAYERS = {
    "lstm": lambda: keras.layers.LSTM(H, return_sequences=True),
    "lstm-nobias": lambda: keras.layers.LSTM(H, return_sequences=True, use_bias=False),
    "gru": lambda: keras.layers.GRU(H, return_sequences=True),
    "rnn-tanh": lambda: keras.layers.SimpleRNN(H, return_sequences=True),
    "rnn-relu": lambda: keras.layers.SimpleRNN(H, activation="relu", return_sequences=True),
    "bi-lstm": lambda: keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True)),
    "bi-gru": lambda: keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True)),
}


@pytest.mark.parametrize("kind", list(KERAS_LAYERS))
def test_keras_layer_to_rnnkit(kind):
    rng = np.random.default_rng(0)
    model = seq_model(KERAS_LAYERS[kind](), rng)
    layer = from_keras(model.layers[0])
    assert layer.bidirectional == kind.startswith("bi-")
    for Bn in (1, B):
        x = rng.standard_normal((Bn, T, D)).astype(np.float32)
        close(f"{kind} B={Bn}", rnnkit_seq(layer, x), run_keras(model, x))


@pytest.mark.parametrize("layer", [LSTM(D, H, num_layers=2, bidirectional=True, seed=1),
                                   GRU(D, H, num_layers=2, seed=2), RNN(D, H, nonlinearity="relu", bias=False)],
                         ids=["lstm-2-bi", "gru-2", "rnn-relu"])
def test_rnnkit_layer_to_keras_and_back(layer):
    rng = np.random.default_rng(1)
    layer.eval()
    model = to_keras(layer)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    want = rnnkit_seq(layer, x)
    close("to_keras", want, run_keras(model, x))
    close("from_keras(to_keras)", rnnkit_seq(from_keras(model), x), want)


def test_sequential_language_model_both_ways(tmp_path):
    rng = np.random.default_rng(2)
    V, E = 12, 4
    model = randomize(keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(V, E),
                                        keras.layers.LSTM(H, return_sequences=True),
                                        keras.layers.Dropout(0.3),
                                        keras.layers.LSTM(H, return_sequences=True), keras.layers.Dense(V)]), rng)
    lm = from_keras(model)
    assert isinstance(lm, RNNLanguageModel) and lm.num_layers == 2 and lm.cell == "lstm"
    ids = rng.integers(0, V, (B, T))
    want = run_keras(model, ids)
    close("logits", lm.forward(ids.T)[0].transpose(1, 0, 2), want)
    back = to_keras(lm)
    close("to_keras(lm)", run_keras(back, ids), want)
    # files: a .keras model, and .weights.h5 with the rnnkit model that says what the weights fit
    model.save(tmp_path / "lm.keras")
    close(".keras", from_keras(tmp_path / "lm.keras").forward(ids.T)[0].transpose(1, 0, 2), want)
    back.save_weights(tmp_path / "lm.weights.h5")
    skeleton = RNNLanguageModel(V, E, H, num_layers=2, cell="lstm", seed=9)
    loaded = from_keras(tmp_path / "lm.weights.h5", like=skeleton)
    close(".weights.h5", loaded.forward(ids.T)[0].transpose(1, 0, 2), want)
    with pytest.raises(UserError, match="do not fit RNNLanguageModel"):
        from_keras(tmp_path / "lm.weights.h5", like=RNNLanguageModel(V, E, H + 1, num_layers=2, cell="lstm"))


def test_classifier_chain_is_a_sequence_net():
    rng = np.random.default_rng(3)
    model = randomize(keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 4),
                                        keras.layers.Bidirectional(keras.layers.GRU(H)), keras.layers.Dense(3)]),
                      rng)
    net = from_keras(model)
    assert isinstance(net, SequenceNet) and net.pooling == "last" and net.rnn.bidirectional
    ids = rng.integers(0, 20, (B, T))
    want = run_keras(model, ids)
    close("logits", net.forward(ids.T, np.full(B, T)), want)
    close("to_keras(net)", run_keras(to_keras(net), ids), want)
    with pytest.raises(TypeError, match="mean pooling"):
        to_keras(SequenceNet(D, 2, pooling="mean"))


def test_ctc_model_to_keras_and_back():
    from rnnkit.tasks.speech import CTCModel

    rng = np.random.default_rng(5)
    model = CTCModel(D, 6, "lstm", hidden=H, layers=2, bidirectional=True, seed=2).eval()
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    want = model.forward(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    km = to_keras(model)
    close("to_keras(ctc)", run_keras(km, x), want)
    back = from_keras(km)
    assert isinstance(back, CTCModel)
    close("from_keras(to_keras(ctc))", back.forward(x.transpose(1, 0, 2)).transpose(1, 0, 2), want)


@pytest.mark.parametrize("layer,needle", [
    (lambda: keras.layers.GRU(H, reset_after=False, return_sequences=True), "reset_after=False"),
    (lambda: keras.layers.LSTM(H, activation="relu", return_sequences=True), "activation='relu'"),
    (lambda: keras.layers.LSTM(H, recurrent_dropout=0.2, return_sequences=True), "recurrent_dropout"),
    (lambda: keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True), merge_mode="sum"),
     "merge_mode='sum'"),
], ids=["gru-reset-before", "lstm-relu", "recurrent-dropout", "bi-sum"])
def test_layers_without_counterpart_are_refused_by_name(layer, needle):
    model = seq_model(layer(), np.random.default_rng(4))
    with pytest.raises(UserError, match=needle) as e:
        from_keras(model)
    assert repr(model.layers[0].name) in str(e.value)


def test_models_and_files_without_counterpart_are_refused(tmp_path):
    masked = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(5, 3, mask_zero=True),
                               keras.layers.LSTM(H, return_sequences=True), keras.layers.Dense(5)])
    with pytest.raises(UserError, match="mask_zero"):
        from_keras(masked)
    soft = keras.Sequential([keras.Input((None, D)), keras.layers.LSTM(H), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(UserError, match="softmax"):
        from_keras(soft)
    lam = keras.Sequential([keras.Input((None, D)), keras.layers.Lambda(lambda t: t * 2.0),
                            keras.layers.LSTM(H, return_sequences=True)])
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(UserError, match="safe_mode"):               # Keras refuses the lambda's code
        from_keras(tmp_path / "lambda.keras")
    inp = keras.Input((None, D))
    functional = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(H, return_sequences=True)(inp)))
    with pytest.raises(UserError, match="not a Sequential"):
        from_keras(functional)
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(UserError, match="not a Keras 3 file"):
        from_keras(tmp_path / "m.h5")
    with pytest.raises(UserError, match="weights only"):
        (tmp_path / "w.weights.h5").write_bytes(b"")
        from_keras(tmp_path / "w.weights.h5")
