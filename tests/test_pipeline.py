import imageio.v3 as iio
import pytest

from cellsight.core.progress import Cancelled
from cellsight.pipeline import run_pipeline


@pytest.mark.slow
def test_pipeline_results_are_real(tmp_path):
    events = []
    summary = run_pipeline(tmp_path, progress=events.append)
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["denoise"]["psnr_denoised_db"] > steps["denoise"]["psnr_noisy_db"]
    assert steps["segment"]["ap50_vs_ground_truth"] > 0.3
    assert events and events[-1].step == events[-1].total
    overview = iio.imread(tmp_path / "overview.png")
    assert overview.ndim == 3 and overview.shape[2] == 3 and overview.std() > 10


def test_pipeline_can_be_stopped(tmp_path):
    with pytest.raises(Cancelled):
        run_pipeline(tmp_path, should_stop=lambda: True)
    assert not (tmp_path / "summary.json").exists()
