"""Build hook for the C part of pclean; project metadata lives in pyproject.toml.

The only compiled piece is the fracBW shim for weighting='briggsbwtaper' on stock casatools (see
patches/README.md). It is optional: without a C compiler pclean still installs, and
pclean.casa.fracbw.require() explains what is missing if briggsbwtaper is asked for.

    python setup.py build_ext --inplace     # puts pclean/casa/_fracbw_shim*.so next to pclean/casa/fracbw.py
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            # a plain shared library loaded with ctypes, not a Python module
            "pclean.casa._fracbw_shim",
            sources=["patches/fracbw_shim.c"],
            libraries=["dl"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall"],
            optional=True,
        )
    ],
)
