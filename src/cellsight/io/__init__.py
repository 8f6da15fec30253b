"""Files in and out: TIFF / OME-TIFF, sample data, data registry (no Qt, no napari)."""

from cellsight.io.tiff import ImageData, ImageReadError, read_image, write_image, write_labels

__all__ = ["ImageData", "ImageReadError", "read_image", "write_image", "write_labels"]
