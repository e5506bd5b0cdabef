"""Build hook for the C part of pclean; project metadata lives in pyproject.toml.

The only compiled piece is the fracBW shim for weighting='briggsbwtaper' on stock casatools (see
patches/README.md). It is optional: without a C compiler pclean still installs, and
pclean.fracbw.require() explains what is missing if briggsbwtaper is asked for.

    python setup.py build_ext --inplace     # puts pclean/_fracbw_shim*.so next to pclean/fracbw.py
"""
from setuptools import Extension, setup

setup(
    packages=["pclean"],
    ext_modules=[
        Extension(
            "pclean._fracbw_shim",  # a plain shared library loaded with ctypes, not a Python module
            sources=["patches/fracbw_shim.c"],
            libraries=["dl"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall"],
            optional=True,
        )
    ],
)
