"""The gather plan: which final image each chunk image goes into, as plain records.

Built from the chunk plan and the products the chunks wrote; executed by ``pclean.gather``;
read by the cost model (``costmodel.gather_s``) to forecast the gather's time."""
from __future__ import annotations

from dataclasses import dataclass

from pclean.products import RESTORED


@dataclass(frozen=True)
class Part:
    """A chunk's contribution to a final image: ``nchan`` planes of ``path`` from plane
    ``local`` on, going to cube channel ``first``."""

    path: str
    local: int
    nchan: int
    first: int


@dataclass(frozen=True)
class ProductJob:
    """One final image ``out`` (field ``field``'s ``product``) from its ``parts``."""

    product: str
    field: str
    out: str
    parts: tuple[Part, ...]
    single_beam: bool  # restored with one beam for the cube
    nbytes: int  # what writing it costs (float32 pixels)


@dataclass(frozen=True)
class GatherPlan:
    mode: str  # 'move' (one chunk: its images are the cube), 'paged' or 'virtual'
    jobs: tuple[ProductJob, ...]

    @property
    def outputs(self) -> list[str]:
        return [job.out for job in self.jobs]

    def nbytes(self) -> list[int]:
        """Bytes each job writes (nothing is copied when a single chunk's images move)."""
        return [0 if self.mode == "move" else job.nbytes for job in self.jobs]


def make(chunks: list, outputs: dict[str, str], products: dict[str, list[str]], mode: str,
         single_beam: bool, npix: int, nstokes: int) -> GatherPlan:
    """``chunks``: (index-ordered) ChunkSpecs; ``outputs``: field -> final image prefix;
    ``products``: field -> the products the chunks wrote for it. The biggest products first
    (a sumwt is one pixel per plane)."""
    jobs = []
    nchan = sum(c.nchan for c in chunks)
    for f, prefix in outputs.items():
        for prod in sorted(products[f], key=lambda prod: prod == "sumwt"):
            parts = tuple(Part(f"{c.imagename(f)}.{prod}", 0, c.nchan, c.first) for c in chunks)
            pixels = 1 if prod == "sumwt" else npix
            jobs.append(ProductJob(prod, f, f"{prefix}.{prod}", parts,
                                   single_beam and prod in RESTORED, nchan * nstokes * pixels * 4))
    return GatherPlan("move" if len(chunks) == 1 else mode, tuple(jobs))

