"""import_onnx: graphs built here with onnx.helper and random ONNX-layout weights become rnnkit layers
whose outputs are ONNX Runtime's (1e-5); rnnkit's own exports import back to the same parameters; what
rnnkit cannot represent is refused by node name and attribute, and other files are refused."""
import numpy as np
import pytest

from rnnkit import GRU, LSTM, RNN, UserError
from rnnkit.interop import export_onnx, import_onnx
from rnnkit.models.language_model import RNNLanguageModel
from rnnkit.tasks.seqnet import SequenceNet
from rnnkit.tasks.speech import CTCModel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

D, H, T, B = 3, 4, 6, 3
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def recurrent_graph(path, op="LSTM", nd=1, bias=True, lens=False, rng=None, extra_inputs=(), **attrs):
    """One ONNX recurrent node with random weights, inputs X [, sequence_lens], output Y (T, nd, B, H)."""
    rng = rng or np.random.default_rng(0)
    G = GATES[op]
    inits = [init("W", rng.uniform(-.5, .5, (nd, G * H, D))), init("R", rng.uniform(-.5, .5, (nd, G * H, H)))]
    ins = ["X", "W", "R"]
    if bias:
        inits.append(init("B", rng.uniform(-.5, .5, (nd, 2 * G * H))))
    ins.append("B" if bias else "")
    ins.append("sequence_lens" if lens else "")
    ins.extend(extra_inputs)
    if op == "GRU":
        attrs.setdefault("linear_before_reset", 1)
    node = helper.make_node(op, ins, ["Y", "Y_h"], name="rec0", hidden_size=H,
                            direction="bidirectional" if nd == 2 else "forward", **attrs)
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", D])]
    if lens:
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]))
    if "P" in extra_inputs:
        inits.append(init("P", np.zeros((nd, 3 * H))))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", nd, "B", H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def runtime(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def as_rnnkit(y):
    """ONNX Y (T, nd, B, H) -> rnnkit's (T, B, nd*H)."""
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)


CASES = [("LSTM", 1, True, {}), ("LSTM", 2, True, {}), ("GRU", 2, True, {}), ("GRU", 1, False, {}),
         ("RNN", 2, True, {"activations": ["Relu", "Relu"]}), ("RNN", 1, True, {})]


@pytest.mark.parametrize("op,nd,bias,attrs", CASES, ids=[f"{c[0]}-nd{c[1]}-b{int(c[2])}" for c in CASES])
@pytest.mark.parametrize("lens", [False, True], ids=["full", "lens"])
def test_random_graph_imports_to_runtime_outputs(tmp_path, op, nd, bias, attrs, lens):
    rng = np.random.default_rng(1)
    path = recurrent_graph(tmp_path / "g.onnx", op, nd, bias, lens, rng, **attrs)
    layer = import_onnx(path)
    assert type(layer) is {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}[op]
    assert (layer.num_directions, layer.hidden_size, layer.input_size, layer.bias) == (nd, H, D, bias)
    for Bn in (1, B):
        x = rng.standard_normal((T, Bn, D)).astype(np.float32)
        lengths = np.r_[T, rng.integers(1, T + 1, Bn - 1)].astype(np.int32)
        feeds = {"X": x, **({"sequence_lens": lengths} if lens else {})}
        want = as_rnnkit(runtime(path, feeds)[0])
        got = layer.forward(x, lengths=lengths if lens else None)[0]
        err = np.abs(got - want).max()
        assert err < 1e-5, f"{op} nd={nd} B={Bn}: {err:.2e} from ONNX Runtime"


def test_own_exports_import_back(tmp_path):
    for model in (LSTM(3, 5, num_layers=2, bidirectional=True, seed=1), RNN(3, 5, nonlinearity="relu", bias=False),
                  RNNLanguageModel(10, 4, 6, num_layers=2, cell="gru", seed=2),
                  CTCModel(4, 7, "lstm", hidden=5, layers=2, bidirectional=True, seed=3),
                  SequenceNet(3, 4, "gru", 5, num_layers=2, bidirectional=True, pooling="last", vocab_size=11,
                              embedding_dim=6, seed=4)):
        back = import_onnx(export_onnx(model, tmp_path / "m.onnx"))
        assert type(back) is type(model)
        assert set(back.params) == set(model.params)
        for k, v in model.params.items():
            np.testing.assert_array_equal(back.params[k], v, err_msg=k)
    assert back.pooling == "last"
    mean = SequenceNet(3, 4, "lstm", 5, pooling="mean", seed=5)
    with pytest.raises(UserError, match="has no rnnkit counterpart"):
        import_onnx(export_onnx(mean, tmp_path / "mean.onnx"))


@pytest.mark.parametrize("attrs,extra,needle", [
    ({"clip": 3.0}, (), "clip"),
    ({"input_forget": 1}, (), "input_forget"),
    ({"activations": ["HardSigmoid", "Tanh", "Tanh"]}, (), "activations"),
    ({"direction": "reverse"}, (), "reverse"),
    ({"layout": 1}, (), "layout=1"),
    ({}, ("", "", "P"), "peephole"),
], ids=["clip", "input_forget", "activations", "reverse", "layout", "peephole"])
def test_lstm_features_rnnkit_lacks_are_refused_by_name(tmp_path, attrs, extra, needle):
    direction = attrs.pop("direction", None)
    path = recurrent_graph(tmp_path / "g.onnx", "LSTM", extra_inputs=extra, **attrs)
    if direction:
        m = onnx.load(str(path))
        for a in m.graph.node[0].attribute:
            if a.name == "direction":
                a.s = direction.encode()
        onnx.save(m, str(path))
    with pytest.raises(UserError, match=needle) as e:
        import_onnx(path)
    assert "'rec0'" in str(e.value)


def test_weights_that_do_not_fit_hidden_size_are_refused(tmp_path):
    path = recurrent_graph(tmp_path / "g.onnx", "GRU")
    m = onnx.load(str(path))
    for a in m.graph.node[0].attribute:
        if a.name == "hidden_size":
            a.i = H + 1
    onnx.save(m, str(path))
    with pytest.raises(UserError, match="'rec0'.*do not fit hidden_size=5"):
        import_onnx(path)


def test_gru_linear_before_reset_0_is_refused(tmp_path):
    path = recurrent_graph(tmp_path / "g.onnx", "GRU", linear_before_reset=0)
    with pytest.raises(UserError, match="'rec0'.*linear_before_reset=0"):
        import_onnx(path)


def test_unsupported_operator_and_other_files_are_refused(tmp_path):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"], name="act")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "relu.onnx"))
    with pytest.raises(UserError, match="'act'.*Relu"):
        import_onnx(tmp_path / "relu.onnx")
    (tmp_path / "fake.onnx").write_bytes(b"PK\x03\x04 not protobuf")
    with pytest.raises(UserError, match="not a valid ONNX model"):
        import_onnx(tmp_path / "fake.onnx")
    with pytest.raises(UserError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx")


def test_hand_built_language_model_graph(tmp_path):
    """Gather -> LSTM -> Squeeze -> MatMul -> Add, as another exporter would write it: an RNNLanguageModel."""
    rng = np.random.default_rng(4)
    V, E = 9, 5
    inits = [init("emb", rng.standard_normal((V, E))), init("W", rng.uniform(-.5, .5, (1, 4 * H, E))),
             init("R", rng.uniform(-.5, .5, (1, 4 * H, H))), init("Bias", rng.uniform(-.5, .5, (1, 8 * H))),
             init("Wout", rng.standard_normal((H, V))), init("bout", rng.standard_normal(V)),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"], name="lookup"),
             helper.make_node("LSTM", ["e", "W", "R", "Bias"], ["Y"], name="lstm", hidden_size=H),
             helper.make_node("Squeeze", ["Y", "axis1"], ["h"], name="squeeze"),
             helper.make_node("MatMul", ["h", "Wout"], ["z"], name="proj"),
             helper.make_node("Add", ["bout", "z"], ["logits"], name="bias")]
    graph = helper.make_graph(nodes, "lm", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["T", "B"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["T", "B", V])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "lm.onnx"))
    lm = import_onnx(tmp_path / "lm.onnx")
    assert isinstance(lm, RNNLanguageModel) and (lm.vocab_size, lm.embed_dim, lm.hidden_size) == (V, E, H)
    ids = rng.integers(0, V, (T, B))
    err = np.abs(lm.forward(ids)[0] - runtime(tmp_path / "lm.onnx", {"ids": ids})[0]).max()
    assert err < 1e-5, f"logits: {err:.2e} from ONNX Runtime"


def test_constant_initial_state_is_refused(tmp_path):
    """A constant initial_h would be dropped silently by a layer that takes its state as an input."""
    path = recurrent_graph(tmp_path / "g.onnx", "GRU")
    m = onnx.load(str(path))
    node = m.graph.node[0]
    while len(node.input) < 6:
        node.input.append("")
    node.input[5] = "h0const"
    m.graph.initializer.append(init("h0const", np.ones((1, 1, H))))
    onnx.save(m, str(path))
    with pytest.raises(UserError, match="'rec0'.*constant initial_h"):
        import_onnx(path)
