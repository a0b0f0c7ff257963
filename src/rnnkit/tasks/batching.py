"""Batch orders shared by the sequence tasks."""
from __future__ import annotations

import numpy as np


def length_buckets(lengths, batch_size: int, pool: int = 20):
    """`train_batches(epoch, rng)` yielding index arrays of similar-length items (less padding): shuffle,
    sort each pool of `pool` batches by length, cut into batches, shuffle the batches."""
    lengths = np.asarray(lengths)
    n = len(lengths)

    def train_batches(epoch, rng):
        order = rng.permutation(n)
        batches = []
        for p in range(0, n, pool * batch_size):
            chunk = order[p:p + pool * batch_size]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        for j in rng.permutation(len(batches)):
            yield batches[j]
    return train_batches
