"""Blockwise execution over images of any size, on dask (threads, a LocalCluster or a cluster).

:mod:`grid` cuts an image into blocks with halos; :mod:`engine` runs one function per block on
``dask.distributed`` (retries, progress by blocks, stop); :mod:`arrays` reads and writes
blocks from files or arrays; :mod:`predict` runs the dense predictors (semantic, denoise) and
the seam-free instance segmentation blockwise; :mod:`batch` runs whole folders of files,
resumably.
"""
