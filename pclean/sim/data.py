"""Varied small MeasurementSets for differential fuzzing (pclean against serial tclean): the
description (``spec``), the writer (``build``) and the random draw (``draw``) in one namespace.

>>> spec = data.draw(np.random.default_rng(7))
>>> paths = data.build_cached(spec, cache_dir)
"""
from pclean.sim.build import build, build_cached
from pclean.sim.draw import (ARRAY_WEIGHTS, ARRAYS, EAST_WEST, MAX_CUBE_CHANNELS, MAX_ROWS, Array,
                             _cube_channels, draw)
from pclean.sim.spec import (ARCSEC_PER_RAD, C_M_S, CORRS, FRAME_CODES, FRAMES,
                             GENERATOR_VERSION, IMSIZES, DataSpec, Flags, Layout, Line, Source,
                             Spw, fingerprint, from_dict, imaging_geometry, layout, nrows,
                             primary_beam_arcsec, schedule, stokes_options, to_dict, validate)

__all__ = ["ARCSEC_PER_RAD", "ARRAYS", "ARRAY_WEIGHTS", "Array", "CORRS", "C_M_S", "DataSpec",
           "EAST_WEST", "FRAMES", "FRAME_CODES", "Flags", "GENERATOR_VERSION", "IMSIZES",
           "Layout", "Line", "MAX_CUBE_CHANNELS", "MAX_ROWS", "Source", "Spw", "_cube_channels",
           "build", "build_cached", "draw", "fingerprint", "from_dict", "imaging_geometry",
           "layout", "nrows", "primary_beam_arcsec", "schedule", "stokes_options", "to_dict",
           "validate"]
