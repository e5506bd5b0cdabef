"""Stage 4: the chunks' images -> one final cube per product and field, with tclean's names.

    gather plan (``pclean.params.gatherplan``)  which chunk image goes where: plain records
    execute   carries a plan out (move, paged on the workers, or virtual)
    assemble  one final image from its parts (runs on a worker)
    finalize  the cube products the coordinator made (the weight density)
"""
from __future__ import annotations

import os

from pclean.gather import execute, finalize
from pclean.params import chunking, gatherplan
from pclean.products import CHUNK_PRODUCTS


def chunk_products(chunk_imagenames: list[str], products=CHUNK_PRODUCTS) -> list[str]:
    """The products every chunk wrote; a product some chunks lack is an error."""
    found = []
    for prod in products:
        have = [os.path.isdir(f"{name}.{prod}") for name in chunk_imagenames]
        if all(have):
            found.append(prod)
        elif any(have):
            missing = [n for n, h in zip(chunk_imagenames, have) if not h]
            raise RuntimeError(f"product .{prod} is missing from chunks {missing}")
    return found


def plan_for(plan) -> gatherplan.GatherPlan:
    """The gather plan of an imaged run (``plan``: the params Plan, chunks closed)."""
    made = {f: chunk_products([c.imagename(f) for c in plan.chunks]) for f in plan.fields}
    return gatherplan.make(list(plan.chunks), plan.outputs(), made, plan.params["gather"],
                           plan.single_beam, chunking.plane_pixels(plan.params["imsize"]),
                           plan.grid.nstokes)


def gather(plan, client, workers: list[str]) -> list[str]:
    """Write every final product of ``plan``; their paths (the chunks' and the cube's)."""
    written = execute.execute(plan_for(plan), client, workers)
    return written + finalize.keep_cube_products(plan)


__all__ = ["chunk_products", "gather", "plan_for"]
