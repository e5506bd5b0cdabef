"""After the chunks' images are gathered: the cube products the coordinator made."""
from __future__ import annotations

import os
import shutil

from pclean.params import cubewide


def keep(path: str, out: str) -> str:
    """Move an image the coordinator made (``path``) to a final product name."""
    if os.path.exists(out):
        raise FileExistsError(f"{out} exists; not overwriting it")
    shutil.move(path, out)
    return out


def keep_cube_products(plan) -> list[str]:
    """The cube-wide values serial leaves as products (the shared density as .gridwt)."""
    return [keep(path, f"{plan.imagename}.{product}")
            for product, path in cubewide.cube_products(plan.cubewide).items()]

