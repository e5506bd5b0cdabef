"""The errors planning raises: bad input, and calls pclean refuses before any worker starts."""
from __future__ import annotations


class ParameterError(ValueError):
    """Bad input, found before any worker starts."""


def cannot_be_equal(what: str, why: str, instead: str) -> ParameterError:
    """The refusal for a call pclean cannot make equal to serial tclean."""
    return ParameterError(f"{what}: pclean cannot make this cube equal to serial tclean's, so it "
                          f"does not start: {why}. Run serial tclean (casatasks.tclean) for this "
                          f"call{', or ' + instead if instead else ''}.")


def serial_fails(what: str, why: str, instead: str) -> ParameterError:
    """The refusal for a call serial tclean itself fails on."""
    return ParameterError(f"{what}: serial tclean fails on this call ({why}), so pclean does not "
                          f"start. Use {instead} (with pclean or with serial tclean).")
