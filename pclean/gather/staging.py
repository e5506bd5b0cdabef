"""Final products appear whole or not at all: the gather writes each under a hidden temporary
name beside its final one and renames them all into place once every one is complete.

Measured before (issue 12): a gather that failed half-way left psf, pb and sumwt complete, an
unreadable ``.residual`` and no ``.image`` or ``.mask`` in the user's directory, which then
blocked the rerun. Now a failed gather leaves the user's directory as it was; what it had
written is moved into the work directory (``<workdir>/unfinished``), and chunk images it had
moved (a one-chunk cube) go back where they were, so nothing of the run is lost.
"""
from __future__ import annotations

import os
import shutil


def temporary(out: str) -> str:
    """The hidden name ``out`` is written under until the gather is complete."""
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.pclean-partial")


def replaced(out: str) -> str:
    """The hidden name an image a continued clean replaces has while the new ones go in."""
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.pclean-replaced")


class Staging:
    """``replace``: the outputs that may exist and are replaced (a continued clean's: the
    earlier call's residual, model, image, ...); every other output must be new."""

    def __init__(self, outputs: list[str], unfinished_dir: str, replace=()):
        self.final = list(outputs)
        self.replace = set(replace)
        self.unfinished_dir = unfinished_dir
        self.moved_from: dict[str, str] = {}  # temporary -> the chunk image moved there

    def path(self, out: str) -> str:
        return temporary(out)

    def check_new(self) -> None:
        for out in self.final:
            for path in (temporary(out),) + (() if out in self.replace else (out,)):
                if os.path.exists(path):
                    raise FileExistsError(f"{path} exists; not overwriting it")

    def move_in(self, source: str, out: str) -> None:
        """Move an existing image (a chunk's, the coordinator's) to ``out``'s temporary name."""
        tmp = temporary(out)
        shutil.move(source, tmp)
        self.moved_from[tmp] = source

    def commit(self) -> list[str]:
        """Rename every product into place; if a rename fails, those done are undone."""
        done, aside = [], []
        try:
            for out in self.final:
                if os.path.exists(out):
                    if out not in self.replace:
                        raise FileExistsError(f"{out} appeared during the gather; not "
                                              "overwriting it")
                    os.rename(out, replaced(out))
                    aside.append(out)
                os.rename(temporary(out), out)
                done.append(out)
        except BaseException:
            for out in reversed(done):
                os.rename(out, temporary(out))
            for out in aside:
                os.rename(replaced(out), out)
            raise
        for out in aside:  # every new image is in: the ones they replace go
            shutil.rmtree(replaced(out), ignore_errors=True)
        return list(self.final)

    def abort(self) -> None:
        """After a failure: images moved in go back; everything else written goes into the
        work directory."""
        for out in self.final:
            tmp = temporary(out)
            if not os.path.lexists(tmp):
                continue
            back = self.moved_from.get(tmp)
            if back and not os.path.exists(back):
                shutil.move(tmp, back)
                continue
            os.makedirs(self.unfinished_dir, exist_ok=True)
            shutil.move(tmp, os.path.join(self.unfinished_dir, os.path.basename(out)))

