"""Stage 2, on the Dask workers: a chunk's CASA tools driven through tclean's steps.

    steps   the chunk steps interface (what a chunk does, what each step returns, by name)
    actor   ChunkImager, the Dask actor that implements it with casatools
    planes  channel planes moved between a chunk's gridded sub-cube and its own images
    psf     a chunk's psf beams, and the planes CASA could not fit
    undo    what the stretch in progress changes in place, kept (a chunk starts again after
            the last completed stretch)
"""
