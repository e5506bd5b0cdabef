"""What a stretch changes in place, kept as it was before, so a chunk can start again from the
last completed stretch (a resumed run, a rebuilt chunk: ``run.checkpoint``).

Most of tclean's steps are idempotent on the chunk's images: a major cycle recomputes the
residual, sums of weights and weight from the model (and rebuilds the gridded model from the
planes), a restore rewrites the image, the psf beams are written from the coordinator's fill.
What is not: a minor cycle adds to the model, the first ``setup_mask`` makes the mask, and a
restore with the common beam swaps one psf plane's beam while it runs. Before those, the chunk
keeps the image (or notes that it did not exist) under ``<chunk dir>/undo/<stretch>/``; the
copies of stretches before the one in progress are dropped as it starts (the coordinator has
checkpointed them by then). Rolling back is by rename, so a roll-back cut short is finished by
the next one.
"""
from __future__ import annotations

import os
import shutil
import time

_ABSENT = ".absent"


class Undo:
    """``busy``: a dict whose "undo" entry gets the seconds spent keeping (the checkpoints'
    cost on the chunk's side)."""

    def __init__(self, chunk_dir: str, busy: dict | None = None):
        self.chunk_dir = chunk_dir
        self.root = os.path.join(chunk_dir, "undo")
        self.busy = busy if busy is not None else {}

    def _dir(self, stretch: int) -> str:
        return os.path.join(self.root, f"{stretch:06d}")

    def _stretches(self) -> list[int]:
        if not os.path.isdir(self.root):
            return []
        return sorted(int(n) for n in os.listdir(self.root) if n.isdigit())

    def keep(self, stretch: int, path: str) -> None:
        """Before stretch ``stretch`` first changes the image ``path`` (in the chunk's
        directory): keep it as it is."""
        d = self._dir(stretch)
        name = os.path.basename(path)
        kept = os.path.join(d, name)
        if os.path.exists(kept) or os.path.exists(kept + _ABSENT):
            return  # kept already in this stretch: the state before it is that copy
        t0 = time.perf_counter()
        os.makedirs(d, exist_ok=True)
        if os.path.exists(path):
            tmp = kept + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(path, tmp)
            os.replace(tmp, kept)
        else:
            open(kept + _ABSENT, "w").close()
        self.busy["undo"] = self.busy.get("undo", 0.0) + time.perf_counter() - t0

    def start(self, stretch: int) -> None:
        """Stretch ``stretch`` begins: the copies of earlier ones are no longer needed."""
        for s in self._stretches():
            if s < stretch:
                shutil.rmtree(self._dir(s), ignore_errors=True)

    def roll_back(self, done: int) -> list[str]:
        """Undo every stretch after the first ``done``, newest first; the images put back."""
        restored = []
        for s in reversed(self._stretches()):
            if s <= done:
                continue
            d = self._dir(s)
            for name in sorted(os.listdir(d)):
                if name.endswith(".tmp"):  # a copy cut short: its image was not changed yet
                    continue
                target = os.path.join(self.chunk_dir, name.removesuffix(_ABSENT))
                shutil.rmtree(target, ignore_errors=True)
                if name.endswith(_ABSENT):
                    os.remove(os.path.join(d, name))
                else:
                    os.rename(os.path.join(d, name), target)
                restored.append(target)
            shutil.rmtree(d, ignore_errors=True)
        return restored
