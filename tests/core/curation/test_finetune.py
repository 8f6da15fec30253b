import numpy as np
import pytest

from cellsight.config.finetune import FineTuneConfig
from cellsight.config.instances import InstanceConfig
from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.curation import finetune as ft
from cellsight.core.curation.correction_data import (
    correction_frames,
    split_holdout,
    uncorrected_frames,
)
from cellsight.core.nn.unet import UNet
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.plugin.samples import load_sample

TINY = dict(steps=2, batch_size=2, patch_size=64, device="cpu", time_limit_minutes=0)


@pytest.fixture(scope="module")
def crop():
    image = load_sample("nuclei_2d")[:96, :128]
    truth = load_sample("nuclei_2d_masks")[:96, :128].astype(np.int32)
    return image, truth


def test_defaults_are_short_fine_tuning_settings():
    cfg = FineTuneConfig()
    assert cfg.steps <= 500 and 0 < cfg.time_limit_minutes < 5
    train = cfg.train_config(TrainConfig(flips=False, learning_rate=2e-3))
    assert (train.steps, train.val_fraction, train.flips) == (cfg.steps, 0.0, False)
    assert train.learning_rate == 1e-3  # half the starting model's own rate
    assert FineTuneConfig(learning_rate=3e-4).train_config(TrainConfig()).learning_rate == 3e-4
    with pytest.raises(ValueError):
        FineTuneConfig(region="everything")


def test_versions_are_numbered_and_never_reused(tmp_path):
    assert ft.base_name("nuclei-ft012") == "nuclei" and ft.base_name("my-ft") == "my-ft"
    first = ft.next_version_dir(tmp_path, "nuclei")
    (tmp_path / "nuclei-ft005").mkdir()
    later = ft.next_version_dir(tmp_path, "nuclei-ft001")
    assert (first.name, later.name) == ("nuclei-ft001", "nuclei-ft006")
    assert [p.name for p in ft.model_versions(tmp_path, "nuclei")] == [
        "nuclei-ft001", "nuclei-ft005", "nuclei-ft006"]
    model = tmp_path / "mine"
    assert ft.version_parent(model) == (tmp_path.resolve(), "mine")
    assert ft.version_parent("nuclei")[1] == "nuclei"


@pytest.mark.slow
def test_one_corrected_image_holds_out_a_stripe_and_saves_versions(crop, tmp_path):
    image, truth = crop
    config = FineTuneConfig(**TINY)
    result = ft.fine_tune(image, truth, config, base="nuclei", out_parent=tmp_path)
    assert "right 25%" in result.held_out and result.steps_done == 2
    assert result.model_dir == tmp_path / "nuclei-ft001"
    assert result.before.tp + result.before.fn >= 3  # held-out stripe holds objects
    assert result.kept == ("new" if result.after_ap >= result.before_ap else "old")
    assert f"{result.before_ap:.2f} -> {result.after_ap:.2f}" in result.message
    saved = InstanceModel.load(result.model_dir)
    assert saved.meta["fine_tune"]["ap50_before"] == round(result.before_ap, 4)
    assert saved.config.unet == InstanceModel.load("nuclei").config.unet
    again = ft.fine_tune(image, truth, config, base=result.model_dir, out_parent=tmp_path)
    assert again.model_dir.name == "nuclei-ft002"  # from a version: next free number


@pytest.mark.slow
def test_frames_of_a_time_series_are_held_out_whole(crop):
    image, truth = crop
    movie, labels = np.stack([image, image[:, ::-1]]), np.stack([truth, truth[:, ::-1]])
    result = ft.fine_tune(movie, labels, FineTuneConfig(**TINY), base="nuclei")
    assert result.held_out.startswith("1 of 2 corrected frames") and result.model_dir is None


def test_edited_mode_learns_only_around_edits(crop):
    image, truth = crop
    prediction = truth.copy()
    missed = np.unique(truth)[5]
    prediction[truth == missed] = 0  # the model missed one nucleus
    inside = tuple(np.argwhere(truth == missed)[0])
    with pytest.raises(ValueError, match="prediction"):
        correction_frames(image, truth, 2, region="edited")
    (frame,) = correction_frames(image, truth, 2, predictions=prediction, region="edited",
                                 margin=4)
    assert frame.mask[inside] and 0 < frame.mask.mean() < 0.2
    (whole,) = correction_frames(image, truth, 2, predictions=prediction)
    assert whole.mask.all()
    with pytest.raises(ValueError, match="No corrections"):
        correction_frames(image, truth, 2, predictions=truth)


def test_stacks_become_slices_for_a_2d_model_and_volumes_for_a_3d_one(crop):
    image, truth = crop
    stack, labels = np.stack([image] * 3), np.stack([truth] * 3)
    slices = correction_frames(stack, labels, 2, reviewed=[[0, 2]])
    assert [f.name for f in slices] == ["image 0, frame 0", "image 0, frame 2"]
    (volume,) = correction_frames(stack, labels, 3)
    assert volume.image.shape == stack.shape
    tz = correction_frames(np.stack([stack] * 2), np.stack([labels] * 2), 2, reviewed=[[1]])
    assert [f.name for f in tz] == [f"image 0, t 1, z {z}" for z in range(3)]
    train, held, text = split_holdout(slices, 0.5)
    assert len(train) == len(held) == 1 and "1 of 2" in text
    with pytest.raises(ValueError, match="2D model"):
        correction_frames(image[0], truth[0], 2)


@pytest.mark.slow
def test_a_3d_model_folder_fine_tunes_in_3d(tmp_path):
    config = InstanceConfig(unet=UNetConfig(ndim=3, depth=1, base_channels=4, out_channels=3),
                            diameter=6.0)
    base = InstanceModel(config=config, net=UNet(config.unet).eval(), meta={})
    base.save(tmp_path / "tiny3d")
    labels = np.zeros((8, 32, 32), np.int32)
    labels[2:6, 4:10, 4:10], labels[2:6, 20:27, 18:25] = 1, 2
    image = (labels > 0) * 100.0 + np.random.default_rng(0).normal(10, 2, labels.shape)
    cfg = FineTuneConfig(**TINY | {"patch_size": 16})
    result = ft.fine_tune(image, labels, cfg, base=tmp_path / "tiny3d", out_parent=tmp_path)
    assert result.model_dir.name == "tiny3d-ft001"
    assert InstanceModel.load(result.model_dir).config.unet.ndim == 3


@pytest.mark.slow
def test_a_worse_model_is_reported_and_the_old_one_kept(crop):
    image, truth = crop
    wild = FineTuneConfig(**TINY | {"learning_rate": 0.1, "steps": 4, "anchor": 0.0})
    result = ft.fine_tune(image, truth, wild, base="nuclei")
    assert result.after_ap < result.before_ap and result.kept == "old"
    assert "WORSE" in result.message and "stays active" in result.message


def test_stop_and_bad_folders(crop, tmp_path):
    image, truth = crop
    with pytest.raises(Cancelled):
        ft.fine_tune(image, truth, FineTuneConfig(**TINY), base="nuclei", out_parent=tmp_path,
                     should_stop=lambda: True)
    assert not list(tmp_path.iterdir())  # nothing saved, no empty version folder
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "weights.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="never overwrites"):
        ft.fine_tune(image, truth, base="nuclei", out_dir=tmp_path / "taken")
    with pytest.raises(ValueError, match="rescale"):
        ft.fine_tune(image, truth, FineTuneConfig(**TINY), base="nuclei", diameter=1.0)


def test_uncorrected_frames_are_the_others_spread_evenly(crop):
    image, truth = crop
    stack, labels = np.stack([image] * 7), np.stack([truth] * 7)
    others = uncorrected_frames(stack, labels, 2, reviewed=[[1]], limit=10)
    assert [n for _, n in others] == [f"image 0, frame {k}" for k in (0, 2, 3, 4, 5, 6)]
    spread = uncorrected_frames(stack, labels, 2, reviewed=[[1]], limit=3)
    assert [n for _, n in spread] == ["image 0, frame 0", "image 0, frame 3",
                                      "image 0, frame 6"]
    assert uncorrected_frames(image, truth, 2) == []  # one image: nothing else to check
    few = uncorrected_frames(stack, labels, 2, reviewed=[[1]], megapixels=2.5 * image.size / 1e6)
    assert len(few) == 3  # about 2.5 frames' worth of pixels


def test_consistency_catches_lost_and_invented_objects(crop):
    _, truth = crop
    # "images" that are label maps, "models" that read them back (flip-consistent)
    frames = [(truth.astype(np.float32), "f0"), (truth[::-1].astype(np.float32), "f1")]

    def old(im):
        return im.astype(np.int32)

    same = ft.check_consistency(frames, old, old)
    n = len(np.unique(truth)) - 1
    assert (same.frames, same.old_objects, same.confident, same.kept, same.added) == (
        2, 2 * n, 2 * n, 2 * n, 0)
    cfg = FineTuneConfig()
    held = ft.MatchResult(5, 0, 0, ())
    assert ft._verdict(held, held, same, cfg) == ""
    lost = ft.check_consistency(frames, old, lambda im: np.where(im % 2 == 0, im, 0).astype(int))
    assert lost.kept < lost.confident and "sure of" in ft._verdict(held, held, lost, cfg)

    def dotted(im):
        out = im.astype(np.int32)
        for k, y in enumerate(range(0, im.shape[0] - 3, 6)):  # dots on the background
            dot = (slice(y, y + 3), slice(0, 3))
            if not out[dot].any():
                out[dot] = int(im.max()) + 1 + k
        return out

    invented = ft.check_consistency(frames, old, dotted)
    assert invented.kept == invented.confident and invented.added > 0
    strict = FineTuneConfig(check_added=0.01)
    assert "background" in ft._verdict(held, held, invented, strict)
    assert "WORSE" in ft._verdict(held, ft.MatchResult(4, 1, 1, ()), same, cfg)
    assert ft.check_consistency([], None, None) is None


@pytest.mark.slow
def test_anchor_pulls_the_weights_back_to_the_start(crop):
    image, truth = crop
    start = InstanceModel.load("nuclei")
    before = [p.detach().clone() for p in start.net.parameters()]
    one = TINY | {"steps": 1}
    free = ft.fine_tune(image, truth, FineTuneConfig(**one), base=start)
    held = ft.fine_tune(image, truth, FineTuneConfig(**one, anchor=1000.0), base=start)

    def drift(model):
        return max(float((p.detach() - b).abs().max()) for p, b in
                   zip(model.net.parameters(), before, strict=True))

    # lr (1e-3) x anchor (1000) = 1: the step ends back at the starting weights
    assert drift(held.model) < 1e-6 < drift(free.model)


@pytest.mark.slow
def test_a_time_series_checks_the_frames_nobody_corrected(crop):
    image, truth = crop
    movie = np.stack([image, image[:, ::-1], image[::-1], image])
    labels = np.stack([truth, truth[:, ::-1], np.zeros_like(truth), np.zeros_like(truth)])
    result = ft.fine_tune(movie, labels, FineTuneConfig(**TINY), base="nuclei",
                          reviewed=[[0, 1]])
    assert result.consistency.frames == 2 and result.consistency.confident > 0
    assert "un-corrected frame" in result.message
    assert result.kept == ("new" if not ft._verdict(result.before, result.after,
                                                   result.consistency, FineTuneConfig())
                           else "old")
