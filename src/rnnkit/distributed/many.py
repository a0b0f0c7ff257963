"""Many small jobs, one per series (or per user): fitted in parallel on Ray, or one after another.

`map_jobs(fn, jobs, workers)` runs `fn(key, payload)` for every (key, payload) and returns one record
per job, in the input order: {"key", "ok": True, "result"} or {"key", "ok": False, "error"}. A job
that raises (bad data in one series, a diverging fit) is reported in its record and the others go on.
With workers > 1 and Ray installed, each job is a Ray task with one CPU, so a cluster runs as many at
once as it has CPUs; otherwise (workers == 1, or Ray missing) they run serially in this process.
"""
from __future__ import annotations

import traceback

from .session import ray_session


def _error_text(e: BaseException) -> str:
    """One line for the table: the original exception inside a Ray task error, if it is one."""
    cause = getattr(e, "cause", None)
    e = cause if isinstance(cause, BaseException) else e
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")


def _serial(fn, jobs, log):
    records = []
    for key, payload in jobs:
        try:
            records.append({"key": key, "ok": True, "result": fn(key, payload)})
        except Exception as e:  # noqa: BLE001 - one job's failure is data for the table, not fatal
            records.append({"key": key, "ok": False, "error": _error_text(e)})
            log(f"rnnkit: {key}: {records[-1]['error']}")
            if not isinstance(e, ValueError):
                log(traceback.format_exc(limit=3))
    return records


def map_jobs(fn, jobs, workers: int = 1, address: str | None = None, log=print) -> list[dict]:
    """Run fn(key, payload) for each (key, payload) of `jobs`; see the module docstring."""
    jobs = list(jobs)
    if workers <= 1 and address is None:
        return _serial(fn, jobs, log)
    try:
        import ray  # noqa: F401  (only: is it there?)
        del ray
    except ImportError:
        log("rnnkit: Ray is not installed; fitting the series one after another "
            "(pip install 'rnnkit[distributed]' to run them in parallel)")
        return _serial(fn, jobs, log)
    with ray_session(address, None if address else workers) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = [task.remote(key, payload) for key, payload in jobs]
        records = []
        for (key, _), ref in zip(jobs, refs):
            try:
                records.append({"key": key, "ok": True, "result": ray.get(ref)})
            except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError,
                    ray.exceptions.WorkerCrashedError) as e:
                records.append({"key": key, "ok": False, "error": _error_text(e)})
                log(f"rnnkit: {key}: {records[-1]['error']}")
        return records
