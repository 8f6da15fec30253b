"""bioimage.io model packages (format 0.5): write them, open them, load their networks.

* :mod:`cellsight.io.bmz.write`: :func:`~cellsight.io.bmz.write.write_package` builds a
  ``ModelDescr`` with ``bioimageio.spec`` from plain parts (arrays, files, processing
  steps) and saves the zip atomically.
* :mod:`cellsight.io.bmz.read`: :func:`~cellsight.io.bmz.read.open_package` reads a zip
  or a folder with ``rdf.yaml`` / ``bioimageio.yaml``, checks the files' sha256 against
  the description and loads the network (``torchscript``; ``pytorch_state_dict`` whose
  architecture code runs only when trusted; ``onnx`` with onnxruntime).

bioimageio and torch are imported inside the functions: ``cellsight.io`` stays light.
What the package's outputs mean for cellsight (labels, instances, denoised images) is
decided in :mod:`cellsight.core.bmz`.
"""

#: the key under a package's ``config`` that cellsight's own exports fill
CONFIG_KEY = "cellsight"
