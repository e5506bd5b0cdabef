"""Carrying out a gather plan: one chunk's images moved, or each final image assembled on a
worker (paged) or concatenated virtually, the products in parallel."""
from __future__ import annotations

from pclean.gather import assemble
from pclean.params.gatherplan import GatherPlan
from pclean.run import waits


def execute(plan: GatherPlan, client, workers: list[str], staging) -> None:
    """Write every final image of ``plan`` under its temporary name (``staging``)."""
    if plan.mode == "move":  # one chunk: its images are the cube
        for job in plan.jobs:
            staging.move_in(job.parts[0].path, job.out)
    elif plan.mode == "virtual":
        for job in plan.jobs:
            assemble.virtual_concat(staging.path(job.out), [part.path for part in job.parts])
    else:
        on_workers(client, workers, [(assemble.assemble, staging.path(job.out), list(job.parts),
                                      job.single_beam) for job in plan.jobs])


def on_workers(client, workers: list[str], calls: list[tuple]) -> list:
    """Run ``(function, *args)`` calls on the workers, spread round-robin, and wait. The
    chunks' images are on a file system every worker sees: a call whose worker is lost runs
    on another (a call pinned to a lost worker would wait for it for ever)."""
    futures = [client.submit(fn, *args, pure=False, workers=[workers[i % len(workers)]],
                             allow_other_workers=True)
               for i, (fn, *args) in enumerate(calls)]
    return waits.gathered(client, futures, "the gather")
