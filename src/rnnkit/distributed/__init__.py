"""Scale-out on Ray: hyperparameter sweeps (Ray Tune), data-parallel training, one model per series.

Ray is an optional extra (`pip install 'rnnkit[distributed]'`) and is imported only inside the
functions here, never at `import rnnkit`. Everything runs on a local Ray (`ray.init(num_cpus=...)`,
started and stopped by the call) or on a running cluster given by `address`.

    sweep(task, fixed_args, space, trials, out, scheduler="fifo"|"asha")  -> {"rows", "best"}   rnnkit sweep
    train_data_parallel(task, argv, workers, reducer="gloo")             -> per-rank stats     --workers N
    map_jobs(fn, jobs, workers)                                          -> one record per job forecast --series-col
"""
from .data_parallel import train_data_parallel
from .many import map_jobs
from .space import load_space
from .sweep import sweep

__all__ = ["sweep", "train_data_parallel", "map_jobs", "load_space"]
