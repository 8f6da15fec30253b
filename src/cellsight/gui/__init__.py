"""napari dock widgets: thin views over ``cellsight.core``; all threading in ``workers``."""
