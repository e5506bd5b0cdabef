"""Stage 4: the chunks' images -> one final cube per product and field, with tclean's names.

    gather plan (``pclean.params.gatherplan``)  which chunk image goes where: plain records
    execute   carries a plan out (move, paged on the workers, or virtual)
    assemble  one final image from its parts (runs on a worker)
    finalize  the cube products the coordinator made (the weight density)
    staging   products written under temporary names, renamed into place when all are whole
    savemodel the final model into the MS (``savemodel``), before the products appear
"""
from __future__ import annotations

import os
import shutil

from pclean.gather import execute, finalize, savemodel, staging
from pclean.params import chunking, gatherplan, resources
from pclean.params.validate import CONTINUE_KEEPS
from pclean.products import CHUNK_PRODUCTS, PRODUCTS


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
    """The gather plan of an imaged run (``plan``: the params Plan, chunks closed). A
    continued clean leaves the earlier call's psf, pb and mask as they are (serial's second
    call does not change them)."""
    keep = CONTINUE_KEEPS if plan.continues else ()
    made = {f: [prod for prod in chunk_products([c.imagename(f) for c in plan.chunks])
                if prod not in keep] for f in plan.fields}
    return gatherplan.make(list(plan.chunks), plan.outputs(), made, plan.params["gather"],
                           plan.single_beam, chunking.plane_pixels(plan.params["imsize"]),
                           plan.grid.nstokes)


def gather(plan, client, workers: list[str], timings: dict | None = None) -> list[str]:
    """Write every final product of ``plan``; their paths (the chunks' and the cube's). They
    appear together when all are complete, or not at all (``staging``). ``timings`` gets the
    seconds the model took to save into the MS (``savemodel``), when it is saved."""
    gplan = plan_for(plan)
    cube = finalize.cube_products(plan)
    outputs = gplan.outputs + list(cube)
    stage = staging.Staging(outputs, plan.workdir.unfinished,
                            replace=outputs if plan.continues else ())
    stage.check_new()
    try:
        execute.execute(gplan, client, workers, stage)
        for out, path in cube.items():
            stage.move_in(path, out)
        if plan.params["savemodel"] != "none":  # from the whole final model, before it appears
            prefix = plan.outputs()["0"]
            seconds = savemodel.save(plan, stage.path(f"{prefix}.model"),
                                     stage.path(f"{prefix}.residual"))
            if timings is not None:
                timings["savemodel"] = seconds
        return stage.commit()
    except BaseException as exc:
        stage.abort()
        full = resources.full_file_system([os.path.dirname(plan.imagename), plan.workdir.root])
        if full and not isinstance(exc, KeyboardInterrupt):
            raise OSError(28, f"the file system of {full} is full: the gather could not write "
                              f"the final products ({exc}); the chunks are kept in "
                              f"{plan.workdir.root}") from exc
        raise


def recover(plan) -> list[str]:
    """Before the gather of a resumed run: undo what an interrupted gather left (a gather
    killed outright cannot undo itself, ``staging.abort``). Its temporaries and ``unfinished``
    are pclean's own: chunk images found in them (a one-chunk cube's, moved; the parts of a
    virtual product, moved inside it) go back to their chunks, the rest is removed. The
    chunk images put back."""
    outs = [f"{prefix}.{prod}" for f, prefix in plan.outputs().items() for prod in PRODUCTS]
    back = {}  # temporary -> the image moved there
    if len(plan.chunks) == 1:
        for f, prefix in plan.outputs().items():
            for prod in CHUNK_PRODUCTS:
                back[staging.temporary(f"{prefix}.{prod}")] = (
                    f"{plan.chunks[0].imagename(f)}.{prod}")
    for out, src in finalize.cube_products(plan).items():
        outs.append(out)
        back[staging.temporary(out)] = src
    parts = {os.path.basename(f"{c.imagename(f)}.{prod}"): f"{c.imagename(f)}.{prod}"
             for c in plan.chunks for f in plan.fields for prod in CHUNK_PRODUCTS}
    unfinished = plan.workdir.unfinished
    holders = [staging.temporary(out) for out in outs] + (
        [os.path.join(unfinished, n) for n in sorted(os.listdir(unfinished))]
        if os.path.isdir(unfinished) else [])
    for out in outs:  # a commit cut short: the earlier call's image comes back if it is missing
        aside = staging.replaced(out)
        if os.path.lexists(aside):
            if os.path.exists(out):
                shutil.rmtree(aside)
            else:
                os.rename(aside, out)
    restored = []
    for holder in holders:
        if not os.path.lexists(holder):
            continue
        dest = back.get(holder)
        if dest and not os.path.exists(dest):
            shutil.move(holder, dest)
            restored.append(dest)
            continue
        if os.path.isdir(holder):
            for name in os.listdir(holder):
                if name in parts and not os.path.exists(parts[name]):
                    shutil.move(os.path.join(holder, name), parts[name])
                    restored.append(parts[name])
        shutil.rmtree(holder) if os.path.isdir(holder) else os.remove(holder)
    return restored


__all__ = ["chunk_products", "gather", "plan_for", "recover"]
