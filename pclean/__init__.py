"""pclean: Dask-parallel spectral-cube imaging that equals serial CASA tclean.

casatools is never imported at module level here: pclean.casaenv arranges the offline CASA
configuration (and the briggsbwtaper shim) before the first import in every process.
"""
from pclean.params import ParameterError
from pclean.task import pclean

__all__ = ["pclean", "ParameterError"]
