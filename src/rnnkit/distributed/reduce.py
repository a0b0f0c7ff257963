"""Summing one flat buffer across the data-parallel workers (an all-reduce), two ways on Ray.

    gloo          Ray's collective library (`ray.util.collective`) on torch.distributed's gloo backend:
                  a ring all-reduce between the worker processes, outside the object store.
    object_store  every worker `ray.put`s its buffer, a small exchange actor hands each worker the list
                  of all references, and each worker fetches them and adds them up in rank order.

Both give every worker the same bits: gloo's ring sends each reduced chunk to all ranks, and the
object-store sum is taken in the same order everywhere. Which is faster is measured by
`benchmarks/scale.py` (see docs/distributed.md).
"""
from __future__ import annotations

import numpy as np

GLOO_TIMEOUT_MS = 120_000   # a worker that waits longer than this on its peers raises instead of hanging


class GlooReducer:
    """All-reduce through `ray.util.collective` with the GLOO (torch.distributed) backend."""

    def __init__(self, world: int, rank: int, group: str, exchange=None):
        import ray.util.collective as col

        if not col.gloo_available():
            from ..errors import UserError

            raise UserError("the gloo reducer needs torch (pip install torch); or pass --reducer object_store")
        col.init_collective_group(world, rank, backend="gloo", group_name=group, gloo_timeout=GLOO_TIMEOUT_MS)
        self.col, self.group = col, group

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        self.col.allreduce(buf, self.group)   # in place (the tensor shares buf's memory)
        return buf

    def close(self) -> None:
        self.col.destroy_collective_group(self.group)


class ObjectStoreReducer:
    """All-gather through the object store and a local sum in rank order."""

    def __init__(self, world: int, rank: int, group: str, exchange=None):
        import ray

        self.ray, self.rank, self.exchange, self.round = ray, rank, exchange, 0

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        ray = self.ray
        ref = ray.put(buf)
        # the reference travels inside a list so that Ray passes it on instead of fetching the value
        refs = ray.get(self.exchange.swap.remote(self.round, self.rank, [ref]))
        self.round += 1
        parts = ray.get(refs)
        np.copyto(buf, parts[0])
        for p in parts[1:]:
            buf += p
        return buf

    def close(self) -> None:
        return None


class Exchange:
    """The object-store reducer's meeting point: `swap(round, rank, [ref])` returns every rank's ref once
    all have arrived. An async actor, so the waiting calls of one round do not block each other."""

    def __init__(self, world: int):
        self.world, self.rounds = world, {}

    async def swap(self, round_: int, rank: int, wrapped: list):
        import asyncio

        r = self.rounds.get(round_)
        if r is None:
            r = self.rounds[round_] = {"refs": [None] * self.world, "all_in": asyncio.Event(), "left": self.world}
        r["refs"][rank] = wrapped[0]
        if all(x is not None for x in r["refs"]):
            r["all_in"].set()
        await r["all_in"].wait()
        r["left"] -= 1
        if r["left"] == 0:
            del self.rounds[round_]
        return r["refs"]


# name -> (reducer class, whether it needs the Exchange actor)
REDUCERS = {"gloo": (GlooReducer, False), "object_store": (ObjectStoreReducer, True)}
