"""`rnnkit forecast train SERIES.csv --column NAME --horizon H --out DIR` and `rnnkit forecast predict DIR`.

`train` scores the model by a rolling-origin backtest on the end of the series (RMSE, MAE, MASE next to
naive, seasonal-naive and, with statsmodels, Holt-Winters on the same origins), then refits on the whole
series and saves it, its forecast and `DIR/metrics.json`. Without `--season` the season comes from the
time column's calendar (hourly 24, daily 7, weekly 52, monthly 12, quarterly 4, yearly 1; see
`rnnkit.data.timeindex`), or is 1 with a note when there is none; `--fill` also inserts the dates that a
regular calendar is missing. By default the forecaster deseasonalizes when the season tests significant
and chooses a log transform, differencing and a per-window level on a validation tail of the training part
(`rnnkit.tasks.forecast`), and averages 5 networks; `DIR/forecast.png` shows history, forecast and interval when
matplotlib is installed. `predict` prints the next H values (with the interval when the model has one).

With `--series-col ID` the file is a long table of many series: one forecaster per series, fitted in
parallel on Ray with `--workers N` (serially otherwise), each in DIR/series/<id>/, and one table for all
in DIR/metrics.csv and DIR/metrics.json; a series that fails is listed with its error and the others
are kept. `predict DIR` on such a folder prints the forecasts of every series (`series,step,...`).
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..jsonio import write_json
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
    t.add_argument("--season", type=positive_int,
                   help="season length (default: from the --time-col calendar, else 1)")
    t.add_argument("--lookback", type=positive_int,
                   help="input window (default: 2*horizon, at least 8, or two seasons when the season is kept)")
    t.add_argument("--strategy", choices=["direct", "recursive"],
                   help="recursive one-step model (default) or direct multi-step output (default with --interval)")
    t.add_argument("--interval", type=float, help="prediction-interval coverage, e.g. 0.8 (Gaussian head)")
    t.add_argument("--difference", choices=["auto", "yes", "no"], nargs="?", const="yes", default="auto",
                   help="model first differences (default: auto, chosen on a validation tail)")
    t.add_argument("--transform", choices=["auto", "log", "none"], default="auto",
                   help="log transform (default: auto, tried for a positive series on a validation tail)")
    t.add_argument("--level", choices=["auto", "global", "window"], default="auto",
                   help="scale the series once (global) or each window about its own mean (window); default: "
                        "auto, chosen on a validation tail")
    t.add_argument("--deseasonalize", choices=["auto", "yes", "no"], default="auto",
                   help="remove seasonal indices (default: auto, when the season tests significant)")
    t.add_argument("--models", type=positive_int, default=5, metavar="N",
                   help="networks averaged (default: %(default)s)")
    t.add_argument("--fill", choices=["linear", "ffill"],
                   help="fill missing values (and insert the dates a regular --time-col calendar misses)")
    t.add_argument("--origins", type=positive_int, default=5, help="backtest origins (default: %(default)s)")
    t.add_argument("--batch-size", type=positive_int, default=32)
    t.add_argument("--series-col", metavar="NAME",
                   help="a long table with many series: fit one model per value of this column")
    t.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="with --series-col: fit N series at a time on Ray (default: %(default)s, serially)")
    t.add_argument("--address", metavar="A", help="with --series-col: a running Ray cluster")
    add_train_args(t, epochs=100, steps=1500, hidden=32, lr=5e-3, eval_every=50)
    t.set_defaults(func=train)
    q = act.add_parser("predict", help="forecast the next steps with the model in DIR")
    q.add_argument("model_dir", metavar="DIR")
    q.add_argument("--horizon", type=positive_int, help="steps (default: the trained horizon)")
    q.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="a folder of many series: forecast N at a time on Ray (default: %(default)s)")
    q.add_argument("--address", metavar="A", help="a running Ray cluster")
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
    from ..data.tables import read_table

    cfg = train_config_from_args(args)
    out = prepare_out_dir(args.out)
    if args.interval is not None and not 0 < args.interval < 1:
        raise UserError(f"--interval must be a coverage in (0, 1), got {args.interval}")
    if args.series_col is None and (args.workers > 1 or args.address):
        raise UserError("--workers and --address fit many series at once; they need --series-col")
    table = read_table(args.series)
    if args.series_col is not None:
        return train_many(table, args, cfg, out)
    y, times, season, period, note = series_from_table(table, args)
    print(note)
    metrics = fit_one(y, times, args, cfg, out, season=season, period=period)
    bt, m = metrics["backtest"], metrics["backtest"]
    hw = (f"Holt-Winters {m['holt_winters']['mase']:.3f}" if "holt_winters" in m
          else f"no Holt-Winters ({bt['holt_winters_model']})")
    choice = bt.get("choice") or metrics["choice"] or {}   # the backtest model's choice: the final one takes it
    print(f"model: {choice.get('chosen', 'as saved')}, deseasonalized {choice.get('deseasonalized', 'as saved')}"
          + (f" (validation MAE: {', '.join(f'{k} {v:.4g}' for k, v in choice['validation_mae'].items())})"
             if choice.get("validation_mae") else "") + (f"; {choice['note']}" if choice.get("note") else ""))
    print(f"backtest ({len(bt['origins'])} origins, horizon {args.horizon}) MASE: rnnkit "
          f"{m['rnnkit']['mase']:.3f}, naive {m['naive']['mase']:.3f}, seasonal-naive "
          f"{m['seasonal_naive']['mase']:.3f}, {hw}; RMSE rnnkit {m['rnnkit']['rmse']:.4g}"
          + (f"; {args.interval:.0%} interval covered {bt['interval']['coverage']:.0%}"
             if bt.get("interval") else ""))
    print(f"wrote {out / 'metrics.json'}" + (f", {out / 'forecast.png'}" if metrics["plotted"] else ""))
    return 0


def series_from_table(table, args):
    """(y (T, D), times or None, season, period, note) from the --column and --time-col columns of `table`.

    The season is --season, else the time column's calendar's, else 1; the note says which. Missing
    dates of a regular calendar become rows and are filled with the missing values (--fill), or refused."""
    from ..data.tables import check_series, fill_missing, parse_numeric_column
    from ..data.timeindex import infer_calendar, regularize

    cols = [parse_numeric_column(table, c, allow_missing=True) for c in args.column]
    y = np.stack(cols, axis=1)                                        # (T, D), NaN where missing
    times = table.column(args.time_col, "--time-col") if args.time_col else None
    cal, why = (infer_calendar(times, table.first_line, args.time_col) if times is not None
                else (None, "no --time-col"))
    if cal is not None and cal.n_missing:
        if args.fill is None:
            first = next(k for k in range(len(cal.positions)) if cal.positions[k] != k)
            raise UserError(f"{table.path}: {cal.n_missing} dates are missing from the {cal.name} calendar of "
                            f"column {args.time_col!r} (the first: {cal.stamp(first)}); pass --fill linear|ffill "
                            "to insert them and fill their values")
        y, times = regularize(y, cal, times)
    if np.isnan(y).any():
        if args.fill is None:
            for c in args.column:   # the reader's own message, naming the rows
                parse_numeric_column(table, c, None)
        y = np.stack([fill_missing(y[:, j], args.fill) for j in range(y.shape[1])], axis=1)
    for c, v in zip(args.column, y.T):
        check_series(v, f"{args.series}: column {c!r}")
    filled = (f"; {cal.n_missing} missing {cal.name} dates inserted and filled ({args.fill})"
              if cal is not None and cal.n_missing else "")
    if args.season is not None:
        return y, times, args.season, None, f"season {args.season} (--season){filled}"
    if cal is not None:
        period = f"; seasonal indices on a {cal.period:.2f}-step year" if cal.period != cal.season else ""
        return (y, times, cal.season, cal.period if period else None,
                f"season {cal.season} ({cal.name} time stamps in column {args.time_col!r}{period}){filled}")
    return y, times, 1, None, f"season 1 ({why}; pass --season to set one)"


def fit_one(y, times, args, cfg, out: Path, plot: bool = True, season: int = 1, period=None) -> dict:
    """Backtest, refit on the whole series, save the model, DIR/metrics.json (and the plot)."""
    from ..tasks.forecast import Forecaster, backtest

    if args.horizon >= len(y):
        raise UserError(f"--horizon {args.horizon} is not shorter than the series ({len(y)} values)")
    strategy = args.strategy or ("direct" if args.interval is not None else "recursive")
    flag = {"auto": "auto", "yes": True, "no": False}

    def make():
        return Forecaster(lookback=args.lookback, horizon=args.horizon, strategy=strategy,
                          interval=args.interval, cell=args.cell, hidden_size=args.hidden,
                          num_layers=args.layers, batch_size=args.batch_size, seed=args.seed, train_config=cfg,
                          difference=flag[args.difference], season=season, transform=args.transform,
                          deseasonalize=flag[args.deseasonalize], n_models=args.models, level=args.level,
                          period=period,
                          dropout=0.0 if args.dropout is None else args.dropout)  # between layers (--layers > 1)

    t0 = time.perf_counter()
    bt = backtest(make(), y, n_origins=args.origins, season=season)
    # the final model takes the choices the backtest's model made on its training part (a prefix of the
    # whole series): choosing again would cost as many fits again for what is nearly the same decision
    final = (Forecaster.load(Path(args.resume) / "model").set_params(train_config=cfg) if args.resume
             else make().set_params(transform=bt["choice"]["transform"], difference=bt["choice"]["difference"],
                                    level=bt["choice"]["level"]))
    final.fit(y, out_dir=out, resume=args.resume)
    seconds = time.perf_counter() - t0
    if args.interval is not None:
        mean, lo, hi = final.predict_interval()
    else:
        mean, lo, hi = final.predict(), None, None
    first = (lambda a: None if a is None else np.asarray(a).reshape(args.horizon, -1)[:, 0].tolist())
    m = bt["metrics"]
    metrics = {"task": "forecast", "series": str(args.series), "columns": args.column, "n": len(y),
               "horizon": args.horizon, "season": season, "period": period, "lookback": final.lookback_, "strategy": strategy,
               "models": args.models, "cell": args.cell, "hidden": args.hidden,
               "backtest": {"origins": bt["origins"], "train_end": bt["train_end"], **m,
                            "interval": bt.get("interval"), "holt_winters_model": bt["holt_winters"],
                            "choice": bt["choice"]},
               "choice": final.choice_,
               "forecast": first(mean), "lower": first(lo), "upper": first(hi), "interval": args.interval,
               "train_seconds": seconds, "training": final.history_}
    final.save(out / "model")
    write_json(out / "metrics.json", metrics, indent=2, default=str)
    metrics["plotted"] = plot and plot_forecast(y[:, 0], times, first(mean), first(lo), first(hi),
                                                out / "forecast.png",
                                                f"{args.column[0]}: {args.horizon}-step forecast")
    return metrics


# -- many series: one model each (rnnkit.distributed.map_jobs) --------------------------------------------
def series_dir_name(key: str) -> str:
    """A folder name for a series id: the id when it is safe, else a cleaned id and a short hash."""
    import hashlib

    clean = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:60] or "_"
    if clean == key and not key.startswith("."):
        return key
    return f"{clean.lstrip('.') or '_'}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _fit_series_job(key, payload) -> dict:
    """One series of a long table (runs in a Ray task or in this process)."""
    table, args, cfg, out = payload
    y, times, season, period, _ = series_from_table(table, args)
    m = fit_one(y, times, args, cfg, Path(out), plot=False, season=season, period=period)
    b = m["backtest"]
    return {"n": m["n"], "mase": b["rnnkit"]["mase"], "rmse": b["rnnkit"]["rmse"], "mae": b["rnnkit"]["mae"],
            "mase_naive": b["naive"]["mase"], "mase_seasonal_naive": b["seasonal_naive"]["mase"],
            "mase_holt_winters": b.get("holt_winters", {}).get("mase"), "season": season,
            "train_seconds": m["train_seconds"], "forecast": m["forecast"]}


def train_many(table, args, cfg, out: Path) -> int:
    """One forecaster per value of --series-col; DIR/series/<id>/ each, DIR/metrics.csv and .json for all."""
    import csv
    from dataclasses import replace

    from ..data.tables import Table
    from ..distributed.many import map_jobs

    if args.resume:
        raise UserError("--resume is not available with --series-col; run the series again")
    ids = table.column(args.series_col, "--series-col")
    rows: dict[str, list] = {}
    for key, row in zip(ids, table.rows):
        rows.setdefault(key.strip(), []).append(row)
    names = {key: series_dir_name(key) for key in rows}
    if len(set(names.values())) != len(names):
        raise UserError("two series ids map to the same folder name; make the ids distinct")
    quiet = replace(cfg, progress=False)
    jobs = [(key, (Table(f"{table.path} (series {key!r}; rows counted within it)", table.header, r, 1), args,
                   quiet, str(out / "series" / names[key]))) for key, r in rows.items()]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log(f"rnnkit forecast: {len(jobs)} series from {args.series}, "
        + (f"{args.workers} at a time on Ray" if args.workers > 1 or args.address else "one after another"))
    records = map_jobs(_fit_series_job, jobs, workers=args.workers, address=args.address, log=log)
    table_rows = []
    for rec in records:
        r = rec["result"] if rec["ok"] else {}
        table_rows.append({"series": rec["key"], "status": "ok" if rec["ok"] else "failed",
                           "folder": f"series/{names[rec['key']]}", "n": r.get("n"), "mase": r.get("mase"),
                           "rmse": r.get("rmse"), "mae": r.get("mae"), "mase_naive": r.get("mase_naive"),
                           "mase_seasonal_naive": r.get("mase_seasonal_naive"),
                           "mase_holt_winters": r.get("mase_holt_winters"), "season": r.get("season"),
                           "train_seconds": r.get("train_seconds"), "error": rec.get("error", "")})
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(table_rows[0]))
        w.writeheader()
        w.writerows(table_rows)
    ok = [r for r in table_rows if r["status"] == "ok"]
    summary = {"task": "forecast", "series_file": str(args.series), "series_col": args.series_col,
               "columns": args.column, "horizon": args.horizon, "n_series": len(table_rows),
               "n_failed": len(table_rows) - len(ok),
               "mean_mase": float(np.mean([r["mase"] for r in ok])) if ok else None, "series": table_rows}
    write_json(out / "metrics.json", summary, indent=2, default=str)
    print(f"fitted {len(ok)} of {len(table_rows)} series"
          + (f", mean backtest MASE {summary['mean_mase']:.3f}" if ok else "")
          + ("; failed: " + ", ".join(f"{r['series']} ({r['error']})" for r in table_rows if r["status"] != "ok")
             if len(ok) < len(table_rows) else ""))
    print(f"wrote {out / 'metrics.csv'} and {out / 'metrics.json'}")
    if not ok:
        raise UserError("every series failed (see the errors above)")
    return 0


def forecast_table(model_dir, horizon=None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the next H values of the model saved in model_dir/model."""
    from ..tasks.forecast import Forecaster

    f = Forecaster.load(Path(model_dir) / "model")
    H = horizon or f.horizon
    if f.interval is not None:
        mean, lo, hi = (np.asarray(a).reshape(H, -1) for a in f.predict_interval(H))
        return (["step", "forecast", "lower", "upper"],
                [[str(h + 1), f"{mean[h, 0]:.6g}", f"{lo[h, 0]:.6g}", f"{hi[h, 0]:.6g}"] for h in range(H)])
    mean = np.asarray(f.predict(H)).reshape(H, -1)
    header = ["step"] + [f"forecast{j}" if mean.shape[1] > 1 else "forecast" for j in range(mean.shape[1])]
    return header, [[str(h + 1)] + [f"{v:.6g}" for v in mean[h]] for h in range(H)]


def _predict_series_job(key, payload):
    return forecast_table(*payload)


def predict(args):
    many = Path(args.model_dir) / "series"
    if not many.is_dir():
        header, rows = forecast_table(args.model_dir, args.horizon)
        print(",".join(header))
        for row in rows:
            print(",".join(row))
        return 0
    from ..distributed.many import map_jobs

    try:
        info = json.loads((Path(args.model_dir) / "metrics.json").read_text(encoding="utf-8"))
        fitted = [(r["series"], r["folder"]) for r in info["series"] if r["status"] == "ok"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{args.model_dir}: metrics.json does not list the fitted series; train again") from None
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    records = map_jobs(_predict_series_job, [(key, (Path(args.model_dir) / folder, args.horizon))
                                             for key, folder in fitted],
                       workers=args.workers, address=args.address, log=log)
    printed_header = False
    for rec in records:
        if not rec["ok"]:
            continue
        header, rows = rec["result"]
        if not printed_header:
            print(",".join(["series", *header]))
            printed_header = True
        for row in rows:
            print(",".join([_csv_cell(rec["key"]), *row]))
    failed = [r for r in records if not r["ok"]]
    if failed:
        log(f"rnnkit forecast: {len(failed)} of {len(records)} series could not be forecast: "
            + ", ".join(f"{r['key']} ({r['error']})" for r in failed))
    return 0 if len(failed) < len(records) else 2


def _csv_cell(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
