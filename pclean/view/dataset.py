"""A set of CASA images (``<prefix>.image``, ``.residual``, ...) as one lazy ``xarray.Dataset``.

>>> ds = open_dataset("cube")                  # every product that exists
>>> ds.image.sel(stokes="I").isel(chan=3).values
>>> ds.frequency.values                        # Hz, in ds.attrs["spectral_frame"]
>>> ds.beam_major.sel(product="image")         # arcsec, per Stokes and channel

Layout (numpy order, as astropy reads the FITS export): each product is a variable with dims
``(stokes, chan, y, x)``; ``.sumwt`` (one value per plane) has dims ``(stokes, chan)``.
Coordinates: ``chan`` (index), ``frequency`` (Hz, per channel, in the image's spectral frame),
``stokes`` (labels), ``l``/``m`` (projection-plane offsets from the reference direction, arcsec,
along x/y), and ``ra``/``dec`` (degrees, per pixel, computed lazily by casatools). Per-plane
restoring beams are ``beam_major``/``beam_minor`` (arcsec) and ``beam_pa`` (deg) with dims
``(product, stokes, chan)``: NaN where a product has no beam.

Pixels are read on demand: every dask chunk opens the image with casatools' image tool, reads its
box with ``getchunk`` and closes it again, so the dataset can be pickled to Dask workers and works
on both plain CASA images and the virtual concatenations of ``pclean(gather='virtual')`` (which
the table tool cannot open). Values are returned as stored (pixel masks are not applied) unless
``masked=True``.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from pclean import casa
from pclean.view.beams import beam_table
from pclean.products import PRODUCTS

DIMS = ("stokes", "chan", "y", "x")
# casatools' tools are not thread-safe: concurrent getchunk calls from dask's threads crash the
# process (seen: SIGSEGV in image.getchunk). Every casatools call of a dask task holds this lock.
_CASA_LOCK = threading.RLock()
_DTYPES = {"float": np.float32, "double": np.float64, "complex": np.complex64,
           "dcomplex": np.complex128}


def product_paths(prefix: str, products=None) -> dict[str, str]:
    """``{product: path}`` of the images of ``prefix`` (all of pclean's products that exist when
    ``products`` is None). FileNotFoundError if a requested product, or every product, is absent."""
    prefix = os.fspath(prefix)
    if products is None:
        found = {p: f"{prefix}.{p}" for p in PRODUCTS if os.path.isdir(f"{prefix}.{p}")}
        if not found:
            hint = ""
            base, _, ext = prefix.rpartition(".")
            if base and os.path.isdir(prefix):
                hint = f" ({prefix} is itself an image: did you mean the prefix {base!r}?)"
            raise FileNotFoundError(
                f"no images with prefix {prefix!r}: none of "
                + ", ".join(f"{prefix}.{p}" for p in PRODUCTS) + " exists" + hint)
        return found
    products = [products] if isinstance(products, str) else list(products)
    missing = [f"{prefix}.{p}" for p in products if not os.path.isdir(f"{prefix}.{p}")]
    if missing:
        raise FileNotFoundError("image(s) not found: " + ", ".join(missing))
    return {p: f"{prefix}.{p}" for p in products}


def _backend_array():
    from xarray.backends import BackendArray

    return BackendArray


class _CasaImageArray(_backend_array()):
    """One CASA image in ``DIMS`` order as xarray's lazy ``BackendArray`` (xarray's explicit
    indexers, reduced to boxes by ``explicit_indexing_adapter``) and as a dask source (plain
    tuples of ints and slices); each read opens and closes the image."""

    def __init__(self, path: str, shape_casa, perm, dtype, masked: bool):
        self.path = path
        self.shape_casa = tuple(int(n) for n in shape_casa)
        self.perm = tuple(perm)  # perm[i] = CASA axis of dataset dim i
        self.shape = tuple(self.shape_casa[a] for a in self.perm)
        self.dtype = np.dtype(dtype)
        self.masked = masked

    def __getitem__(self, key):
        from xarray.core import indexing

        if isinstance(key, indexing.ExplicitIndexer):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, self._box)
        return self._box(key)

    def _box(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        starts, stops, post = [], [], []
        for k, n in zip(key, self.shape):
            if isinstance(k, (int, np.integer)):
                k = int(k) + n if k < 0 else int(k)
                starts.append(k)
                stops.append(k + 1)
                post.append(0)
            else:
                start, stop, step = k.indices(n)
                if stop <= start:
                    return np.zeros(tuple(0 for _ in range(self.ndim)), self.dtype)
                starts.append(start)
                stops.append(stop)
                post.append(slice(None, None, step))
        blc = [0] * self.ndim
        trc = [0] * self.ndim
        for i, axis in enumerate(self.perm):
            blc[axis], trc[axis] = starts[i], stops[i] - 1
        with _CASA_LOCK:
            ia = casa.tools().image()
            try:
                ia.open(self.path)
                data = ia.getchunk(blc=blc, trc=trc, dropdeg=False)
                good = ia.getchunk(blc=blc, trc=trc, dropdeg=False, getmask=True) \
                    if self.masked else None
            finally:
                ia.close()
                ia.done()
        if good is not None:
            data = np.where(good, data, np.nan)
        data = np.asarray(data, dtype=self.dtype).transpose(self.perm)
        return data[tuple(post)]


def _axis_perm(cs) -> tuple[int, int, int, int]:
    """CASA axes of (stokes, chan, y, x)."""
    types = list(cs.axiscoordinatetypes())
    try:
        xdir = [i for i, t in enumerate(types) if t == "Direction"]
        return types.index("Stokes"), types.index("Spectral"), xdir[1], xdir[0]
    except (ValueError, IndexError):
        raise ValueError(f"not a cube with direction, Stokes and spectral axes (axes: {types})") \
            from None


def _direction_offsets(cs, xaxis: int, yaxis: int, nx: int, ny: int):
    inc = cs.increment(format="n")["numeric"]
    ref = cs.referencepixel()["numeric"]
    rad2as = 180 / np.pi * 3600
    units = cs.units()
    scale = [rad2as if units[a] == "rad" else 1.0 for a in (xaxis, yaxis)]
    l_ = (np.arange(nx) - ref[xaxis]) * inc[xaxis] * scale[0]
    m_ = (np.arange(ny) - ref[yaxis]) * inc[yaxis] * scale[1]
    return l_, m_


def _radec_rows(csrec: dict, naxes: int, xaxis: int, yaxis: int, nx: int, rows) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(nx), indexing="ij")
    pix = np.zeros((naxes, yy.size))
    pix[xaxis] = xx.ravel()
    pix[yaxis] = yy.ravel()
    with _CASA_LOCK:
        cs = casa.tools().coordsys()
        try:
            cs.fromrecord(csrec)
            world = cs.toworldmany(pix)["numeric"]
            units = cs.units()
        finally:
            cs.done()
    out = np.empty((2,) + yy.shape)
    for k, axis in enumerate((xaxis, yaxis)):
        factor = 180 / np.pi if units[axis] == "rad" else 1.0
        out[k] = world[axis].reshape(yy.shape) * factor
    return out


def _lazy_radec(rec: dict, perm, ny: int, nx: int, rows_per_block: int = 256):
    import dask
    import dask.array as da

    _s, _c, yaxis, xaxis = perm
    naxes = len(perm)
    blocks = []
    for start in range(0, ny, rows_per_block):
        rows = range(start, min(ny, start + rows_per_block))
        part = dask.delayed(_radec_rows, pure=True)(rec, naxes, xaxis, yaxis, nx, rows)
        blocks.append(da.from_delayed(part, shape=(2, len(rows), nx), dtype=np.float64))
    both = da.concatenate(blocks, axis=1)
    return both[0], both[1]


def _normalize_chunks(chunks, shape) -> tuple:
    if chunks is None:
        chunks = {}
    elif isinstance(chunks, (int, np.integer)):
        chunks = {"chan": int(chunks)}
    elif not isinstance(chunks, dict):
        raise TypeError("chunks must be a dict of dimension -> size, an int (channels per "
                        "chunk) or None")
    unknown = set(chunks) - set(DIMS)
    if unknown:
        raise ValueError(f"chunks: unknown dimensions {sorted(unknown)} (dims are {DIMS})")
    sizes = {"stokes": -1, "chan": 1, "y": -1, "x": -1} | dict(chunks)
    return tuple(n if sizes[d] in (-1, None) else min(int(sizes[d]), n)
                 for d, n in zip(DIMS, shape))


def open_dataset(prefix: str, products=None, chunks=None, masked: bool = False,
                 lazy: str = "dask"):
    """Open ``<prefix>.<product>`` images as a lazy, dask-backed ``xarray.Dataset``.

    products: names such as ``["image", "residual"]``; default every product of
        ``pclean.params.PRODUCTS`` that exists.
    chunks: dask chunk sizes by dimension (default ``{"chan": 1}``: one chunk per channel
        holding every Stokes plane and the whole sky plane); an int means channels per chunk.
    masked: replace pixels outside each image's default pixel mask with NaN.
    lazy: "dask" (dask arrays) or "xarray" (xarray's lazily indexed arrays, as its backends
        return them: ``xr.open_dataset(..., engine="pclean")``, see ``view.backend``).

    All products must share the channel frequencies, Stokes and (except ``sumwt``'s 1x1 plane)
    the sky grid: ValueError otherwise. FileNotFoundError if no image of ``prefix`` exists.
    """
    import dask.array as da
    import xarray as xr

    paths = product_paths(prefix, products)
    ct = casa.tools()
    infos = {}
    with _CASA_LOCK:
        ia = ct.image()
        try:
            for prod, path in paths.items():
                ia.open(path)
                try:
                    infos[prod] = _describe(ia, path, ct)
                finally:
                    ia.close()
        finally:
            ia.done()
    planar = [p for p, i in infos.items() if i["shape"][2:] != (1, 1)]
    first = planar[0] if planar else next(iter(infos))
    grid = infos[first]
    for prod, info in infos.items():
        _check_same(grid, info, prod, first, spatial=prod in planar)

    data_vars = {}
    for prod, info in infos.items():
        array = _CasaImageArray(info["path"], info["shape_casa"], info["perm"], info["dtype"],
                                masked)
        if lazy == "xarray":
            from xarray.core import indexing

            data = indexing.LazilyIndexedArray(array)
            plane = indexing.BasicIndexer((slice(None), slice(None), 0, 0))
        else:
            data = da.from_array(array, chunks=_normalize_chunks(chunks, info["shape"]),
                                 name=f"pclean-image-{prod}-" + _token(info["path"], masked),
                                 lock=False, asarray=False,
                                 meta=np.empty((0,) * 4, info["dtype"]))
            plane = (slice(None), slice(None), 0, 0)
        if prod in planar or not planar:
            data_vars[prod] = (DIMS, data, info["attrs"])
        else:  # sumwt: one value per plane
            data_vars[prod] = (DIMS[:2], data[plane], info["attrs"])

    nstokes, nchan, ny, nx = grid["shape"]
    coords = {
        "chan": ("chan", np.arange(nchan)),
        "frequency": ("chan", grid["freqs"], {"units": "Hz", "frame": grid["frame"],
                                              "long_name": "channel frequency"}),
        "stokes": ("stokes", grid["stokes"]),
        "product": ("product", list(paths)),
    }
    if any(len(v[0]) == 4 for v in data_vars.values()):
        perm = grid["perm"]
        with _CASA_LOCK:
            cs = ct.coordsys()
            cs.fromrecord(grid["csrec"])
            l_, m_ = _direction_offsets(cs, perm[3], perm[2], nx, ny)
            frame = cs.referencecode("direction")[0]
            cs.done()
        ra, dec = _lazy_radec(grid["csrec"], perm, ny, nx)
        coords.update({
            "l": ("x", l_, {"units": "arcsec", "long_name": "offset from the reference "
                            "direction in the projection plane (x)"}),
            "m": ("y", m_, {"units": "arcsec", "long_name": "offset from the reference "
                            "direction in the projection plane (y)"}),
            "ra": (("y", "x"), ra, {"units": "deg", "frame": frame}),
            "dec": (("y", "x"), dec, {"units": "deg", "frame": frame}),
        })
    stacked = np.stack([infos[p]["beams"] for p in paths], axis=1)  # (3, product, stokes, chan)
    for k, (name, unit) in enumerate((("beam_major", "arcsec"), ("beam_minor", "arcsec"),
                                      ("beam_pa", "deg"))):
        data_vars[name] = (("product", "stokes", "chan"), stacked[k], {"units": unit})
    attrs = dict(grid["provenance"], prefix=os.path.abspath(os.fspath(prefix)),
                 spectral_frame=grid["frame"], products=list(paths))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _describe(ia, path: str, ct) -> dict:
    cs = ia.coordsys()
    try:
        perm = _axis_perm(cs)
        shape_casa = tuple(int(n) for n in ia.shape())
        shape = tuple(shape_casa[a] for a in perm)
        beams = beam_table(ia.restoringbeam(), shape[0], shape[1])
        return {
            "path": os.path.abspath(path),
            "perm": perm,
            "shape_casa": shape_casa,
            "shape": shape,
            "dtype": _DTYPES.get(ia.pixeltype(), np.float32),
            "frame": cs.referencecode("spectral")[0],
            "stokes": list(cs.stokes()),
            "freqs": _frequencies(cs, perm, shape_casa),
            "csrec": cs.torecord(),
            "beams": beams,
            "provenance": _provenance(cs, ct),
            "attrs": {
                "units": ia.brightnessunit(),
                "path": os.path.abspath(path),
                "storage": "virtual" if os.path.exists(os.path.join(path, "imageconcat.json"))
                else "paged",
                "has_beam": int(not np.all(np.isnan(beams))),
                "pixel_mask": ia.maskhandler("default")[0],  # '' when there is none
            },
        }
    finally:
        cs.done()


def _frequencies(cs, perm, shape_casa) -> np.ndarray:
    spec_axis = perm[1]
    nchan = shape_casa[spec_axis]
    pix = np.zeros((len(shape_casa), nchan))
    pix[spec_axis] = np.arange(nchan)
    world = cs.toworldmany(pix)["numeric"][spec_axis]
    unit = cs.units()[spec_axis]
    qa = casa.tools().quanta()
    return np.asarray(world, dtype=np.float64) * qa.convert(qa.quantity(1.0, unit), "Hz")["value"]


def _check_same(grid: dict, info: dict, prod: str, first: str, spatial: bool) -> None:
    """Products of one set must share Stokes, channels and (planar ones) the sky grid."""
    if grid["shape"][:2] != info["shape"][:2] or (spatial and grid["shape"] != info["shape"]):
        raise ValueError(f"{info['path']}: shape (stokes, chan, y, x) {info['shape']} differs "
                         f"from .{first}'s {grid['shape']}")
    if grid["frame"] != info["frame"]:
        raise ValueError(f"{info['path']}: spectral frame {info['frame']} differs from "
                         f".{first}'s {grid['frame']}")
    if grid["stokes"] != info["stokes"]:
        raise ValueError(f"{info['path']}: Stokes {info['stokes']} differ from "
                         f".{first}'s {grid['stokes']}")
    if not np.allclose(grid["freqs"], info["freqs"], rtol=1e-9, atol=0):
        raise ValueError(f"{info['path']}: channel frequencies differ from .{first}'s")


def _provenance(cs, ct) -> dict:
    """Dataset attrs: where the pixels and their coordinates came from."""
    qa = ct.quanta()
    attrs = {
        "telescope": cs.telescope(),
        "observer": cs.observer(),
        "direction_frame": cs.referencecode("direction")[0],
        "projection": cs.projection()["type"],
        "casa_version": ct.version_string(),
    }
    try:
        attrs["rest_frequency_hz"] = float(qa.convert(cs.restfrequency(), "Hz")["value"][0])
    except (KeyError, IndexError, TypeError, RuntimeError):
        attrs["rest_frequency_hz"] = float("nan")
    try:
        epoch = cs.epoch()
        attrs["obs_date"] = qa.time(epoch["m0"], form="fits")[0] + " " + epoch["refer"]
    except (KeyError, IndexError, RuntimeError):
        pass
    return attrs


def _token(path: str, masked: bool) -> str:
    from dask.base import tokenize

    stamp = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            if f.startswith("table.f") or f == "imageconcat.json":
                st = os.stat(os.path.join(root, f))
                stamp.append((os.path.join(root, f), st.st_mtime_ns, st.st_size))
    return tokenize(os.path.abspath(path), masked, sorted(stamp))
