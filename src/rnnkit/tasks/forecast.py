"""`Forecaster`: RNN forecasting of a univariate or multivariate series from windows of its past.

Training pairs are windows x = z[t-L : t] (L = lookback) of the scaled series z = (y - mean) / std, with
mean and std per column fitted on the training series only, and targets
  * direct:    z[t : t+H] (all H steps at once, one output per step and column), or
  * recursive: z[t] (one step; a forecast of H steps feeds each prediction back as the newest input).
With `interval` (e.g. 0.8) the head also outputs a log standard deviation per value and is trained by
Gaussian negative log-likelihood (`heads.gaussian_nll`); the interval is mean ± z_{(1+interval)/2} sigma.
With `difference=True` the network models the first differences d_t = y_t - y_{t-1} (a series with a
trend leaves the range seen in training; its differences do not) and forecasts are y_n + cumsum(d-hat),
with interval variances summed over the steps (differences treated as independent).
For the recursive strategy the per-step sigma does not include the error fed back from earlier steps, so
its intervals are too narrow beyond the first step; prefer `strategy="direct"` for intervals.

`backtest` evaluates with rolling origins (Tashman 2000): fit once on the series before the first
origin, then forecast H steps from every origin, and score RMSE/MAE/MASE next to the naive and
seasonal-naive forecasts on the same origins (`metrics.rolling_origin_backtest`).
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from ..errors import UserError
from . import metrics
from .classify import _estimator_bases
from .fitting import run_training
from ..layers.heads import gaussian_nll
from .persist import Persist
from ..models.sequence_net import CELLS, SequenceNet

STRATEGIES = ("direct", "recursive")


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
    """Parameters: lookback (window length L), horizon (H), strategy ("direct"|"recursive"), interval
    (None or a coverage in (0, 1) for a Gaussian head), cell, hidden_size, num_layers, epochs,
    batch_size, lr, optimizer, clip, time_budget, validation_split (last fraction of windows, for early
    stopping), patience, seed, dtype, difference (model first differences), train_config (a `TrainConfig` or dict overriding epochs, lr, ...).

    Learned: n_features_in_, mean_, std_, series_ (the training series), model_, history_.
    `save(dir)` / `Forecaster.load(dir)` store and restore a fitted forecaster.
    """

    _LEARNED_ARRAYS = ("mean_", "std_", "series_")
    _LEARNED_JSON = ("n_features_in_", "univariate_")

    def __init__(self, lookback=24, horizon=1, strategy="direct", interval=None, cell="lstm",
                 hidden_size=32, num_layers=1, epochs=50, batch_size=32, lr=0.005, optimizer="adam",
                 clip=5.0, time_budget=None, validation_split=0.0, patience=10, seed=0, dtype="float32",
                 train_config=None, difference=False):
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
        if int(self.lookback) < 1 or int(self.horizon) < 1:
            raise UserError(f"lookback and horizon must be >= 1, got {self.lookback} and {self.horizon}")
        if self.interval is not None and not 0.0 < float(self.interval) < 1.0:
            raise UserError(f"interval must be a coverage in (0, 1), got {self.interval}")
        if int(self.horizon) >= n:
            raise UserError(f"horizon {self.horizon} is not shorter than the series ({n} values)")
        if n - int(self.lookback) - self._steps_out + 1 < 2:
            raise UserError(f"the series ({n} values) is too short for lookback {self.lookback} and "
                            f"{self._steps_out} target steps; use a shorter --lookback")

    def fit(self, y, out_dir=None, resume=None):
        """Fit on the series y (T,) or (T, D) (the training part only: scaling is fitted on it).
        `out_dir`: the Trainer's checkpoint folder; `resume`: a folder to continue training from."""
        y = check_series(y)
        self._check_options(len(y) - bool(self.difference))
        self.n_features_in_ = y.shape[1]
        self.univariate_ = bool(y.shape[1] == 1)
        self.series_ = y
        work = np.diff(y, axis=0) if self.difference else y           # what the network models
        self.mean_ = work.mean(0)
        std = work.std(0)
        self.std_ = np.where(std > 0, std, 1.0)
        z = ((work - self.mean_) / self.std_).astype(np.dtype(self.dtype))
        L, K, D = int(self.lookback), self._steps_out, y.shape[1]
        starts = np.arange(L, len(z) - K + 1)                       # window ends (first target index)
        X = np.stack([z[t - L:t] for t in starts])                  # (N, L, D)
        Y = np.stack([z[t:t + K].reshape(-1) for t in starts])      # (N, K*D)
        gaussian = self.interval is not None
        self.model_ = self._build_model()
        n_val = int(round(float(self.validation_split) * len(starts)))
        tr, val = np.arange(len(starts) - n_val), np.arange(len(starts) - n_val, len(starts))
        bs = max(1, int(self.batch_size))

        def loss_and_grad(idx):
            x = X[idx].transpose(1, 0, 2)                           # (L, B, D)
            out = self.model_.forward(x, np.full(len(idx), L))
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
            self.model_.backward(dout, input_grad=False)
            return loss, len(idx)

        def eval_fn():
            return loss_and_grad(val)[0]

        self.history_ = run_training(self, self.model_, train_batches, train_step,
                                     eval_fn if n_val > 0 else None, -(-len(tr) // bs), out_dir, resume=resume)
        return self

    def _build_model(self) -> SequenceNet:
        D, K = self.n_features_in_, self._steps_out
        return SequenceNet(D, K * D * (2 if self.interval is not None else 1), cell=self.cell,
                           hidden_size=self.hidden_size, num_layers=self.num_layers, pooling="last",
                           dtype=np.dtype(self.dtype), seed=self.seed)

    def _predict_scaled(self, z_hist, horizon: int):
        """(mu (H, D), sigma (H, D) or None) in scaled units from the scaled history (>= L, D)."""
        L, D, K = int(self.lookback), self.n_features_in_, self._steps_out
        gaussian = self.interval is not None
        self.model_.eval()

        def run(window):
            out = self.model_.forward(window[:, None, :].astype(np.dtype(self.dtype)), np.array([L]))[0]
            out = out.astype(np.float64)
            if gaussian:
                return out[:K * D].reshape(K, D), np.exp(np.clip(out[K * D:], -7, 7)).reshape(K, D)
            return out.reshape(K, D), None

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
        need = int(self.lookback) + bool(self.difference)
        if len(h) < need:
            raise UserError(f"history has {len(h)} values, fewer than the {need} the lookback needs")
        return h

    def _forecast(self, h, horizon):
        """(mean (H, D), sigma (H, D) or None) in the series' units from the raw history h."""
        work = np.diff(h, axis=0) if self.difference else h
        mu, sig = self._predict_scaled((work - self.mean_) / self.std_, int(horizon or self.horizon))
        mu = mu * self.std_ + self.mean_
        sig = None if sig is None else sig * self.std_
        if self.difference:
            mu = h[-1] + np.cumsum(mu, axis=0)
            sig = None if sig is None else np.sqrt(np.cumsum(sig ** 2, axis=0))
        return mu, sig

    def _shape(self, a):
        return a[:, 0] if self.univariate_ else a

    def predict(self, horizon=None, history=None):
        """Forecast `horizon` steps (default the trained one) after `history` (default the training
        series): (H,) for a univariate series, else (H, D)."""
        mu, _ = self._forecast(self._history(history), horizon)
        return self._shape(mu)

    def predict_interval(self, horizon=None, history=None):
        """(mean, lower, upper) at coverage `interval` (needs a model fitted with interval set)."""
        if self.interval is None:
            raise UserError("this forecaster has no interval head; fit it with interval=0.8 (--interval)")
        mean, sig = self._forecast(self._history(history), horizon)
        half = NormalDist().inv_cdf(0.5 + float(self.interval) / 2) * sig
        return self._shape(mean), self._shape(mean - half), self._shape(mean + half)


def backtest(forecaster: Forecaster, y, n_origins: int = 5, season: int = 1, step=None) -> dict:
    """Rolling-origin evaluation of `forecaster` (fitted here on y before the first origin) against
    naive and seasonal-naive on the same origins. Returns {"origins", "train_end", "metrics": {method:
    {"rmse", "mae", "mase"}}} and, for a forecaster with intervals, "interval": {"nominal", "coverage"}
    (the fraction of backtest targets inside the interval)."""
    y = check_series(y)
    H = int(forecaster.horizon)
    if H >= len(y):
        raise UserError(f"horizon {H} is not shorter than the series ({len(y)} values)")
    origins = metrics.backtest_origins(len(y), H, int(n_origins), step)
    if not origins or origins[0] <= int(forecaster.lookback) + H:
        raise UserError(f"the series ({len(y)} values) is too short for {n_origins} backtest origins with "
                        f"horizon {H} and lookback {forecaster.lookback}")
    forecaster.fit(y[:origins[0]])
    res = metrics.rolling_origin_backtest(
        y, H, origins, season=season,
        methods={"rnnkit": lambda hist, h: forecaster.predict(h, history=hist).reshape(h, -1)})
    out = {"origins": origins, "train_end": origins[0], "metrics": res}
    if forecaster.interval is not None:  # empirical coverage of the intervals on the same origins
        inside = []
        for o in origins:
            _, lo, hi = (np.asarray(a).reshape(H, -1)[:, 0] for a in forecaster.predict_interval(H, history=y[:o]))
            inside.append((lo <= y[o:o + H, 0]) & (y[o:o + H, 0] <= hi))
        out["interval"] = {"nominal": float(forecaster.interval), "coverage": float(np.mean(inside))}
    return out
