"""The chunks of one run, called together: the facade the cycle loop is written against.

``run(*steps)`` sends a stretch of steps to every chunk at once (one call per chunk) and waits;
the result is each step's per-chunk results under its key. Events go to the observers (see
``events``). :class:`DaskChunkSet` is the real one (a Dask actor per chunk, pinned to the
worker ``placement`` chose); an in-process one for tests only needs ``_call``.
"""
from __future__ import annotations

import time

from pclean.params import resources
from pclean.run import checkpoint, events, waits
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
    """A ChunkImager actor per chunk, on the worker given for it.

    Every completed stretch is checkpointed (``log``: the calls and results, see
    ``checkpoint``). A run resumed from its checkpoints (``recorded``) replays them to the
    caller without calling any chunk, as long as the caller asks for the same calls (the cycle
    loop and its iteration control, fed the same records, do), and only then starts the actors,
    each continuing from its images after the last recorded stretch.

    A chunk whose worker is lost (killed, out of memory, its job ended) is rebuilt the same
    way: a new actor on the live worker with the fewest chunks continues from the chunk's
    images after the last completed stretch (``workers.undo`` rolls back the one in progress)
    and runs the stretch in progress again. A chunk's state is a function of its spec and the
    calls it has received (its neighbours' halo planes are kept by cycle,
    ``workers.planes.version``), so the cube is bit-identical to an undisturbed run's. At most
    ``distributed.scheduler.allowed-failures`` rebuilds per chunk (Dask's convention for a
    task), then an error naming the chunk."""

    def __init__(self, client, specs: list, workers: list[str], observers=None, log=None,
                 recorded: list | None = None):
        import dask

        super().__init__(specs, observers)
        self.client, self.workers = client, list(workers)
        self.allowed_failures = int(dask.config.get("distributed.scheduler.allowed-failures", 3))
        self.log = log  # checkpoint.StretchLog, or None
        self.resuming = recorded is not None  # chunk directories may hold an earlier try
        self.recorded = list(recorded or [])
        self.replayed = 0
        self.history: list[list] = [[] for _ in self.specs]  # every stretch's calls, per chunk
        self.psf: list = [None] * len(self.specs)  # each chunk's make_psf result
        self.failures = [0] * len(self.specs)
        self.checkpoint_s = 0.0  # writing the checkpoints, on the coordinator
        self.actors = None
        if not self.recorded:
            self._start()

    def _start(self) -> None:
        """An actor per chunk, continuing after the stretches it has seen (none: new)."""
        resumed = self.resuming
        futures = [self._submit(k, w) for k, w in enumerate(self.workers)]
        self.actors, lost = [], {}
        for k, fut in enumerate(futures):
            try:
                self.actors.append(waits.result(self.client, fut, self.workers[k],
                                                _describe(k, self)))
            except waits.LostWorker as exc:
                self.actors.append(None)
                lost[k] = exc
        for k, exc in lost.items():
            self._rebuild(k, None, exc)
        if resumed:
            self.emit(events.Resumed(self.replayed, checkpoint.chunk_state(
                self.history[0], self.psf[0])["minor_done"]))

    def _replay(self, calls):
        """The recorded results of the next recorded stretch, if ``calls`` are its calls."""
        rec_calls, rec_results = self.recorded[self.replayed]
        if not checkpoint.same_calls(calls, rec_calls):
            raise RuntimeError(
                f"resuming: stretch {self.replayed + 1} asks for other calls than the "
                f"checkpointed run made ({[c[0] for c in calls[0]]} against "
                f"{[c[0] for c in rec_calls[0]]}); remove the work directory "
                f"{self.specs[0].workdir.root} to image afresh")
        self.replayed += 1
        self._done(rec_calls, rec_results, log=False)
        return rec_results

    def _done(self, calls, results, log: bool = True) -> None:
        for k, c in enumerate(calls):
            self.history[k].append(c)
            for i, (name, *_args) in enumerate(c):
                if name == "make_psf":
                    self.psf[k] = results[k][i]
        if log and self.log is not None:
            t0 = time.perf_counter()
            self.log.append(calls, results)
            self.checkpoint_s += time.perf_counter() - t0

    def _submit(self, k: int, worker: str):
        from pclean.workers.actor import ChunkImager

        resume = checkpoint.chunk_state(self.history[k], self.psf[k]) if (
            self.history[k] or self.failures[k] or self.resuming) else None
        # pinned: a task waiting for a worker that has gone waits for ever, hence the
        # health-checked waits (waits.result)
        return self.client.submit(ChunkImager, self.specs[k], resume, actor=True, pure=False,
                                  workers=[worker], allow_other_workers=False)


    def _result(self, k: int, fut):
        worker = self.workers[k]
        try:
            return waits.result(self.client, fut, worker, _describe(k, self))
        except waits.LostWorker:
            raise
        except Exception as exc:
            if waits.worker_gone(self.client, worker):  # the call failed as it died
                raise waits.LostWorker(waits.lost_message(_describe(k, self), worker)) from exc
            full = resources.full_file_system([self.specs[k].workdir.root])
            if full:  # CASA's own message names a table, not the disk
                raise OSError(28, f"{self.specs[k].name}: the file system of {full} is full "
                                  f"({exc}); the work directory is kept") from exc
            raise RuntimeError(f"{self.specs[k].name} failed in {exc}"
                               f" -- CASA logs in {self.specs[k].logdir}") from exc

    def _call(self, calls):
        if self.replayed < len(self.recorded):
            return self._replay(calls)
        if self.actors is None:
            self._start()
        futures = [self._send(k, c) for k, c in enumerate(calls)]
        out, lost = [], {}
        for k, fut in enumerate(futures):
            try:
                if isinstance(fut, waits.LostWorker):
                    raise fut
                out.append(self._result(k, fut))
                self.emit(events.ChunkDone(k, k + 1, len(futures)))
            except waits.LostWorker as exc:
                out.append(None)
                lost[k] = exc
        # only once nothing else runs: CASA's tools are not thread-safe, and a worker runs a
        # new actor's set-up (a task) and its other actors' calls on different threads
        # (measured: the worker a chunk was rebuilt on while its own chunk made its psf died)
        for k, exc in lost.items():
            out[k] = self._rebuild(k, calls[k], exc)
        self._done(calls, out)
        return out

    def _send(self, k: int, calls):
        """Start chunk ``k``'s stretch; a LostWorker (not raised) if its actor's worker is
        known to be gone (Dask refuses the call: "Worker holding Actor was lost")."""
        try:
            return self.actors[k].run(calls)
        except Exception as exc:
            if waits.worker_gone(self.client, self.workers[k]):
                lost = waits.LostWorker(waits.lost_message(_describe(k, self), self.workers[k]))
                lost.__cause__ = exc
                return lost
            raise

    def _rebuild(self, k: int, current, lost: Exception):
        """Chunk ``k`` on a live worker, continuing after its last completed stretch, then
        ``current`` (the stretch in progress, or None at creation); its result."""
        from pclean import casa

        spec = self.specs[k]
        while True:
            full = resources.full_file_system([spec.workdir.root])
            if full:  # CASA aborts a worker on a full disk (an uncaught AipsError): not again
                raise OSError(28, f"{lost} -- the file system of {full} is full; the work "
                                  f"directory is kept") from lost
            self.failures[k] += 1
            if self.failures[k] > self.allowed_failures:
                raise waits.LostWorker(
                    f"{lost} -- {spec.name} was lost {self.failures[k]} times, more than "
                    f"distributed.scheduler.allowed-failures ({self.allowed_failures}); the work "
                    f"directory is kept") from lost
            live = sorted(waits.live_workers(self.client))
            if not live:
                raise waits.LostWorker(f"{lost} -- and no worker is left to rebuild it on")
            worker = min(live, key=lambda w: (self.workers.count(w), w))
            casa.log(f"pclean: {lost}; rebuilding {spec.name} on {worker} (from its images "
                     f"after stretch {len(self.history[k])})", "WARN")
            self.emit(events.ChunkRebuilt(spec.index, self.workers[k], worker,
                                          len(self.history[k])))
            self.workers[k] = worker
            try:
                self.actors[k] = self._result(k, self._submit(k, worker))
                if current is None:
                    return None
                sent = self._send(k, current)
                if isinstance(sent, waits.LostWorker):
                    raise sent
                return self._result(k, sent)
            except waits.LostWorker as again:
                lost = again

    def close(self) -> None:
        if self.actors is None:
            return  # replayed only: no actor was started
        if any(w not in waits.live_workers(self.client) for w in self.workers):
            return  # a chunk's worker is gone: the others are closed with the cluster
        # closing after a failure is not a stretch of the run: the actors' own close, so that
        # their images stay as the stretch in progress left them (``workers.undo``)
        try:
            futures = {k: actor.close() for k, actor in enumerate(self.actors)
                       if actor is not None}
            for k, fut in futures.items():
                waits.result(self.client, fut, self.workers[k], _describe(k, self))
        except Exception:
            pass


def _describe(k: int, chunks: DaskChunkSet) -> str:
    return chunks.specs[k].name  # "chunk 3 (channels 12-15)"
