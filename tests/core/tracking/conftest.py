"""Small synthetic and real time series for the tracking tests."""

import numpy as np
import pytest


def division_movie() -> np.ndarray:
    """4 frames, 64x64: one cell moves, divides at t=2, daughters move apart.

    Label ids are deliberately inconsistent across frames.
    """
    lab = np.zeros((4, 64, 64), np.uint16)
    lab[0, 20:30, 20:30] = 1
    lab[1, 20:30, 21:31] = 4
    lab[2, 14:21, 20:28] = 1
    lab[2, 30:37, 20:28] = 2
    lab[3, 13:20, 20:28] = 3
    lab[3, 31:38, 20:28] = 1
    lab[:, 50:56, 50:56] = 9  # a second, static cell
    return lab


@pytest.fixture
def movie() -> np.ndarray:
    return division_movie()


@pytest.fixture(scope="session")
def sim_crop(shared_data):
    """SIM+ GT TRA masks, 20 frames cropped to 256x256 (ids scrambled per frame)."""
    from cellsight.io.ctc import read_ctc

    gt = read_ctc(shared_data / "tracking" / "Fluo-N2DH-SIM+" / "01_GT" / "TRA", with_image=False)
    crop = gt.labels[:20, :256, :256]
    rng = np.random.default_rng(1)
    out = np.zeros_like(crop)
    for t, frame in enumerate(crop):
        ids = np.unique(frame)[1:]
        lut = np.zeros(int(frame.max()) + 1, crop.dtype)
        lut[ids] = rng.permutation(len(ids)) + 1
        out[t] = lut[frame]
    return crop, out
