"""Moved to `rnnkit.layers.heads` (pooling math belongs with the layers); re-exported for old imports."""
from ..layers.heads import (LOG_SIGMA_MAX, LOG_SIGMA_MIN, POOLINGS, PoolCache, gaussian_nll,  # noqa: F401
                            pool_backward, pool_forward, weighted_cross_entropy)
