"""Starting and stopping Ray for one rnnkit call, and the one place that imports it."""
from __future__ import annotations

from contextlib import contextmanager

from ..errors import UserError

LOCAL_CPUS = 2                 # a local Ray gets this many CPUs unless told otherwise
OBJECT_STORE_BYTES = 200 << 20  # small: rnnkit's gradients and models are megabytes, the machine is shared


def require_ray():
    """`ray`, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("this needs Ray; install it with: pip install 'rnnkit[distributed]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None):
    """Use the Ray already initialised in this process, else connect to `address`, else start a local
    one with `num_cpus` (default LOCAL_CPUS); whatever this started is shut down on exit."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is not None:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus or LOCAL_CPUS, include_dashboard=False,
                     object_store_memory=OBJECT_STORE_BYTES, log_to_driver=True)
    except ConnectionError as e:
        raise UserError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
