"""What a cube-wide value is (see ``cubewide``): a provider, and what it may read."""
from __future__ import annotations

from dataclasses import dataclass

from pclean.params.imager import ImagingRecords
from pclean.params.spectral import CubeGrid
from pclean.params.workdir import WorkDir


@dataclass(frozen=True)
class PlanContext:
    """What a provider may read on the coordinator."""

    params: dict
    records: ImagingRecords
    grid: CubeGrid
    workdir: WorkDir


class Provider:
    name = ""
    product = None  # a cube product this value is kept as (products.CUBE_PRODUCTS)

    def needed(self, ctx: PlanContext) -> bool:
        raise NotImplementedError

    def compute(self, ctx: PlanContext):
        raise NotImplementedError
