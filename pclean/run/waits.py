"""Every wait pclean makes has a deadline or a health check: a worker that dies, a job that
never starts, a scheduler that goes away ends the wait with a clear error, never silence.

``until`` is the one loop: poll what is awaited, ask ``health`` (which raises with the reason
when it can no longer come), and give up at the deadline. The others wrap it for workers to
connect, Dask futures and actor calls.
"""
from __future__ import annotations

import time


class LostWorker(RuntimeError):
    """A worker that held part of the run went away."""


class ClusterStartError(RuntimeError):
    """The cluster's workers did not come."""


POLL_S = 0.5


def until(ready, health=None, timeout_s: float | None = None, message=None,
          interval: float = POLL_S):
    """Poll ``ready()`` until it returns a value other than None or False, and return it.
    ``health()`` is called between polls; after ``timeout_s`` raise ``TimeoutError`` with
    ``message()`` (the state at that point)."""
    t0 = time.monotonic()
    while True:
        got = ready()
        if got is not None and got is not False:
            return got
        if health is not None:
            health()
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            raise TimeoutError(message() if message else f"no result after {timeout_s:.0f} s")
        time.sleep(interval)


def live_workers(client) -> set[str]:
    """Addresses of the workers the scheduler has now (a closed client: none)."""
    if client.status not in ("running", "connecting"):
        raise LostWorker(f"the Dask scheduler connection is {client.status}")
    return set(client.scheduler_info(n_workers=-1)["workers"])


def wait_for_workers(client, n: int, timeout_s: float, health=None, what: str = "workers"):
    """Wait for ``n`` workers; ``health`` raises when they cannot come."""
    def ready():
        return len(live_workers(client)) >= n

    def message():
        have = len(live_workers(client))
        seen = f"; {health.describe()}" if hasattr(health, "describe") else ""
        return (f"{have} of {n} {what} connected after {timeout_s:.0f} s (raise "
                f"cluster_timeout to wait longer){seen}; pclean stopped them")

    try:
        until(ready, health, timeout_s, message)
    except TimeoutError as exc:
        raise ClusterStartError(str(exc)) from None


def result(client, future, worker: str, what: str, interval: float = POLL_S):
    """The result of ``future`` (a Dask future or an actor call) that runs on ``worker``;
    ``LostWorker`` naming ``what`` if the worker leaves while it is awaited."""
    while True:
        try:
            return future.result(timeout=interval)
        except TimeoutError:
            pass
        if worker not in live_workers(client):
            # a finished result may still be in flight from a worker that has just ended
            try:
                return future.result(timeout=interval)
            except TimeoutError:
                raise LostWorker(lost_message(what, worker)) from None


def lost_message(what: str, worker: str) -> str:
    return (f"{what}: its worker {worker} left the cluster (killed, out of memory, or its job "
            f"ended)")


def worker_gone(client, worker: str, within_s: float = 10.0) -> bool:
    """Whether ``worker`` has left, or leaves within ``within_s`` (the scheduler notices a
    killed worker's closed connection a moment after a call to it failed)."""
    try:
        until(lambda: worker not in live_workers(client), None, within_s)
        return True
    except TimeoutError:
        return False
    except LostWorker:  # the scheduler itself is gone
        return True


def gathered(client, futures: list, what: str, interval: float = POLL_S) -> list:
    """The results of ``futures`` that any worker may run; ``LostWorker`` if none is left."""
    out = []
    for fut in futures:
        while True:
            try:
                out.append(fut.result(timeout=interval))
                break
            except TimeoutError:
                if not live_workers(client):
                    raise LostWorker(f"{what}: no worker is left in the cluster") from None
    return out
