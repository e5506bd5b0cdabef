"""Stage 4: the chunks' images -> one final cube per product and field, with tclean's names.

    gather plan (``pclean.params.gatherplan``)  which chunk image goes where: plain records
    execute   carries a plan out (move, paged on the workers, or virtual)
    assemble  one final image from its parts (runs on a worker)
    finalize  the cube products the coordinator made (the weight density)
    staging   products written under temporary names, renamed into place when all are whole
"""
from __future__ import annotations

import os

from pclean.gather import execute, finalize, staging
from pclean.params import chunking, gatherplan, resources
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
    """Write every final product of ``plan``; their paths (the chunks' and the cube's). They
    appear together when all are complete, or not at all (``staging``)."""
    gplan = plan_for(plan)
    cube = finalize.cube_products(plan)
    stage = staging.Staging(gplan.outputs + list(cube), plan.workdir.unfinished)
    stage.check_new()
    try:
        execute.execute(gplan, client, workers, stage)
        for out, path in cube.items():
            stage.move_in(path, out)
        return stage.commit()
    except BaseException as exc:
        stage.abort()
        full = resources.full_file_system([os.path.dirname(plan.imagename), plan.workdir.root])
        if full and not isinstance(exc, KeyboardInterrupt):
            raise OSError(28, f"the file system of {full} is full: the gather could not write "
                              f"the final products ({exc}); the chunks are kept in "
                              f"{plan.workdir.root}") from exc
        raise


__all__ = ["chunk_products", "gather", "plan_for"]
