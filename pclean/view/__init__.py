"""Stage 5: the final cube as data: a lazy xarray Dataset (``dataset``), FITS (``fitsio``),
restoring beams as numbers (``beams``)."""
