"""`rnnkit forecast train SERIES.csv --column NAME --horizon H --out DIR` and `rnnkit forecast predict DIR`.

`train` scores the model by a rolling-origin backtest on the end of the series (RMSE, MAE, MASE next to
naive and seasonal-naive on the same origins), then refits on the whole series and saves it, its
forecast and `DIR/metrics.json`; `DIR/forecast.png` shows history, forecast and interval when
matplotlib is installed. `predict` prints the next H values (with the interval when the model has one).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from .common import add_train_args, positive_int, prepare_out_dir, train_config_from_args
from .plotting import pyplot_or_none, save_figure


def add_parser(sub):
    p = sub.add_parser("forecast", help="time-series forecasting with a rolling-origin backtest")
    act = p.add_subparsers(dest="action", metavar="ACTION")
    act.required = True
    t = act.add_parser("train", help="backtest, fit on the whole series, write DIR/metrics.json")
    t.add_argument("series", metavar="SERIES.csv")
    t.add_argument("--column", required=True, action="append",
                   help="the column to forecast; repeat for a multivariate series (the first is scored)")
    t.add_argument("--time-col", metavar="NAME", help="column with the time stamps (for the plot and output)")
    t.add_argument("--horizon", type=positive_int, required=True, help="steps to forecast")
    t.add_argument("--season", type=positive_int, default=1, help="season length for seasonal-naive and MASE")
    t.add_argument("--lookback", type=positive_int, help="input window (default: max(2*season, 2*horizon, 8))")
    t.add_argument("--strategy", choices=["direct", "recursive"], default="direct")
    t.add_argument("--interval", type=float, help="prediction-interval coverage, e.g. 0.8 (Gaussian head)")
    t.add_argument("--difference", action="store_true",
                   help="model first differences (for series with a trend)")
    t.add_argument("--fill", choices=["linear", "ffill"], help="fill missing values instead of refusing them")
    t.add_argument("--origins", type=positive_int, default=5, help="backtest origins (default: %(default)s)")
    t.add_argument("--batch-size", type=positive_int, default=32)
    add_train_args(t, epochs=100, hidden=32, lr=5e-3, eval_every=50)
    t.set_defaults(func=train)
    q = act.add_parser("predict", help="forecast the next steps with the model in DIR")
    q.add_argument("model_dir", metavar="DIR")
    q.add_argument("--horizon", type=positive_int, help="steps (default: the trained horizon)")
    q.set_defaults(func=predict)


def plot_forecast(history, times, forecast, lower, upper, path, title) -> bool:
    """History, forecast and interval to `path`; False (and a note on stderr) without matplotlib."""
    plt = pyplot_or_none("forecast plot")
    if plt is None:
        return False
    n, H = len(history), len(forecast)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(np.arange(n), history, color="black", lw=1, label="history")
    xs = np.arange(n, n + H)
    ax.plot(xs, forecast, color="tab:blue", lw=1.5, label="forecast")
    if lower is not None:
        ax.fill_between(xs, lower, upper, color="tab:blue", alpha=0.25, label="interval")
    if times is not None and n > 1:
        ticks = np.linspace(0, n - 1, min(6, n)).astype(int)
        ax.set_xticks(ticks, [times[i] for i in ticks])
    ax.set_title(title)
    ax.legend(loc="upper left")
    return save_figure(plt, fig, path)


def train(args):
    from ..data.tables import read_table, parse_numeric_column
    from ..tasks.forecast import Forecaster, backtest

    cfg = train_config_from_args(args)
    out = prepare_out_dir(args.out)
    if args.interval is not None and not 0 < args.interval < 1:
        raise UserError(f"--interval must be a coverage in (0, 1), got {args.interval}")
    table = read_table(args.series)
    cols = [parse_numeric_column(table, c, args.fill) for c in args.column]
    y = np.stack(cols, axis=1)                                        # (T, D)
    times = table.column(args.time_col, "--time-col") if args.time_col else None
    if args.horizon >= len(y):
        raise UserError(f"--horizon {args.horizon} is not shorter than the series ({len(y)} values)")
    lookback = args.lookback or max(2 * args.season, 2 * args.horizon, 8)

    def make():
        return Forecaster(lookback=lookback, horizon=args.horizon, strategy=args.strategy,
                          interval=args.interval, cell=args.cell, hidden_size=args.hidden,
                          num_layers=args.layers, batch_size=args.batch_size, seed=args.seed, train_config=cfg,
                          difference=args.difference)

    t0 = time.perf_counter()
    bt = backtest(make(), y, n_origins=args.origins, season=args.season)
    final = Forecaster.load(Path(args.resume) / "model").set_params(train_config=cfg) if args.resume else make()
    final.fit(y, out_dir=out, resume=args.resume)
    seconds = time.perf_counter() - t0
    if args.interval is not None:
        mean, lo, hi = final.predict_interval()
    else:
        mean, lo, hi = final.predict(), None, None
    first = (lambda a: None if a is None else np.asarray(a).reshape(args.horizon, -1)[:, 0].tolist())
    m = bt["metrics"]
    metrics = {"task": "forecast", "series": str(args.series), "columns": args.column, "n": len(y),
               "horizon": args.horizon, "season": args.season, "lookback": lookback, "strategy": args.strategy,
               "backtest": {"origins": bt["origins"], "train_end": bt["train_end"], **m,
                            "interval": bt.get("interval")},
               "forecast": first(mean), "lower": first(lo), "upper": first(hi), "interval": args.interval,
               "train_seconds": seconds, "training": final.history_}
    final.save(out / "model")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    plotted = plot_forecast(y[:, 0], times, first(mean), first(lo), first(hi), out / "forecast.png",
                            f"{args.column[0]}: {args.horizon}-step forecast")
    print(f"backtest ({len(bt['origins'])} origins, horizon {args.horizon}) MASE: rnnkit "
          f"{m['rnnkit']['mase']:.3f}, naive {m['naive']['mase']:.3f}, seasonal-naive "
          f"{m['seasonal_naive']['mase']:.3f}; RMSE rnnkit {m['rnnkit']['rmse']:.4g}"
          + (f"; {args.interval:.0%} interval covered {bt['interval']['coverage']:.0%}" if "interval" in bt else ""))
    print(f"wrote {out / 'metrics.json'}" + (f", {out / 'forecast.png'}" if plotted else ""))
    return 0


def predict(args):
    from ..tasks.forecast import Forecaster

    f = Forecaster.load(Path(args.model_dir) / "model")
    H = args.horizon or f.horizon
    if f.interval is not None:
        mean, lo, hi = (np.asarray(a).reshape(H, -1) for a in f.predict_interval(H))
        print("step,forecast,lower,upper")
        for h in range(H):
            print(f"{h + 1},{mean[h, 0]:.6g},{lo[h, 0]:.6g},{hi[h, 0]:.6g}")
    else:
        mean = np.asarray(f.predict(H)).reshape(H, -1)
        print("step," + ",".join(f"forecast{j}" if mean.shape[1] > 1 else "forecast" for j in range(mean.shape[1])))
        for h in range(H):
            print(f"{h + 1}," + ",".join(f"{v:.6g}" for v in mean[h]))
    return 0
