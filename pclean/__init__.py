"""pclean: Dask-parallel spectral-cube imaging that equals serial CASA tclean.

casatools is imported through pclean.casaenv, which arranges the offline CASA configuration
(and loads the briggsbwtaper shim) before the first import in every process.
"""
from pclean.compare import compare_prefixes, run_and_compare
from pclean.dataset import open_dataset
from pclean.fitsio import export as exportfits
from pclean.params import ParameterError
from pclean.task import pclean

__all__ = ["pclean", "ParameterError", "open_dataset", "compare_prefixes", "run_and_compare",
           "exportfits"]
