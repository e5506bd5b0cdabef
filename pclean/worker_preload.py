"""Dask preload for pclean workers: configure CASA (offline, OpenMP at one thread, the fracBW
shim) and import casatools while the worker starts, so the first chunk does not pay for it.
Use it on your own workers too: ``dask worker --preload pclean.worker_preload ...``."""
import os


def dask_setup(worker) -> None:
    from pclean import casa

    logdir = os.path.join(worker.local_directory, "pclean-logs")
    casa.init_worker(os.path.join(logdir, f"casa-worker-{os.getpid()}.log"))
