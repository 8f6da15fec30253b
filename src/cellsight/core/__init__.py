"""Algorithms on arrays: numpy / scipy / scikit-image / torch, never Qt or napari."""
