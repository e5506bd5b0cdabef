"""The chunks of one run, called together: the facade the cycle loop is written against.

``run(*steps)`` sends a stretch of steps to every chunk at once (one call per chunk) and waits;
the result is each step's per-chunk results under its key. Events go to the observers (see
``events``). :class:`DaskChunkSet` is the real one (a Dask actor per chunk, pinned to the
worker ``placement`` chose); an in-process one for tests only needs ``_call``.
"""
from __future__ import annotations

import time

from pclean.run import events, waits
from pclean.workers.steps import PerChunk, Step


class Results(dict):
    """{step key: [result of each chunk, in chunk order]}."""


class ChunkSet:
    def __init__(self, specs: list, observers: list | None = None):
        self.specs = list(specs)
        self.observers = list(observers or [])
        self.minor_cycles = 0
        self.iterations = 0

    def emit(self, event) -> None:
        for obs in self.observers:
            obs.notify(event)

    def run(self, *steps: Step) -> Results:
        keys = [s.result_key for s in steps]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two steps of one stretch return under the same key: {keys}")
        names = tuple(s.name for s in steps)
        self.emit(events.StretchStarted(names))
        t0 = time.perf_counter()
        calls = [[tuple(a[k] if isinstance(a, PerChunk) else a for a in s.call())
                  for s in steps] for k in range(len(self.specs))]
        per_chunk = self._call(calls)
        out = Results({key: [r[i] for r in per_chunk] for i, key in enumerate(keys)})
        self.emit(events.StretchEnded(names, time.perf_counter() - t0))
        for s in steps:
            if s.name == "minor_cycle":
                self._count(out[s.result_key])
            elif s.name == "status":
                self.emit(events.Busy(tuple(r.get("busy_s", {}) for r in out[s.result_key])))
        return out

    def _count(self, records: list[dict]) -> None:
        self.minor_cycles += 1
        done = sum(int(r["iterdone"]) for per_field in records for r in per_field.values())
        peak = max([float(r["peakresidual"]) for per_field in records
                    for r in per_field.values()] or [0.0])
        self.iterations += done
        self.emit(events.Iterations(self.minor_cycles, done, self.iterations, peak))

    def _call(self, calls: list[list[tuple]]) -> list[list]:
        """Run chunk k's ``calls[k]`` (``(method, *args)`` each) on every chunk at once; each
        chunk's list of results."""
        raise NotImplementedError

    def close(self) -> None:
        """Close every chunk after a failure: the first error is the one to report."""
        try:
            self._call([[("close",)] for _ in self.specs])
        except Exception:
            pass


class DaskChunkSet(ChunkSet):
    """A ChunkImager actor per chunk, on the worker given for it."""

    def __init__(self, client, specs: list, workers: list[str], observers=None):
        from pclean.workers.actor import ChunkImager

        super().__init__(specs, observers)
        self.client, self.workers = client, list(workers)
        futures = [client.submit(ChunkImager, spec, actor=True, pure=False, workers=[worker],
                                 allow_other_workers=False)
                   for spec, worker in zip(self.specs, workers)]
        # a task pinned to a worker that has gone waits for it for ever: health-checked waits
        self.actors = [waits.result(client, f, w, _describe(spec))
                       for spec, f, w in zip(self.specs, futures, self.workers)]

    def _call(self, calls):
        futures = [actor.run(c) for actor, c in zip(self.actors, calls)]
        out = []
        for spec, fut, worker in zip(self.specs, futures, self.workers):
            try:
                out.append(waits.result(self.client, fut, worker, _describe(spec)))
            except waits.LostWorker:
                raise
            except Exception as exc:
                if waits.worker_gone(self.client, worker):  # the call failed as it died
                    raise waits.LostWorker(waits.lost_message(_describe(spec), worker)) from exc
                raise RuntimeError(f"{spec.name} failed in {exc}"
                                   f" -- CASA logs in {spec.logdir}") from exc
        return out

    def close(self) -> None:
        if any(w not in waits.live_workers(self.client) for w in self.workers):
            return  # a chunk's worker is gone: the others are closed with the cluster
        super().close()


def _describe(spec) -> str:
    return spec.name  # "chunk 3 (channels 12-15)"
