"""cellsight's public Python API: every capability the CLI and the docks offer, by name.

Import what you need from here::

    from cellsight.api import load_builtin, segment_instances, track

These names are the stable surface: each carries a numpydoc ``Examples`` section that the
test suite runs (``tests/test_doctests.py``, ``tests/test_api.py``), and each follows the
shape of :mod:`cellsight.core`: models first, then the image, then a config object, then
``progress`` / ``should_stop`` callbacks. Everything else in ``cellsight.core`` and
``cellsight.io`` is importable but internal: helpers may change between versions.

The modules are imported when a name is first used, so ``import cellsight.api`` is cheap.
"""

from __future__ import annotations

import importlib

# name -> module that defines it, grouped by capability (the order of docs/index.md)
_WHERE = {
    # reading and writing images, labels, models
    "read_image": "cellsight.io.tiff",
    "read_any": "cellsight.io.images",
    "write_image": "cellsight.io.tiff",
    "write_labels": "cellsight.io.tiff",
    "read_ome_zarr": "cellsight.io.omezarr",
    "write_ome_zarr": "cellsight.io.omezarr",
    "add_labels": "cellsight.io.omezarr",
    "read_ctc": "cellsight.io.ctc",
    "write_ctc": "cellsight.io.ctc",
    "select_device": "cellsight.core.nn.device",
    # semantic segmentation
    "SemanticModel": "cellsight.core.segmentation.semantic",
    "train_semantic": "cellsight.core.segmentation.semantic",
    "predict_semantic": "cellsight.core.segmentation.semantic",
    # instances (foreground + boundary + watershed) and the built-in nuclei model
    "InstanceModel": "cellsight.core.segmentation.instance_model",
    "load_builtin": "cellsight.core.segmentation.instance_model",
    "train_instances": "cellsight.core.segmentation.instance_model",
    "estimate_diameter": "cellsight.core.segmentation.instance_model",
    "predict_instance_maps": "cellsight.core.segmentation.instance_model",
    "instances_from_maps": "cellsight.core.segmentation.instance_model",
    "segment_instances": "cellsight.core.segmentation.instance_model",
    "segment_nuclei": "cellsight.core.segmentation.nuclei",
    "otsu_watershed": "cellsight.core.segmentation.classical",
    # Noise2Void denoising
    "N2VModel": "cellsight.core.denoise.model",
    "train_n2v": "cellsight.core.denoise.train",
    "denoise": "cellsight.core.denoise.model",
    # tracking
    "track": "cellsight.core.tracking",
    "detect": "cellsight.core.tracking.detections",
    "link": "cellsight.core.tracking",
    "to_ctc": "cellsight.core.tracking.convert",
    "export_tracks": "cellsight.core.tracking.export",
    "TrackEditor": "cellsight.core.tracking.editing",
    # corrections, clicks, review, fine-tuning
    "merge_labels": "cellsight.core.curation.corrections",
    "split_label": "cellsight.core.curation.corrections",
    "delete_labels": "cellsight.core.curation.corrections",
    "edited_regions": "cellsight.core.curation.corrections",
    "segment_from_clicks": "cellsight.core.curation.clicks",
    "ClickSession": "cellsight.core.curation.clicks",
    "review_objects": "cellsight.core.curation.review",
    "fine_tune": "cellsight.core.curation.finetune",
    "match_instances": "cellsight.core.evaluation.metrics",
    # any size: blockwise prediction, batches of files
    "segment_instances_blockwise": "cellsight.core.blocks.instances",
    "predict_semantic_blockwise": "cellsight.core.blocks.dense",
    "denoise_blockwise": "cellsight.core.blocks.dense",
    "run_batch": "cellsight.core.blocks.batch",
    # bioimage.io model packages
    "export_package": "cellsight.core.bmz.export",
    "load_package": "cellsight.core.bmz.run",
    "predict_package": "cellsight.core.bmz.run",
    "predict_package_blockwise": "cellsight.core.bmz.blocks",
    "fine_tune_package": "cellsight.core.bmz.finetune",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'cellsight.api' has no attribute '{name}'") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
