"""pclean: Dask-parallel spectral-cube imaging that equals serial CASA tclean.

casatools is imported through ``pclean.casa.tools()``, which arranges the offline CASA
configuration (and loads the briggsbwtaper shim) before the first import in every process.

The stages, each a subpackage, data flowing one way: ``params`` (tclean parameters -> a plan,
on the coordinator) -> ``workers`` (a chunk's CASA tools, on Dask workers) -> ``run`` (the
cluster and tclean's cycles over the chunks) -> ``gather`` (the final cube) -> ``view`` (xarray,
FITS) and ``compare`` -> ``cli``; ``casa`` (the offline CASA environment) and ``products``
underneath all, ``api`` (``pclean()``) on top.

The public names below are imported on first use: a Dask worker imports ``pclean.workers``
(casatools only, 0.3 s). Neither workers nor the coordinator import casatasks (1.2-2 s): the
coordinator reads tclean's definition and takes casatasks' imager helpers without it
(``pclean.casa.helpers``); only the serial fallback and ``pclean compare`` run casatasks' tclean.
"""
import importlib

_PUBLIC = {"pclean": "pclean.api", "run_and_compare": "pclean.api",
           "ParameterError": "pclean.params.errors", "open_dataset": "pclean.view.dataset",
           "compare_prefixes": "pclean.compare.metrics", "exportfits": "pclean.view.fitsio"}
_ATTR = {"exportfits": "export"}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pclean' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), _ATTR.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
