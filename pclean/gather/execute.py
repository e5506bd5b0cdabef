"""Carrying out a gather plan: one chunk's images moved, or each final image assembled on a
worker (paged) or concatenated virtually, the products in parallel."""
from __future__ import annotations

import os
import shutil

from pclean.gather import assemble
from pclean.params.gatherplan import GatherPlan


def execute(plan: GatherPlan, client, workers: list[str]) -> list[str]:
    """Write every final image of ``plan``; their paths. Nothing existing is overwritten."""
    for out in plan.outputs:
        if os.path.exists(out):
            raise FileExistsError(f"{out} exists; not overwriting it")
    if plan.mode == "move":  # one chunk: its images are the cube
        for job in plan.jobs:
            shutil.move(job.parts[0].path, job.out)
    elif plan.mode == "virtual":
        for job in plan.jobs:
            assemble.virtual_concat(job.out, [part.path for part in job.parts])
    else:
        on_workers(client, workers, [(assemble.assemble, job.out, list(job.parts),
                                      job.single_beam) for job in plan.jobs])
    return plan.outputs


def on_workers(client, workers: list[str], calls: list[tuple]) -> list:
    """Run ``(function, *args)`` calls on the workers, spread round-robin, and wait."""
    futures = [client.submit(fn, *args, pure=False, workers=[workers[i % len(workers)]])
               for i, (fn, *args) in enumerate(calls)]
    return client.gather(futures)
