"""`export_onnx(model, path)`: an rnnkit layer or task model as an ONNX graph for ONNX Runtime.

Every export uses ONNX's own `LSTM`/`GRU`/`RNN` operators (`onnx_graph.recurrent`), float32, dynamic
batch and time axes, time-major, opset `onnx_graph.OPSET`, and passes `onnx.checker` with full shape
inference before anything is written; the file is written to a temporary name and renamed. What each
model's graph takes and gives:

    layer            X (T, B, D) [, sequence_lens (B,) int32] [, h0 (L*nd, B, H) [, c0]]
                     -> Y (T, B, nd*H) = layer.forward(x, state, lengths)[0], h_n [, c_n]
    RNNLanguageModel ids (T, B) int64, h0 (L, B, H) [, c0] -> logits (T, B, V), h_n [, c_n]
                     (T = 1 with the returned state fed back is one generation step)
    SequenceNet      x: ids (T, B) int64 or features (T, B, D), sequence_lens (B,) int32 -> logits (B, O)
                     (classifier; the forecaster's network takes no sequence_lens: its windows are full)
    CTCModel         x (T, B, D), sequence_lens (B,) int32 -> logits (T, B, C)
    Seq2Seq          part="encoder": src (S, B) int64, src_len (B,) int32 -> enc_out (S, B, H), h0 [, c0]
                     part="decoder_step": tokens (B,) int64, h (L, B, H) [, c], enc_out, src_len
                     -> logprobs (B, V), h_new [, c_new]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..layers import Module
from ..layers.recurrent import RECURRENT_LAYERS
from ._common import cell_of, write_atomic
from .onnx_graph import Graph, embedding, f32, i32, i64, linear, recurrent, time_mask


def _state_io(g: Graph, layer, rows: int, prefix: str = "") -> tuple[str, str]:
    """Graph inputs for an initial state (h0, and c0 for LSTM) of (rows, B, H)."""
    dims = [rows, "B", layer.hidden_size]
    h0 = g.input(f"{prefix}h0", f32(), dims)
    c0 = g.input(f"{prefix}c0", f32(), dims) if cell_of(layer) == "lstm" else ""
    return h0, c0


def _state_out(g: Graph, layer, rows: int, h: str, c, names=("h_n", "c_n")) -> None:
    dims = [rows, "B", layer.hidden_size]
    g.output(names[0], h, f32(), dims)
    if c:
        g.output(names[1], c, f32(), dims)


def _export_layer(layer, sequence_lens: bool = False, initial_state: bool = False):
    g = Graph(f"rnnkit_{cell_of(layer)}")
    nd, L = layer.num_directions, layer.num_layers
    x = g.input("X", f32(), ["T", "B", layer.input_size])
    lens = g.input("sequence_lens", i32(), ["B"]) if sequence_lens else ""
    h0, c0 = _state_io(g, layer, L * nd) if initial_state else ("", "")
    y, h, c, _ = recurrent(g, layer, x, lens, h0, c0)
    g.output("Y", y, f32(), ["T", "B", nd * layer.hidden_size])
    _state_out(g, layer, L * nd, h, c)
    return g


def _export_lm(model):
    rnn = model.rnn
    g = Graph("rnnkit_language_model")
    ids = g.input("ids", i64(), ["T", "B"])
    h0, c0 = _state_io(g, rnn, rnn.num_layers)
    y, h, c, _ = recurrent(g, rnn, embedding(g, model.embedding, ids), "", h0, c0)
    g.output("logits", linear(g, model.head, y), f32(), ["T", "B", model.head.out_features])
    _state_out(g, rnn, rnn.num_layers, h, c)
    return g


def _pool(g: Graph, net, y: str, yh: str, lengths: str, mode: str | None = None) -> str:
    """The pooled (B, F) vector of `tasks.heads.pool_forward` from the outputs y (T, B, F); a mode of
    k parts (max+mean, concat) is their (B, k*F) concatenation."""
    from ..layers.heads import pooling_parts

    parts = pooling_parts(net.pooling if mode is None else mode)
    if len(parts) > 1:
        return g.op("Concat", [_pool(g, net, y, yh, lengths, p) for p in parts], axis=1)
    mode = parts[0]
    if mode == "last":                      # each direction's final state: ONNX's Y_h
        return g.op("Reshape", [g.op("Transpose", [yh], perm=[1, 0, 2]),
                                g.const(np.array([0, -1], np.int64), "shape")])      # (B, nd*H)
    if not lengths:
        return g.op("ReduceMean" if mode == "mean" else "ReduceMax", [y], axes=[0], keepdims=0)
    valid = time_mask(g, y, lengths)                                                  # (T, B, 1)
    if mode == "mean":
        total = g.op("ReduceSum", [g.op("Mul", [y, g.op("Cast", [valid], to=f32())]),
                                   g.const(np.array([0], np.int64), "axes")], keepdims=0)
        n = g.op("Unsqueeze", [g.op("Cast", [lengths], to=f32()), g.const(np.array([1], np.int64), "ax")])
        return g.op("Div", [total, n])
    masked = g.op("Where", [valid, y, g.const(np.array(-np.inf, np.float32), "neg_inf")])
    return g.op("ReduceMax", [masked], axes=[0], keepdims=0)


def _export_seqnet(net, sequence_lens: bool = True):
    g = Graph("rnnkit_sequence_net")
    if net.embed is not None:
        x = embedding(g, net.embed, g.input("x", i64(), ["T", "B"]))
    else:
        x = g.input("x", f32(), ["T", "B", net.rnn.input_size])
    lens = g.input("sequence_lens", i32(), ["B"]) if sequence_lens else ""
    y, _, _, yh = recurrent(g, net.rnn, x, lens)
    out = linear(g, net.head, _pool(g, net, y, yh, lens))
    g.output("logits", out, f32(), ["B", net.head.out_features])
    return g


def _export_ctc(model):
    g = Graph("rnnkit_ctc")
    x = g.input("x", f32(), ["T", "B", model.rnn.input_size])
    lens = g.input("sequence_lens", i32(), ["B"])
    y, _, _, _ = recurrent(g, model.rnn, x, lens)
    g.output("logits", linear(g, model.out, y), f32(), ["T", "B", model.out.out_features])
    return g


def _export_seq2seq(model, part: str | None = None):
    if part == "encoder":
        return _seq2seq_encoder(model)
    if part == "decoder_step":
        return _seq2seq_decoder_step(model)
    raise ValueError(f"a Seq2Seq model exports in two parts: part='encoder' or part='decoder_step', got {part!r}")


def _seq2seq_encoder(model):
    enc, L, nd = model.encoder, model.layers, model.nd
    g = Graph("rnnkit_seq2seq_encoder")
    src = g.input("src", i64(), ["S", "B"])
    lens = g.input("src_len", i32(), ["B"])
    y, h, c, _ = recurrent(g, enc, embedding(g, model.src_emb, src), lens)
    g.output("enc_out", y, f32(), ["S", "B", nd * enc.hidden_size])
    dims = [L, "B", nd * enc.hidden_size]
    for name, s in (("h0", h), ("c0", c)):
        if s:                                       # `seq2seq.bridge`: (L*nd, B, h) -> (L, B, nd*h)
            s = g.op("Reshape", [s, g.const(np.array([L, nd, -1, enc.hidden_size], np.int64), "shape")])
            s = g.op("Transpose", [s], perm=[0, 2, 1, 3])
            g.output(name, g.op("Reshape", [s, g.const(np.array([0, 0, -1], np.int64), "shape")]), f32(), dims)
    return g


def _seq2seq_decoder_step(model):
    dec = model.decoder
    H, L = dec.hidden_size, dec.num_layers
    g = Graph("rnnkit_seq2seq_decoder_step")
    tokens = g.input("tokens", i64(), ["B"])
    h0, c0 = _state_io(g, dec, L)
    enc_out = g.input("enc_out", f32(), ["S", "B", H])
    src_len = g.input("src_len", i32(), ["B"])
    ax0 = g.const(np.array([0], np.int64), "ax")
    e = embedding(g, model.tgt_emb, g.op("Unsqueeze", [tokens, ax0]))               # (1, B, E)
    y, h, c, _ = recurrent(g, dec, e, "", h0, c0)                                   # (1, B, H)
    if model.attention is not None:
        y = _attention(g, model.attention, y, enc_out, src_len)
    logits = g.op("Squeeze", [linear(g, model.out, y), ax0])                        # (B, V)
    g.output("logprobs", g.op("LogSoftmax", [logits], axis=-1), f32(), ["B", model.out.out_features])
    _state_out(g, dec, L, h, c, ("h_new", "c_new"))
    return g


def _attention(g: Graph, att, y: str, enc_out: str, src_len: str) -> str:
    """`layers.attention.attention_forward` for one step: y (1, B, H), enc_out (S, B, E) -> (1, B, H)."""
    p = att.params
    k = g.op("MatMul", [enc_out, g.const(p["weight_score"].T, "W_score_T")]) if "weight_score" in p else enc_out
    score = g.op("MatMul", [g.op("Transpose", [y], perm=[1, 0, 2]),                  # (B, 1, H)
                            g.op("Transpose", [k], perm=[1, 2, 0])])                 # (B, H, S) -> (B, 1, S)
    valid = time_mask(g, enc_out, src_len)                                            # (S, B, 1)
    valid = g.op("Transpose", [valid], perm=[1, 2, 0])                                # (B, 1, S)
    score = g.op("Where", [valid, score, g.const(np.array(-np.inf, np.float32), "neg_inf")])
    a = g.op("Softmax", [score], axis=-1)                                             # (B, 1, S)
    ctx = g.op("MatMul", [a, g.op("Transpose", [enc_out], perm=[1, 0, 2])])          # (B, 1, E)
    z = g.op("Concat", [g.op("Transpose", [ctx], perm=[1, 0, 2]), y], axis=-1)       # (1, B, E + H)
    return g.op("Tanh", [g.op("MatMul", [z, g.const(p["weight_combine"].T, "W_combine_T")])])


def _exporters() -> dict:
    """Model class -> graph builder: the registry `export_onnx` dispatches on (most specific first)."""
    from ..models.language_model import RNNLanguageModel
    from ..models.seq2seq import Seq2Seq
    from ..tasks.seqnet import SequenceNet
    from ..tasks.speech import CTCModel

    table = {cls: _export_layer for cls in RECURRENT_LAYERS.values()}
    table.update({RNNLanguageModel: _export_lm, SequenceNet: _export_seqnet, CTCModel: _export_ctc,
                  Seq2Seq: _export_seq2seq})
    return table


def export_onnx(model: Module, path, metadata: dict | None = None, **options) -> Path:
    """Write `model` (a recurrent layer or a task model, see the module docstring) to the ONNX file
    `path`; `options`: sequence_lens/initial_state (layers), sequence_lens (SequenceNet), part (Seq2Seq).
    `metadata` (str -> JSON-able) goes into the model's metadata_props. Returns the path."""
    for cls, build in _exporters().items():
        if type(model) is cls:
            break
    else:
        raise UserError(f"{type(model).__name__} has no ONNX export; rnnkit exports recurrent layers, "
                        "language models, sequence nets, CTC models and seq2seq models")
    try:
        g = build(model, **options)
    except TypeError as e:
        raise TypeError(f"export_onnx({type(model).__name__}): {e}") from None
    return write_atomic(path, g.model(metadata).SerializeToString())
