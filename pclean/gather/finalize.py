"""After the chunks' images are gathered: the cube products the coordinator made."""
from __future__ import annotations

from pclean.params import cubewide


def cube_products(plan) -> dict[str, str]:
    """``{final product path: the coordinator's image}`` for the cube-wide values serial
    leaves as products (the shared density as .gridwt)."""
    return {f"{plan.imagename}.{product}": path
            for product, path in cubewide.cube_products(plan.cubewide).items()}
