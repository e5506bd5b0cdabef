"""The run's work directory: every path pclean writes during a run, in one place.

    <root>/manifest.json            the plan (``Plan.manifest``), with its identity
    <root>/ledger.jsonl             what the run did, stretch by stretch (``run.events.Ledger``)
    <root>/stretches.jsonl          each completed stretch's calls and results (``run.checkpoint``)
    <root>/plan.pickle              the plan, to resume the same call from (``params.resume``)
    <root>/lock                     held by the run's coordinator while it runs
    <root>/chunk-0003/chunk-0003.*  chunk 3's own-channel images (field 0; ``_<f>`` outliers)
    <root>/chunk-0003/chunk-0003-grid.*  its gridded sub-cube, when it has halo channels
    <root>/chunk-0003/undo/         what the stretch in progress changed, as it was (``workers.undo``)
    <root>/halo/model-000042.npy    cube channel 42's model plane, left for the neighbours
    <root>/logs/                    every worker's CASA log
    <root>/worker-<pid>/            a worker process's current directory (CASA scratch tables)
    <root>/density/img.gridwt       the shared weight density (kept as <imagename>.gridwt)
    <root>/serial-pb.vptable        serial's primary-beam model, pinned
    <root>/startmodel/img.model     the start model on the cube's grid, as serial's .model starts
    <root>/savemodel/img.model      the final model, predicted into the MS (``savemodel``)
    <root>/unfinished/              what a failed gather had written (never the user's directory)

It must be on a file system every worker sees. Nothing here is the user's: it is created new,
continued by the same call after an interruption (``params.resume``), and removed after the
gather unless ``keep_chunks``."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkDir:
    root: str

    def chunk_dir(self, index: int) -> str:
        return os.path.join(self.root, f"chunk-{index:04d}")

    def chunk_image(self, index: int, field: str = "0") -> str:
        """Prefix of a chunk's own-channel images. Unique names: a virtual gather moves the
        chunk images side by side."""
        base = os.path.join(self.chunk_dir(index), f"chunk-{index:04d}")
        return base if field == "0" else f"{base}_{field}"

    def grid_image(self, index: int, field: str = "0") -> str:
        """Prefix of a chunk's gridded sub-cube images when it has halo channels."""
        return self.chunk_image(index, field) + "-grid"

    def halo_plane(self, channel: int, field: str = "0") -> str:
        """Where the chunk owning cube channel ``channel`` leaves its model plane."""
        name = f"model-{channel:06d}.npy" if field == "0" else f"model-{field}-{channel:06d}.npy"
        return os.path.join(self.root, "halo", name)

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    def worker_cwd(self, pid: int) -> str:
        return os.path.join(self.root, f"worker-{pid}")

    @property
    def density(self) -> str:
        """Image prefix for the shared weight density (CASA writes <prefix>.gridwt)."""
        return os.path.join(self.root, "density", "img")

    @property
    def startmodel(self) -> str:
        """Image prefix for the start model on the cube's grid (CASA writes <prefix>.model)."""
        return os.path.join(self.root, "startmodel", "img")

    @property
    def savemodel(self) -> str:
        """Image prefix of the final model the MS's model is predicted from."""
        return os.path.join(self.root, "savemodel", "img")

    @property
    def vptable(self) -> str:
        return os.path.join(self.root, "serial-pb.vptable")

    @property
    def manifest(self) -> str:
        return os.path.join(self.root, "manifest.json")

    @property
    def ledger(self) -> str:
        return os.path.join(self.root, "ledger.jsonl")

    @property
    def stretches(self) -> str:
        return os.path.join(self.root, "stretches.jsonl")

    @property
    def plan(self) -> str:
        return os.path.join(self.root, "plan.pickle")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, "lock")

    @property
    def unfinished(self) -> str:
        """Where a failed gather leaves what it had written (``gather.staging``)."""
        return os.path.join(self.root, "unfinished")

    def contains(self, path: str) -> bool:
        return os.path.abspath(path).startswith(self.root.rstrip("/") + "/")

    def create(self) -> None:
        """Make the root and its parts (the root may be an emptied one, ``params.resume``)."""
        os.makedirs(self.root, exist_ok=True)
        for sub in (self.logs, os.path.dirname(self.halo_plane(0)),
                    os.path.dirname(self.density), os.path.dirname(self.startmodel)):
            os.makedirs(sub, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
