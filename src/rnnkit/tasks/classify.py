"""`SequenceClassifier`: many-to-one classification of token sequences or numeric sequences.

A scikit-learn estimator (Pedregosa et al. 2011 conventions): `__init__` only stores its arguments,
`fit(X, y)` validates, builds the vocabulary or the feature scaling, trains and returns `self`; learned
attributes end in `_`. scikit-learn is not needed to import or use it; when it is installed the class
also inherits `BaseEstimator`/`ClassifierMixin`, so `clone`, `Pipeline` and `GridSearchCV` work.

Input X, one of:
  * a list of strings: tokenised into words (`tokenizer="word"`) or characters (`"char"`); the vocabulary
    is built in `fit` (id 0 padding, id 1 unknown);
  * a list of arrays (T_i, D) (or (T_i,)) of different lengths;
  * a numeric array (N, T, D), or (N, T) read as N univariate sequences of length T.
Batches are padded internally and the recurrent layer gets their `lengths`, so padding never changes a
prediction. Numeric features are standardised with the training set's per-feature mean and std.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..data.tables import check_sequences
from ..errors import UserError
from .fitting import run_training
from ..layers.heads import pooling_parts, weighted_cross_entropy
from .persist import Persist
from ..models.ensemble import Ensemble
from ..models.sequence_net import CELLS, SequenceNet


# Parameters left at None take the value of the input's recipe. Text: what measured best on small
# sentiment sets (docs/readme/apps.md, benchmarks/sentiment_study.py); numeric sequences: the values these
# parameters had before text got its own recipe.
TEXT_DEFAULTS = dict(cell="gru", hidden_size=32, bidirectional=True, pooling="max+mean", epochs=8, lr=1e-3,
                     batch_size=16, validation_split=0.0, ensemble=5, embedding_dropout=0.0, input_dropout=0.0,
                     output_dropout=0.0, pretrain_epochs=0, embedding_std=0.1)
SEQUENCE_DEFAULTS = dict(cell="lstm", hidden_size=32, bidirectional=False, pooling="last", epochs=20, lr=0.01,
                         batch_size=32, validation_split=0.0, ensemble=1, embedding_dropout=0.0,
                         input_dropout=0.0, output_dropout=0.0, pretrain_epochs=0, embedding_std=0.1)

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
TOKENIZERS = {"word": lambda s: _WORD.findall(s), "char": list}
PAD, UNK = 0, 1


def _member_dir(run_dir, k: int, n: int):
    """Where member k of n keeps its checkpoint: the run folder itself for one network, else
    run_dir/members/k (None without a folder)."""
    if run_dir is None:
        return None
    return Path(run_dir) if n == 1 else Path(run_dir) / "members" / str(k)


class _ParamsMixin:
    """get_params/set_params from the `__init__` signature, for use without scikit-learn."""

    @classmethod
    def _get_param_names(cls):
        import inspect

        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep=True):
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}; valid: {valid}")
            setattr(self, k, v)
        return self


def _estimator_bases(mixin: str) -> tuple:
    """(sklearn's `mixin`, BaseEstimator) when scikit-learn is installed, else our `_ParamsMixin`."""
    try:  # optional: real sklearn bases make clone/Pipeline/GridSearchCV/tags work natively
        import sklearn.base as skb
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        return (_ParamsMixin,)
    return (getattr(skb, mixin), skb.BaseEstimator)


class SequenceClassifier(Persist, *_estimator_bases("ClassifierMixin")):
    """RNN classifier over whole sequences.

    Parameters: cell ("lstm"|"gru"|"rnn"), hidden_size, num_layers, bidirectional, pooling
    ("last"|"mean"|"max", "concat" = last+max+mean, or basic ones joined by "+"), embedding_dim (token
    input), tokenizer ("word"|"char"), lowercase, max_vocab, min_count, class_weight (None | "balanced" |
    {label: weight}), validation_split (fraction held out for early stopping, 0 for none), patience,
    epochs, batch_size, lr, optimizer, clip, time_budget (seconds, per network), dropout (between
    layers), standardize (numeric input), seed, dtype, train_config (a `rnnkit.train.TrainConfig` or
    dict; overrides epochs, lr, ... when given).
    Text input: embeddings (a GloVe/word2vec text file: its vectors initialise the embedding, whose width
    it sets), embedding_std (std of the rows it does not cover), pretrain_epochs (language-model
    pretraining, ULMFiT; `tasks.pretrain`), pretrain_text (more text for it: a file or a list of strings),
    embedding_dropout (word types), input_dropout (variational, on the embedded words), output_dropout (on
    the pooled vector), weight_drop (on W_hh). ensemble: N networks with seeds seed..seed+N-1 (own
    initialisation, validation split and batch order), probabilities averaged.
    A parameter left at None takes the recipe of the input seen in `fit`: `TEXT_DEFAULTS` for strings,
    `SEQUENCE_DEFAULTS` for numeric sequences.

    Learned: classes_, vocab_ (token input, else None), n_features_in_, model_ (a `SequenceNet`, or an
    `Ensemble` of them), history_, n_iter_, embedding_dim_, embeddings_found_ (with embeddings).
    `save(dir)` / `SequenceClassifier.load(dir)` store and restore a fitted classifier.
    """

    _LEARNED_ARRAYS = ("mean_", "std_")
    _LEARNED_JSON = ("classes_", "vocab_", "input_kind_", "table_input_", "n_features_in_", "input_size_",
                     "embedding_dim_")

    def __init__(self, cell=None, hidden_size=None, num_layers=1, bidirectional=None, pooling=None,
                 embedding_dim=32, tokenizer="word", lowercase=True, max_vocab=20000, min_count=1,
                 class_weight=None, validation_split=None, patience=5, epochs=None, batch_size=None, lr=None,
                 optimizer="adam", clip=5.0, time_budget=None, dropout=0.0, standardize=True, seed=0,
                 dtype="float32", train_config=None, embeddings=None, pretrain_epochs=None, pretrain_text=None,
                 ensemble=None, embedding_dropout=None, input_dropout=None, output_dropout=None, weight_drop=0.0,
                 embedding_std=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.embedding_dim = embedding_dim
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.max_vocab = max_vocab
        self.min_count = min_count
        self.class_weight = class_weight
        self.validation_split = validation_split
        self.patience = patience
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.clip = clip
        self.time_budget = time_budget
        self.dropout = dropout
        self.standardize = standardize
        self.seed = seed
        self.dtype = dtype
        self.train_config = train_config
        self.embeddings = embeddings
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_text = pretrain_text
        self.ensemble = ensemble
        self.embedding_dropout = embedding_dropout
        self.input_dropout = input_dropout
        self.output_dropout = output_dropout
        self.weight_drop = weight_drop
        self.embedding_std = embedding_std

    def _setting(self, name: str):
        """The parameter's value, or the input's recipe value when it is None (TEXT_/SEQUENCE_DEFAULTS)."""
        v = getattr(self, name)
        if v is not None:
            return v
        text = getattr(self, "input_kind_", None) == "text"
        return (TEXT_DEFAULTS if text else SEQUENCE_DEFAULTS).get(name)

    # -- input handling ------------------------------------------------------------------------------
    def _tokens(self, s: str) -> list[str]:
        return TOKENIZERS[self.tokenizer](s.lower() if self.lowercase else s)

    def _is_text(self, X) -> bool:
        return (not isinstance(X, np.ndarray) or X.dtype.kind in "OUS") and len(X) > 0 and \
            all(isinstance(x, str) for x in X)

    @staticmethod
    def _as_input(X):
        """Refuse sparse, complex and 1-D numeric input; turn array-likes without len() into arrays."""
        if X is None:
            raise ValueError("X is None; give a list of sequences or strings")
        if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("sparse input is not supported: pass dense sequences (a list of (T, D) arrays)")
        if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas: rows are the sequences
            X = X.to_numpy()
        if not hasattr(X, "__len__") and hasattr(X, "__array__"):
            X = np.asarray(X)
        if isinstance(X, np.ndarray):
            if np.iscomplexobj(X):
                raise ValueError("Complex data not supported")
            if X.ndim == 1 and X.dtype.kind in "biuf":
                raise ValueError("Expected a 2D array (N sequences of T steps) or a list of sequences, got "
                                 "a 1D array: Reshape your data with X.reshape(1, -1) for one sequence")
            if X.ndim == 2 and X.shape[1] == 0:
                raise ValueError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        return X

    def _encode(self, X) -> list[np.ndarray]:
        """Sequences as arrays: ids (T_i,) for text, standardised floats (T_i, D) otherwise."""
        X = self._as_input(X)
        if self.input_kind_ == "text":
            if not self._is_text(X):
                raise ValueError("this classifier was fitted on strings; X must be a list of strings")
            seqs = [np.array([self.vocab_.get(t, UNK) for t in self._tokens(s)] or [UNK]) for s in X]
            return seqs
        if len(X) > 0 and self._is_text(X):
            raise ValueError("this classifier was fitted on numeric sequences; got strings")
        seqs = check_sequences(X)
        if self.table_input_ and seqs[0].shape[0] != self.n_features_in_:
            raise ValueError(f"X has {seqs[0].shape[0]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        if not self.table_input_ and seqs[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {seqs[0].shape[1]} features per step, but {type(self).__name__} "
                             f"was fitted with {self.n_features_in_}")
        return [((s - self.mean_) / self.std_) for s in seqs]

    def _pretrain_sentences(self) -> list:
        """The extra text for language-model pretraining as a list of strings (one per line)."""
        src = self.pretrain_text
        if src is None:
            return []
        if isinstance(src, (str, Path)):
            path = Path(src)
            if not path.is_file():
                raise UserError(f"no such pretraining text file: {path}")
            try:
                return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            except UnicodeDecodeError as e:
                raise UserError(f"{path}: the pretraining text is not UTF-8 ({e.reason} at byte {e.start})") from None
        if not all(isinstance(t, str) for t in src):
            raise ValueError("pretrain_text must be a file path or a list of strings")
        return list(src)

    def _check_text_options(self, X):
        if not self._is_text(X):
            if self.embeddings is not None or self.pretrain_text is not None:
                raise UserError("embeddings and pretrain_text are for text input; X holds numeric sequences")

    def _fit_input(self, X, extra=()):
        """Learn the vocabulary (from X and the extra pretraining text) or the scaling; sets input_kind_,
        n_features_in_. Extra text widens the vocabulary: its words get embeddings from pretraining."""
        if self._is_text(X):
            if self.tokenizer not in TOKENIZERS:
                raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}")
            counts = Counter(t for s in [*X, *extra] for t in self._tokens(s))
            kept = [t for t, c in counts.most_common(self.max_vocab) if c >= self.min_count]
            self.vocab_ = {t: i + 2 for i, t in enumerate(kept)}
            self.input_kind_, self.table_input_ = "text", False
            self.n_features_in_ = 1
            self.mean_, self.std_ = np.zeros(1), np.ones(1)
            return
        if isinstance(X, np.ndarray) and X.dtype.kind == "O" and X.ndim == 1:
            X = list(X)
        self.table_input_ = isinstance(X, np.ndarray) and X.ndim == 2
        seqs = check_sequences(X)
        self.vocab_, self.input_kind_ = None, "sequence"
        self.n_features_in_ = seqs[0].shape[0] if self.table_input_ else seqs[0].shape[1]
        allv = np.concatenate(seqs)
        self.mean_ = allv.mean(0) if self.standardize else np.zeros(allv.shape[1])
        std = allv.std(0) if self.standardize else np.ones(allv.shape[1])
        self.std_ = np.where(std > 0, std, 1.0)

    def _batch(self, seqs, idx):
        """Pad seqs[idx] into a time-major batch: ids (T, B) or x (T, B, D), and lengths (B,)."""
        lengths = np.array([len(seqs[i]) for i in idx])
        T = int(lengths.max())
        if self.input_kind_ == "text":
            x = np.full((T, len(idx)), PAD, dtype=np.int64)
            for b, i in enumerate(idx):
                x[:lengths[b], b] = seqs[i]
        else:
            x = np.zeros((T, len(idx), seqs[idx[0]].shape[1]), dtype=np.dtype(self.dtype))
            for b, i in enumerate(idx):
                x[:lengths[b], b] = seqs[i]
        return x, lengths

    # -- sklearn API ---------------------------------------------------------------------------------
    def _check_options(self):
        if self._setting("cell") not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self._setting('cell')!r}")
        pooling_parts(self._setting("pooling"))  # raises ValueError naming the choices
        n = self._setting("ensemble")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"ensemble must be a positive integer, got {self.ensemble!r}")
        if not 0.0 <= float(self._setting("validation_split")) < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {self._setting('validation_split')!r}")

    def fit(self, X, y, out_dir=None, resume=None):
        """Train on sequences X and labels y (any hashable labels, at least two classes).
        `out_dir`: the Trainer's checkpoint folder; `resume`: a folder to continue training from."""
        X = self._as_input(X)
        if len(X) == 0:
            raise UserError("X is empty: give at least one sequence")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            import warnings

            try:
                from sklearn.exceptions import DataConversionWarning as _W
            except ImportError:  # pragma: no cover
                _W = UserWarning
            warnings.warn("A column-vector y was passed when a 1d array was expected", _W)
            y = y.ravel()
        if y.dtype.kind == "f" and np.isfinite(y).all() and np.any(y != np.round(y)):
            raise ValueError("Unknown label type: continuous; a classifier needs class labels")
        if y.ndim != 1 or y.shape[0] != len(X):
            raise ValueError(f"y must be 1-D with one label per sequence ({len(X)}), got shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinity")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise UserError(f"the labels have only one class ({self.classes_[0]!r}); a classifier needs "
                            "at least two")
        self._check_text_options(X)
        extra = self._pretrain_sentences()
        self._fit_input(X, extra)
        self._check_options()  # after the input kind is known: None settings come from its recipe
        seqs = self._encode(X)
        extra = self._encode(extra) if extra else []  # ids of the pretraining text
        self.input_size_ = 1 if self.input_kind_ == "text" else int(seqs[0].shape[1])
        self.embedding_dim_ = int(self.embedding_dim)
        vectors = None
        if self.input_kind_ == "text" and self.embeddings is not None:
            from ..data.embeddings import embedding_matrix, read_word_vectors

            wv = read_word_vectors(self.embeddings, keep=self.vocab_, lowercase=bool(self.lowercase))
            vectors, self.embeddings_found_ = embedding_matrix(self.vocab_, wv, len(self.vocab_) + 2, self.seed)
            self.embedding_dim_ = wv.dim
        weights = self._class_weights(y_idx)
        n_members = int(self._setting("ensemble"))
        members, histories = [], []
        for k in range(n_members):
            m_resume = _member_dir(resume, k, n_members)
            if m_resume is not None and n_members > 1 and not (m_resume / "checkpoint").exists():
                m_resume = None  # this member had not started when the run stopped
            net, history = self._fit_member(seqs, y_idx, weights, self._member_seed(k), vectors, extra,
                                            _member_dir(out_dir, k, n_members), m_resume)
            members.append(net)
            histories.append(history)
        self.model_ = members[0] if n_members == 1 else Ensemble(members)
        self.history_ = histories[0] if n_members == 1 else {
            "members": histories, "epochs_run": sum(h["epochs_run"] for h in histories),
            "steps": sum(h["steps"] for h in histories), "seconds": sum(h["seconds"] for h in histories)}
        self.n_iter_ = self.history_["epochs_run"]
        return self

    def _member_seed(self, k: int):
        return None if self.seed is None else int(self.seed) + k

    def _fit_member(self, seqs, y_idx, weights, seed, vectors, extra, out_dir, resume):
        """Build, initialise (pretrained vectors, language-model pretraining) and train one network; member
        k of an ensemble gets seed + k: its own initialisation, validation split and batch order."""
        net = self._build_net(seed)
        order = np.random.default_rng(seed).permutation(len(seqs))
        n_val = int(round(float(self._setting("validation_split")) * len(seqs)))
        val, tr = order[:n_val], order[n_val:]
        if len(tr) == 0:
            raise UserError("validation_split leaves no training sequences")
        if resume is None:  # a resumed run gets its weights from the checkpoint
            self._initialise(net, [seqs[i] for i in tr] + extra, seed, vectors)
        bs = max(1, int(self._setting("batch_size")))

        def train_batches(epoch, rng):
            perm = rng.permutation(tr)
            for s in range(0, len(perm), bs):
                yield perm[s:s + bs]

        def train_step(idx):
            x, lengths = self._batch(seqs, idx)
            logits = net.forward(x, lengths)
            loss, dlogits = weighted_cross_entropy(logits, y_idx[idx], weights)
            net.backward(dlogits, input_grad=False)
            return loss, len(idx)

        def eval_fn():
            losses = [weighted_cross_entropy(self._logits(seqs, val[s:s + 256], net), y_idx[val[s:s + 256]],
                                             weights)[0] * len(val[s:s + 256]) for s in range(0, len(val), 256)]
            return float(np.sum(losses) / len(val))

        history = run_training(self, net, train_batches, train_step, eval_fn if n_val > 0 else None,
                               -(-len(tr) // bs), out_dir, resume=resume, seed=seed)
        return net, history

    def _initialise(self, net, sentences, seed, vectors):
        """Pretrained word vectors into the embedding, then (text input, pretrain_epochs > 0) the
        language models' weights into the embedding and recurrent layer (ULMFiT, see `tasks.pretrain`)."""
        if net.embed is None:
            return
        if vectors is not None:
            net.embed.params["weight"][...] = vectors
        else:  # N(0, std^2) rows: torch's N(0, 1) saturated the GRU on small text sets
            net.embed.params["weight"][...] *= float(self._setting("embedding_std"))
        epochs = int(self._setting("pretrain_epochs") or 0)
        if epochs <= 0:
            return
        from .pretrain import pretrain_language_model, transfer

        V, E = len(self.vocab_) + 2, self.embedding_dim_
        common = dict(vocab_size=V, embed_dim=E, hidden_size=self._setting("hidden_size"),
                      num_layers=self.num_layers, cell=self._setting("cell"), epochs=epochs,
                      batch_size=int(self._setting("batch_size")), lr=float(self._setting("lr")),
                      dtype=np.dtype(self.dtype))
        # the LM starts from the classifier's embedding (the vectors, or rows of std embedding_std): from
        # the LM's own N(0, 1) rows the transferred table kept that scale and cost 9 points
        fwd = pretrain_language_model(sentences, seed=seed, embedding=net.embed.params["weight"].copy(), **common)
        transfer(fwd, net)
        if self._setting("bidirectional"):
            bwd = pretrain_language_model(sentences, seed=None if seed is None else seed + 10_000, reverse=True,
                                          embedding=fwd.embedding.params["weight"], freeze_embedding=True,
                                          **common)
            transfer(bwd, net, reverse=True, embedding=False)

    def _build_model(self):
        """The fitted structure (for `load`): one network, or an `Ensemble` of `ensemble` networks."""
        n = int(self._setting("ensemble"))
        return self._build_net(self.seed) if n == 1 else Ensemble([self._build_net(self._member_seed(k))
                                                                   for k in range(n)])

    def _build_net(self, seed) -> SequenceNet:
        return SequenceNet(
            input_size=self.input_size_, output_size=len(self.classes_), cell=self._setting("cell"),
            hidden_size=self._setting("hidden_size"), num_layers=self.num_layers,
            bidirectional=self._setting("bidirectional"), pooling=self._setting("pooling"),
            vocab_size=len(self.vocab_) + 2 if self.input_kind_ == "text" else None,
            embedding_dim=self.embedding_dim_, dropout=self.dropout, dtype=np.dtype(self.dtype), seed=seed,
            embedding_dropout=self._setting("embedding_dropout"), input_dropout=self._setting("input_dropout"),
            output_dropout=self._setting("output_dropout"), weight_drop=self.weight_drop)

    def _restore_learned(self):
        self.classes_ = np.asarray(self.classes_)
        if not hasattr(self, "embedding_dim_"):  # saved before pretrained vectors could set the width
            self.embedding_dim_ = int(self.embedding_dim)

    def _saved_sizes(self) -> dict:
        text = self.input_kind_ == "text"
        return {"hidden": self._setting("hidden_size"), "layers": self.num_layers,
                "input_width": self.input_size_,
                "embedding_width": self.embedding_dim_ if text else None,
                "vocabulary_size": len(self.vocab_) + 2 if text else None}

    def _class_weights(self, y_idx):
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
            counts = np.bincount(y_idx, minlength=len(self.classes_))
            return len(y_idx) / (len(self.classes_) * np.maximum(counts, 1))
        return np.array([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])

    def _logits(self, seqs, idx, net=None):
        x, lengths = self._batch(seqs, idx)
        return (self.model_ if net is None else net).forward(x, lengths).astype(np.float64)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            try:
                from sklearn.exceptions import NotFittedError
            except ImportError:  # pragma: no cover
                NotFittedError = AttributeError
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def predict_proba(self, X):
        """(N, C) class probabilities, columns in the order of `classes_`."""
        self._check_fitted()
        seqs = self._encode(X)
        self.model_.eval()
        out = []
        for s in range(0, len(seqs), 256):
            z = self._logits(seqs, np.arange(s, min(s + 256, len(seqs))))
            e = np.exp(z - z.max(1, keepdims=True))
            out.append(e / e.sum(1, keepdims=True))
        return np.concatenate(out)

    def predict(self, X):
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of predict(X) against y."""
        y = np.asarray(y)
        correct = (self.predict(X) == y).astype(float)
        if sample_weight is None:
            return float(correct.mean())
        return float(np.average(correct, weights=sample_weight))

    def _more_tags(self):  # sklearn < 1.6
        return {"X_types": ["2darray", "string"], "non_deterministic": False}

    def __sklearn_tags__(self):  # sklearn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags
