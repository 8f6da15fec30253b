"""Parts every cellsight dock is built from.

A new dock is mostly layout::

    class MyDock(JobMixin, QWidget):
        def __init__(self, napari_viewer):
            super().__init__()
            self.init_jobs(napari_viewer, "Choose an image, then Run.")
            self.image = layer_chooser(napari_viewer, napari.layers.Image, "Image")
            self.form = ConfigForm(MyConfig(), ("steps", "size"))
            grid, self.buttons = button_grid([("Run", self.start)])
            self.busy_disables(self.buttons["Run"], self.image)
            layout = QVBoxLayout(self)
            layout.addLayout(form(("Image", self.image)))
            layout.addLayout(self.form)
            layout.addLayout(grid)
            for w in (self.stop_button, self.progress_bar, self.status):
                layout.addWidget(w)

        def start(self):
            return self.run_job(my_core_function, layer_array(self.image.value),
                                self.form.config(), name="My job", on_result=self.show)
"""

from cellsight.gui.config_form import ConfigForm
from cellsight.gui.toolkit.jobs import EtaProgressBar, JobMixin, format_seconds
from cellsight.gui.toolkit.layers import (
    corrected_labels,
    layer_array,
    layer_axes_choices,
    layer_chooser,
    layer_mode,
    looks_like_instances,
    stroke_layer,
    time_series_labels,
    user_layer,
)
from cellsight.gui.toolkit.layout import (
    advanced,
    button_grid,
    device_box,
    form,
    group,
    scroll_layout,
)
from cellsight.gui.toolkit.models import (
    FOLDER_ITEM,
    PICKERS,
    ModelChooser,
    ModelFilesMixin,
    model_ndim,
)

__all__ = [
    "FOLDER_ITEM",
    "PICKERS",
    "ConfigForm",
    "EtaProgressBar",
    "JobMixin",
    "ModelChooser",
    "ModelFilesMixin",
    "advanced",
    "button_grid",
    "corrected_labels",
    "device_box",
    "form",
    "format_seconds",
    "group",
    "layer_array",
    "layer_axes_choices",
    "layer_chooser",
    "layer_mode",
    "looks_like_instances",
    "model_ndim",
    "scroll_layout",
    "stroke_layer",
    "time_series_labels",
    "user_layer",
]
