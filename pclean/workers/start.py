"""What a chunk's images start from: nothing (a new clean), its channels of an earlier call's
images (a continued clean, calcres=False), or its channels of a start model."""
from __future__ import annotations

import os

from pclean.params.chunking import ChunkSpec
from pclean.workers import planes

# what a continued clean reads of the earlier call's images
CONTINUED = ("psf", "residual", "model", "mask", "pb", "sumwt", "weight")


def images(spec: ChunkSpec) -> None:
    """A new chunk's images, before its tools are defined (which then open them as serial
    tclean's open the whole cube's)."""
    if spec.continues:
        from_cube(spec)
    elif spec.start_model:
        from_model(spec)


def from_cube(spec: ChunkSpec) -> None:
    """A continued clean: the chunk's channels of the earlier call's images as its own images
    (and, with halo channels, its gridded sub-cube's; restart)."""
    for f in spec.fields:
        cube = spec.records.impars[f]["imagename"]
        for product in CONTINUED:
            if os.path.isdir(f"{cube}.{product}"):
                planes.copy_planes(f"{cube}.{product}", spec.first, spec.nchan,
                                   f"{spec.imagename(f)}.{product}")
                if spec.has_halo and product not in ("model", "mask"):
                    planes.copy_planes(f"{cube}.{product}", spec.img_first, spec.img_nchan,
                                       f"{spec.grid_imagename(f)}.{product}")


def from_model(spec: ChunkSpec) -> None:
    """A start model: the chunk's channels of it (on the cube's grid, ``cubewide.StartModel``)
    as its model, as serial's model starts as the whole of it. Its gridded sub-cube's halo
    planes are its neighbours' models: the start model's until their first minor cycle
    (``ChunkImager._grid_model``)."""
    planes.copy_planes(spec.start_model, spec.first, spec.nchan, f"{spec.imagename('0')}.model")
