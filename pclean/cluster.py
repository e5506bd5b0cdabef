"""Where chunks run: an embedded LocalCluster (default), an existing Dask client or scheduler,
or SLURM batch jobs through dask-jobqueue."""
from __future__ import annotations

import contextlib
import os

import dask

# CASA allocates its grids outside Python: Dask's memory manager would see a worker "leak" and
# spill (nothing to spill: actors hold no Dask data), pause (stalling the cycle) or restart it
# (losing the chunk's state). Only the hard ceiling stays, at a deliberate limit.
WORKER_MEMORY_CONFIG = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.98,
}


@contextlib.contextmanager
def _worker_environment():
    """Environment inherited by worker subprocesses: CASA configured offline, OpenMP at one
    thread, and the memory settings above as DASK_* variables (dask.config.set does not
    reach a subprocess)."""
    from pclean import casaenv

    casaenv.configure()
    env = {"OMP_NUM_THREADS": "1"}
    for key, value in WORKER_MEMORY_CONFIG.items():
        env["DASK_" + key.replace(".", "__").replace("-", "_").upper()] = str(value)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _total_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


@contextlib.contextmanager
def connect(cluster=None, nworkers: int | None = None, worker_memory=None, options=None):
    """Yield a ``distributed.Client``; close whatever this function started."""
    from distributed import Client

    options = dict(options or {})
    if isinstance(cluster, Client):
        yield cluster
        return
    with dask.config.set(WORKER_MEMORY_CONFIG):
        if cluster in (None, "local"):
            # Workers are fresh `python -m dask spec` processes, not multiprocessing children:
            # spawn would re-import the user's __main__, and CASA scripts are flat scripts
            # with no `if __name__ == "__main__"` guard.
            from distributed.deploy.subprocess import SubprocessCluster

            n = nworkers or os.cpu_count() or 1
            limit = worker_memory or int(_total_memory() / n)
            with _worker_environment():
                local = SubprocessCluster(n_workers=n, threads_per_worker=1,
                                          dashboard_address=None,
                                          worker_kwargs={"memory_limit": limit}, **options)
                client = Client(local)
            try:
                client.wait_for_workers(n)
                yield client
            finally:
                client.close()
                local.close()
        elif cluster == "slurm":
            from dask_jobqueue import SLURMCluster

            n = nworkers or 1
            kwargs = {"cores": 1, "processes": 1, "memory": worker_memory or "4GiB"}
            kwargs.update(options)
            jobs = SLURMCluster(**kwargs)
            jobs.scale(n)
            client = Client(jobs)
            try:
                client.wait_for_workers(n)
                yield client
            finally:
                client.close()
                jobs.close()
        elif isinstance(cluster, str):
            client = Client(cluster, **options)
            try:
                if nworkers:
                    client.wait_for_workers(nworkers)
                yield client
            finally:
                client.close()
        else:
            raise ValueError(f"cluster must be None, 'local', 'slurm', a scheduler address or a "
                             f"distributed.Client, got {cluster!r}")


def worker_addresses(client, nworkers: int | None = None) -> list[str]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    return workers[:nworkers] if nworkers else workers
