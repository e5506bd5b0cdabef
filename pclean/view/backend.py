"""pclean's image sets as an xarray backend engine:

>>> import xarray as xr
>>> ds = xr.open_dataset("cube.image", engine="pclean")          # the set of prefix "cube"
>>> ds = xr.open_dataset("cube", engine="pclean", products=["image", "psf"], chunks={})

Registered under ``xarray.backends`` (pyproject's entry points). The variables are xarray's
lazily indexed arrays over ``view.dataset``'s ``BackendArray``: nothing is read before it is
indexed; ``chunks=`` gives dask arrays the way xarray does for every backend.
"""
from __future__ import annotations

import os

from xarray.backends import BackendEntrypoint

from pclean.products import PRODUCTS
from pclean.view import dataset


def prefix_and_products(path: str, products=None) -> tuple[str, object]:
    """``cube.image`` -> ("cube", products); a prefix stays a prefix."""
    path = os.fspath(path).rstrip("/")
    for product in sorted(PRODUCTS, key=len, reverse=True):  # image.pbcor before image
        if path.endswith("." + product) and os.path.isdir(path):
            return path[: -len(product) - 1], products
    return path, products


class PcleanBackendEntrypoint(BackendEntrypoint):
    description = "A set of CASA images of one prefix (tclean's and pclean's products)"
    url = "https://github.com/pclean/pclean"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "products", "masked")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, products=None,
                     masked=False):
        prefix, products = prefix_and_products(filename_or_obj, products)
        ds = dataset.open_dataset(prefix, products, masked=masked, lazy="xarray")
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        return (os.path.isfile(os.path.join(path, "table.dat"))
                and any(path.rstrip("/").endswith("." + p) for p in PRODUCTS))
