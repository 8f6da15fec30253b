"""bioimage.io model packages: export cellsight models, run and fine-tune any package.

* :mod:`.export`: :func:`~cellsight.core.bmz.export.export_package` writes a semantic,
  instance or Noise2Void model as a bioimage.io package (format 0.5).
* :mod:`.run`: :func:`~cellsight.core.bmz.run.load_package` opens a package (zip or
  folder) as a :class:`~cellsight.core.bmz.run.PackageModel`;
  :func:`~cellsight.core.bmz.run.predict_package` runs it through cellsight's tiled
  prediction and maps its output to labels, instances, a denoised image or a raw array.
* :mod:`.finetune`: a package as the starting point of cellsight's fine-tuning.
"""
