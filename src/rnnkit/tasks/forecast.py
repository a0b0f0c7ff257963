"""`Forecaster`: RNN forecasting of a univariate or multivariate series from windows of its past.

Before the network sees the training series y it is put on a scale where what is left to learn is
neither a season nor a trend leaving the range seen in training (Smyl 2020's ES-RNN splits the work the
same way: classical statistics take the level and the season, the RNN models what is left):
  1. transform:     x = log y ("log", for a positive series whose season grows with its level) or x = y;
  2. deseasonalize: d_t = x_t - s_{t mod m} with seasonal indices s estimated by classical decomposition
                    on the training part (`rnnkit.tasks.seasonal`), when `season` m > 1 and the season
                    passes the autocorrelation test there (or when forced); with `period` P (a season
                    of P steps, P not whole, e.g. 365.25/7 for weekly data) the phase is t's bin in P;
  3. difference:    w_t = d_t - d_{t-1} (a trend leaves the range seen in training; its steps do not) or w = d;
  4. scale:         z = (w - mean) / std, mean and std per column fitted on the training part ("global"
                    level), or, with level "window" (undifferenced only), each window and its targets
                    less the window's own mean, z = (w - mean_window) / std with std that of the centred
                    training windows (a local level: the network sees a trend as the shape of the window
                    and is anchored at a level averaged over it, not at the noisy last value).
"auto" for `transform`, `difference` or `level` chooses on the training part only: each candidate is fitted on
the training series less a validation tail of 3 horizons (up to 5 while they are at most a fifth of the
series; fewer when it is too short) and scored by MAE on rolling origins in that tail; the best is refitted on the whole training series (`choice_` records the scores). Forecasts invert
the steps: x-hat = d_n + cumsum(w-hat) (or w-hat), + s, exp.

Training pairs are windows z[t-L : t] (L = lookback; None: 2H, at least 8, when the season was removed,
else max(2m, 2H, 8), so that a window holds two seasons only when the network has to learn them) and targets
  * direct:    z[t : t+H] (all H steps at once, one output per step and column), or
  * recursive: z[t] (one step; a forecast of H steps feeds each prediction back as the newest input).
With `n_models` > 1 that many networks (seeds seed, seed+1, ...) are trained and their forecasts
averaged in z units (an ensemble, as ES-RNN does, to cut the variance between initialisations).
With `interval` (e.g. 0.8) the head also outputs a log standard deviation per value and is trained by
Gaussian negative log-likelihood (`heads.gaussian_nll`); the interval is mean ± z_{(1+interval)/2} sigma
in x units (an ensemble's variance is the mixture's: mean sigma^2 plus the spread of the means), mapped
back through exp for "log" (so the point forecast is then the median). Differenced steps are treated as
independent: variances add up over the horizon. For the recursive strategy the per-step sigma does not
include the error fed back from earlier steps, so its intervals are too narrow beyond the first step;
prefer `strategy="direct"` for intervals.

`backtest` evaluates with rolling origins (Tashman 2000): fit once on the series before the first
origin, then forecast H steps from every origin, and score RMSE/MAE/MASE next to the naive,
seasonal-naive and (with statsmodels) Holt-Winters forecasts on the same origins
(`metrics.rolling_origin_backtest`, `metrics.holt_winters`).
"""
from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np

from ..errors import UserError
from . import metrics, seasonal
from .classify import _estimator_bases
from .fitting import run_training
from ..layers.heads import gaussian_nll
from .persist import Persist
from ..models.sequence_net import CELLS, SequenceNet

STRATEGIES = ("direct", "recursive")
TRANSFORMS = ("none", "log", "auto")


def check_series(y, name: str = "series") -> np.ndarray:
    """A (T, D) float64 copy of a (T,) or (T, D) series; NaN/inf refused with the rows (0-based)."""
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"the {name} is not numeric") from None
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] == 0:
        raise UserError(f"the {name} must be a non-empty (T,) or (T, D) array, got shape {y.shape}")
    bad = np.flatnonzero(~np.isfinite(y).all(axis=1))
    if bad.size:
        raise UserError(f"the {name} has missing or infinite values at rows {bad[:10].tolist()}"
                        f"{' ...' if bad.size > 10 else ''}; fill them first (e.g. --fill linear)")
    return y


class Forecaster(Persist, *_estimator_bases("RegressorMixin")):
    """Parameters: lookback (window length L, or None: from the season and horizon), horizon (H),
    strategy ("direct"|"recursive"), interval (None or a coverage in (0, 1) for a Gaussian head), cell,
    hidden_size, num_layers, epochs, batch_size, lr, optimizer, clip, time_budget, validation_split (last
    fraction of windows, for early stopping), patience, seed, dtype, train_config (a `TrainConfig` or dict
    overriding epochs, lr, ...), season (m, 1 for none), period (None: m; the season's length in steps when
    it is not a whole number), deseasonalize ("auto": when the season test
    passes | True | False), transform ("none"|"log"|"auto"), difference (False|True|"auto": model first
    differences), level ("global"|"window"|"auto"; step 4), n_models (networks averaged), dropout (between
    layers). See the module docstring for the steps.

    Learned: n_features_in_, lookback_, mean_, std_, series_ (the training series), transform_, deseasonalized_,
    seasonal_ (m, D) indices (zeros when not deseasonalized), difference_, level_, choice_ (what "auto" chose and
    why), model_ (the first network), members_ (the others), history_.
    A `history` given to predict must start where the training series started (the season's phase is
    counted from there), e.g. a longer copy of the same series.
    `save(dir)` / `Forecaster.load(dir)` store and restore a fitted forecaster.
    """

    _LEARNED_ARRAYS = ("mean_", "std_", "series_", "seasonal_")
    _LEARNED_JSON = ("n_features_in_", "univariate_", "lookback_", "transform_", "deseasonalized_", "difference_",
                     "level_", "choice_", "n_members_")

    def __init__(self, lookback=24, horizon=1, strategy="direct", interval=None, cell="lstm",
                 hidden_size=32, num_layers=1, epochs=50, batch_size=32, lr=0.005, optimizer="adam",
                 clip=5.0, time_budget=None, validation_split=0.0, patience=10, seed=0, dtype="float32",
                 train_config=None, difference=False, season=1, deseasonalize="auto", transform="none",
                 n_models=1, dropout=0.0, level="global", period=None):
        self.lookback = lookback
        self.horizon = horizon
        self.strategy = strategy
        self.interval = interval
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.clip = clip
        self.time_budget = time_budget
        self.validation_split = validation_split
        self.patience = patience
        self.seed = seed
        self.dtype = dtype
        self.train_config = train_config
        self.difference = difference
        self.season = season
        self.deseasonalize = deseasonalize
        self.transform = transform
        self.n_models = n_models
        self.dropout = dropout
        self.level = level
        self.period = period

    @property
    def _steps_out(self) -> int:
        return int(self.horizon) if self.strategy == "direct" else 1

    def _saved_sizes(self) -> dict:
        return {"hidden": self.hidden_size, "layers": self.num_layers, "input_width": self.n_features_in_,
                "output_width": self._steps_out * self.n_features_in_ * (2 if self.interval is not None else 1)}

    def _check_options(self, n: int):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.transform not in TRANSFORMS:
            raise UserError(f"transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}")
        if self.difference not in (True, False, "auto") or self.deseasonalize not in (True, False, "auto"):
            raise UserError(f"difference and deseasonalize must be True, False or 'auto', got "
                            f"{self.difference!r} and {self.deseasonalize!r}")
        if self.level not in ("global", "window", "auto"):
            raise UserError(f"level must be 'global', 'window' or 'auto', got {self.level!r}")
        if self.level == "window" and self.difference is True:
            raise UserError("level 'window' centres undifferenced windows (it would remove the drift of "
                            "differences); use difference False or level 'global'")
        if int(self.lookback or 1) < 1 or int(self.horizon) < 1 or int(self.season) < 1 or int(self.n_models) < 1:
            raise UserError(f"lookback, horizon, season and n_models must be >= 1, got {self.lookback}, "
                            f"{self.horizon}, {self.season} and {self.n_models}")
        if self.interval is not None and not 0.0 < float(self.interval) < 1.0:
            raise UserError(f"interval must be a coverage in (0, 1), got {self.interval}")
        if self.period is not None and not abs(float(self.period) - int(self.season)) < 1:
            raise UserError(f"period {self.period} must be within 1 of the season {self.season} (its whole steps)")
        if int(self.horizon) >= n:
            raise UserError(f"horizon {self.horizon} is not shorter than the series ({n} values)")
        if n - self._min_lookback() - self._steps_out + 1 < 2:
            raise UserError(f"the series ({n} values) is too short for lookback {self._min_lookback()} and "
                            f"{self._steps_out} target steps; use a shorter --lookback")

    # -- the statistical steps (module docstring, steps 1-3) ------------------------------------------
    def _settle(self, y, transform: str, difference: bool, level: str = "global") -> dict:
        """The learned values of steps 1-3 for one candidate, from the training series y (T, D)."""
        if transform == "log" and not np.all(y > 0):
            raise UserError("transform 'log' needs a positive series; use transform 'none' (--transform none)")
        x = np.log(y) if transform == "log" else y
        m = int(self.season)
        if self.deseasonalize == "auto":
            test = seasonal.seasonality_test(x[:, 0], m)
            on, why = test[0], (f"autocorrelation at lag {m}: {test[1]:.3f} vs {test[2]:.3f}" if m > 1 else "season 1")
        else:
            on, why = bool(self.deseasonalize) and m > 1, "forced" if m > 1 else "season 1"
            if on and len(x) < 2 * m + 1:
                raise UserError(f"deseasonalizing needs at least {2 * m + 1} values for season {m}, got {len(x)}")
        s = seasonal.seasonal_indices(x, m, self.period) if on else np.zeros((max(m, 1), x.shape[1]))
        lookback = self.lookback or (self._min_lookback() if on or m == 1 else self._max_lookback())
        return {"lookback_": int(lookback), "transform_": transform, "difference_": bool(difference), "level_": level,
                "deseasonalized_": bool(on),
                "seasonal_": s.reshape(max(m, 1), x.shape[1]), "season_test": why}

    def _min_lookback(self) -> int:
        return int(self.lookback or max(2 * int(self.horizon), 8))

    def _max_lookback(self) -> int:
        return int(self.lookback or max(2 * int(self.season), 2 * int(self.horizon), 8))

    def _to_work(self, h) -> tuple[np.ndarray, np.ndarray]:
        """(w, d): what the network models and the deseasonalized x of a raw history h (T, D)."""
        x = np.log(h) if self.transform_ == "log" else h
        d = seasonal.deseasonalize(x, self.seasonal_, period=self.period) if self.deseasonalized_ else x
        return (np.diff(d, axis=0) if self.difference_ else d), d

    def _choose(self, y) -> None:
        """Resolve "auto" transform and difference on the training series y (module docstring)."""
        transforms = [self.transform] if self.transform != "auto" else (["none", "log"] if np.all(y > 0) else ["none"])
        diffs = [self.difference] if self.difference != "auto" else [False, True]
        levels = [self.level] if self.level != "auto" else ["global", "window"]
        cands = [(t, bool(d), lv) for t in transforms for d in diffs for lv in levels
                 if not (d and lv == "window")]
        H, n = int(self.horizon), len(y)
        need = self._max_lookback() + self._steps_out + 1 + 16     # at least 16 training windows per candidate
        # 3 origins, up to 5 where they take at most a fifth of the series: one horizon or three of a
        # long series are a few regimes of it, and the choice between candidates is then mostly noise
        most = max(3, min(5, int(0.2 * n) // H))
        k = next((k for k in range(most, 0, -1) if n - k * H >= max(need, 2 * int(self.season) + 1)), 0)
        name = (lambda t, d, lv: f"{t}{', differenced' if d else ''}{', window level' if lv == 'window' else ''}")
        choice = {"candidates": [name(*c) for c in cands]}
        if len(cands) > 1 and k == 0:
            choice["note"] = (f"the series ({n} values) is too short to hold out a validation tail of one horizon; "
                              f"used {choice['candidates'][0]}")
        if len(cands) > 1 and k > 0:
            origins = [n - j * H for j in range(k, 0, -1)]
            scores = {}
            for (t, d, lv), label in zip(cands, choice["candidates"]):
                trial = type(self)(**{**self.get_params(), "transform": t, "difference": d, "level": lv,
                                      "n_models": 1, "interval": None})
                trial.fit(y[:origins[0]])
                err = [np.abs(y[o:o + H, 0] - np.asarray(trial.predict(H, history=y[:o])).reshape(H, -1)[:, 0])
                       for o in origins]
                scores[label] = float(np.mean(err))
            best = min(range(len(cands)), key=lambda i: scores[choice["candidates"][i]])
            cands = [cands[best]]
            choice.update({"validation_origins": origins, "validation_mae": scores})
        settled = self._settle(y, *cands[0])
        choice["chosen"] = name(*cands[0])
        choice["transform"], choice["difference"], choice["level"] = cands[0]
        choice["deseasonalized"] = f"{settled['deseasonalized_']} ({settled.pop('season_test')})"
        for key, v in settled.items():
            setattr(self, key, v)
        self.choice_ = choice

    def fit(self, y, out_dir=None, resume=None):
        """Fit on the series y (T,) or (T, D) (the training part only: every step is fitted on it).
        `out_dir`: the Trainer's checkpoint folder (the i-th extra network's in out_dir/member<i>);
        `resume`: a folder to continue training from (the choices of a loaded forecaster are kept)."""
        y = check_series(y)
        self._check_options(len(y) - (self.difference is not False))
        self.n_features_in_ = y.shape[1]
        self.univariate_ = bool(y.shape[1] == 1)
        self.series_ = y
        if resume is None or getattr(self, "transform_", None) is None:
            self._choose(y)
        work, _ = self._to_work(y)
        if self.level_ == "window":      # the spread of the training windows and targets about their own means
            L, K = int(self.lookback_), self._steps_out
            seg = np.lib.stride_tricks.sliding_window_view(work, L + K, axis=0)      # (N, D, L+K)
            centred = seg - seg[:, :, :L].mean(axis=2, keepdims=True)
            self.mean_, std = np.zeros(work.shape[1]), centred.transpose(1, 0, 2).reshape(work.shape[1], -1).std(1)
        else:
            self.mean_, std = work.mean(0), work.std(0)
        self.std_ = np.where(std > 0, std, 1.0)
        z = (work - self.mean_) / self.std_          # float64: window levels are taken off before the cast
        nets, histories = [], []
        for i in range(int(self.n_models)):
            sub = (lambda base: None if base is None else (Path(base) if i == 0 else Path(base) / f"member{i}"))
            net, hist = self._train_network(z, i, sub(out_dir), sub(resume))
            nets.append(net)
            histories.append(hist)
        self.model_, self.members_, self.n_members_ = nets[0], nets[1:], len(nets)
        self.history_ = dict(histories[0], members=histories[1:]) if len(nets) > 1 else histories[0]
        return self

    def _train_network(self, z, member: int, out_dir, resume):
        """One network (seed + member) trained on the scaled series z; (model, history summary)."""
        L, K, D = int(self.lookback_), self._steps_out, z.shape[1]
        starts = np.arange(L, len(z) - K + 1)                       # window ends (first target index)
        X = np.stack([z[t - L:t] for t in starts])                  # (N, L, D)
        Y = np.stack([z[t:t + K] for t in starts])                  # (N, K, D)
        if self.level_ == "window":
            c = X.mean(axis=1, keepdims=True)
            X, Y = X - c, Y - c
        dtype = np.dtype(self.dtype)
        X, Y = X.astype(dtype), Y.reshape(len(starts), -1).astype(dtype)   # Y: (N, K*D)
        gaussian = self.interval is not None
        model = self._build_model(member)
        n_val = int(round(float(self.validation_split) * len(starts)))
        tr, val = np.arange(len(starts) - n_val), np.arange(len(starts) - n_val, len(starts))
        bs = max(1, int(self.batch_size))

        def loss_and_grad(idx):
            x = X[idx].transpose(1, 0, 2)                           # (L, B, D)
            out = model.forward(x, np.full(len(idx), L))
            if gaussian:
                m = K * D
                loss, dmu, ds = gaussian_nll(out[:, :m], out[:, m:], Y[idx])
                return loss, np.concatenate([dmu, ds], axis=1)
            r = out - Y[idx]
            return float(np.mean(r ** 2)), 2.0 * r / r.size

        def train_batches(epoch, rng):
            perm = rng.permutation(tr)
            for s in range(0, len(perm), bs):
                yield perm[s:s + bs]

        def train_step(idx):
            loss, dout = loss_and_grad(idx)
            model.backward(dout, input_grad=False)
            return loss, len(idx)

        def eval_fn():
            return loss_and_grad(val)[0]

        history = run_training(self, model, train_batches, train_step, eval_fn if n_val > 0 else None,
                               -(-len(tr) // bs), out_dir, resume=resume, seed_offset=member)
        return model, history

    def _build_model(self, member: int = 0) -> SequenceNet:
        D, K = self.n_features_in_, self._steps_out
        return SequenceNet(D, K * D * (2 if self.interval is not None else 1), cell=self.cell,
                           hidden_size=self.hidden_size, num_layers=self.num_layers, pooling="last",
                           dropout=float(self.dropout or 0.0), dtype=np.dtype(self.dtype),
                           seed=self.seed + member if member else self.seed)

    # -- saving the extra networks (Persist saves model_) ------------------------------------------------
    def _extra_state_dicts(self) -> dict:
        return {f"member{i + 1}": net.state_dict() for i, net in enumerate(getattr(self, "members_", []))}

    def _load_extra_state_dicts(self, arrays: dict) -> None:
        self.members_ = []
        for i in range(1, int(getattr(self, "n_members_", 1) or 1)):
            if f"member{i}" not in arrays:
                raise UserError(f"the saved forecaster lists {self.n_members_} networks but network {i + 1} "
                                "is missing from the folder; train it again")
            net = self._build_model(i)
            net.load_state_dict(arrays[f"member{i}"])
            net.eval()
            self.members_.append(net)

    def _restore_learned(self):
        # forecasters saved before the statistical steps existed model y (or its differences) directly
        if getattr(self, "lookback_", None) is None:
            self.lookback_ = int(self.lookback)
        if getattr(self, "transform_", None) is None:
            self.transform_, self.deseasonalized_ = "none", False
            self.difference_ = bool(self.difference)
        if getattr(self, "level_", None) is None:
            self.level_ = "global"
            self.choice_, self.n_members_ = None, 1
        if getattr(self, "seasonal_", None) is None:
            self.seasonal_ = np.zeros((1, int(self.n_features_in_)))

    def _predict_scaled(self, net, z_hist, horizon: int):
        """(mu (H, D), sigma (H, D) or None) in scaled units from the scaled history (>= L, D)."""
        L, D, K = int(self.lookback_), self.n_features_in_, self._steps_out
        gaussian = self.interval is not None
        net.eval()

        def run(window):
            c = window.mean(axis=0) if self.level_ == "window" else np.zeros(D)
            out = net.forward((window - c)[:, None, :].astype(np.dtype(self.dtype)), np.array([L]))[0]
            out = out.astype(np.float64)
            if gaussian:
                return out[:K * D].reshape(K, D) + c, np.exp(np.clip(out[K * D:], -7, 7)).reshape(K, D)
            return out.reshape(K, D) + c, None

        if self.strategy == "direct":
            if horizon > K:
                raise UserError(f"this forecaster was trained for horizon {K} (direct strategy); "
                                f"asked for {horizon}: retrain with --horizon {horizon} or --strategy recursive")
            mu, sig = run(z_hist[-L:])
            return mu[:horizon], None if sig is None else sig[:horizon]
        window, mus, sigs = z_hist[-L:].copy(), [], []
        for _ in range(horizon):
            mu, sig = run(window)
            mus.append(mu[0])
            sigs.append(None if sig is None else sig[0])
            window = np.concatenate([window[1:], mu[:1]], axis=0)
        return np.stack(mus), (np.stack(sigs) if gaussian else None)

    def _history(self, history):
        if not hasattr(self, "model_"):
            raise UserError("this Forecaster is not fitted yet; call fit first")
        h = self.series_ if history is None else check_series(history, "history")
        if h.shape[1] != self.n_features_in_:
            raise UserError(f"history has {h.shape[1]} columns, the forecaster was fitted on "
                            f"{self.n_features_in_}")
        need = int(self.lookback_) + bool(self.difference_)
        if len(h) < need:
            raise UserError(f"history has {len(h)} values, fewer than the {need} the lookback needs")
        if self.transform_ == "log" and not np.all(h > 0):
            raise UserError("the history has values <= 0, but this forecaster models log values")
        return h

    def _forecast(self, h, horizon):
        """(mean (H, D), sigma (H, D) or None) in x units (log units for "log") from the raw history h."""
        H = int(horizon or self.horizon)
        work, d = self._to_work(h)
        z = (work - self.mean_) / self.std_
        outs = [self._predict_scaled(net, z, H) for net in [self.model_, *getattr(self, "members_", [])]]
        mus = np.stack([o[0] for o in outs])
        mu = mus.mean(0)
        sig = None
        if outs[0][1] is not None:  # the ensemble as a mixture: mean variance plus the spread of the means
            sig = np.sqrt(np.mean([o[1] ** 2 for o in outs], axis=0) + mus.var(0))
        mu = mu * self.std_ + self.mean_
        sig = None if sig is None else sig * self.std_
        if self.difference_:
            mu = d[-1] + np.cumsum(mu, axis=0)
            sig = None if sig is None else np.sqrt(np.cumsum(sig ** 2, axis=0))
        if self.deseasonalized_:
            mu = seasonal.reseasonalize(mu, self.seasonal_, start=len(h), period=self.period)
        return mu, sig

    def _untransform(self, a):
        return np.exp(a) if self.transform_ == "log" else a

    def _shape(self, a):
        return a[:, 0] if self.univariate_ else a

    def predict(self, horizon=None, history=None):
        """Forecast `horizon` steps (default the trained one) after `history` (default the training
        series): (H,) for a univariate series, else (H, D)."""
        mu, _ = self._forecast(self._history(history), horizon)
        return self._shape(self._untransform(mu))

    def predict_interval(self, horizon=None, history=None):
        """(mean, lower, upper) at coverage `interval` (needs a model fitted with interval set); with the
        log transform the mean is the exp of the log forecast (the median) and the bounds are asymmetric."""
        if self.interval is None:
            raise UserError("this forecaster has no interval head; fit it with interval=0.8 (--interval)")
        mean, sig = self._forecast(self._history(history), horizon)
        half = NormalDist().inv_cdf(0.5 + float(self.interval) / 2) * sig
        return tuple(self._shape(self._untransform(a)) for a in (mean, mean - half, mean + half))


def backtest(forecaster: Forecaster, y, n_origins: int = 5, season=None, step=None,
             holt_winters: bool | None = None) -> dict:
    """Rolling-origin evaluation of `forecaster` (fitted here on y before the first origin) against
    naive, seasonal-naive and Holt-Winters on the same origins (`season` defaults to the forecaster's).
    `holt_winters`: None adds it when statsmodels is installed, True requires it, False leaves it out.
    Returns {"origins", "train_end", "metrics": {method: {"rmse", "mae", "mase"}}, "choice" (what the
    forecaster's "auto" options chose), "holt_winters" (its model, or why it is absent)} and, for a
    forecaster with intervals, "interval": {"nominal", "coverage"} (the fraction of backtest targets
    inside the interval)."""
    y = check_series(y)
    H = int(forecaster.horizon)
    season = int(forecaster.season if season is None else season)
    if H >= len(y):
        raise UserError(f"horizon {H} is not shorter than the series ({len(y)} values)")
    origins = metrics.backtest_origins(len(y), H, int(n_origins), step)
    if not origins or origins[0] <= forecaster._min_lookback() + H:
        raise UserError(f"the series ({len(y)} values) is too short for {n_origins} backtest origins with "
                        f"horizon {H} and lookback {forecaster._min_lookback()}")
    forecaster.fit(y[:origins[0]])
    methods = {"rnnkit": lambda hist, h: forecaster.predict(h, history=hist).reshape(h, -1)}
    hw_note = "left out"
    if holt_winters is not False:
        try:
            hw, hw_note = metrics.holt_winters(y[:origins[0], 0], season)
            methods["holt_winters"] = hw
        except ImportError:
            if holt_winters:
                raise UserError("the Holt-Winters baseline needs statsmodels: pip install statsmodels") from None
            hw_note = "statsmodels is not installed"
    res = metrics.rolling_origin_backtest(y, H, origins, season=season, methods=methods)
    out = {"origins": origins, "train_end": origins[0], "metrics": res,
           "choice": getattr(forecaster, "choice_", None), "holt_winters": hw_note}
    if forecaster.interval is not None:  # empirical coverage of the intervals on the same origins
        inside = []
        for o in origins:
            _, lo, hi = (np.asarray(a).reshape(H, -1)[:, 0] for a in forecaster.predict_interval(H, history=y[:o]))
            inside.append((lo <= y[o:o + H, 0]) & (y[o:o + H, 0] <= hi))
        out["interval"] = {"nominal": float(forecaster.interval), "coverage": float(np.mean(inside))}
    return out
