"""Dask preload for pclean workers: configure CASA and import casatools at worker start-up,
so the import (1-2 s) overlaps the coordinator's planning instead of delaying the first chunk.
Use it on your own workers too: ``dask worker --preload pclean.worker_preload ...``."""
import os


def dask_setup(worker) -> None:
    from pclean import casaenv

    os.environ["OMP_NUM_THREADS"] = "1"
    logdir = os.path.join(worker.local_directory, "pclean-logs")
    casaenv.init_worker(os.path.join(logdir, f"casa-worker-{os.getpid()}.log"))
