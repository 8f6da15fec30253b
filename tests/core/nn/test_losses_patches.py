import numpy as np
import pytest
import torch

from cellsight.config.training import TrainConfig
from cellsight.core.nn.augment import augment, random_elastic
from cellsight.core.nn.losses import masked_cross_entropy, masked_dice_loss, segmentation_loss
from cellsight.core.nn.patches import (
    PatchSampler,
    split_validation,
    to_internal,
    validation_patches,
)


def test_loss_ignores_unannotated_pixels():
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 1, :, :2] = 10.0  # confident class 1 on the left half
    target = torch.full((1, 4, 4), -1)
    target[0, :, 0] = 1  # annotated: left column, class 1 (correct)
    good = segmentation_loss(logits, target)
    target_bad = target.clone()
    target_bad[0, :, 0] = 0  # same pixels, wrong class
    assert good < 0.01
    assert segmentation_loss(logits, target_bad) > 1.0
    # changing predictions on unannotated pixels changes nothing
    logits2 = logits.clone()
    logits2[:, 0, :, 2:] = 50.0
    assert torch.isclose(segmentation_loss(logits2, target), good)


def test_losses_without_annotation_are_zero_and_differentiable():
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), -1)
    loss = masked_cross_entropy(logits, target)
    loss.backward()
    assert loss.item() == 0.0
    assert 0.0 <= masked_dice_loss(logits, torch.zeros(2, 8, 8, dtype=torch.long)).item() <= 1.0


def test_validation_stripe_split():
    t = to_internal(np.ones((10, 40), np.uint8))
    train, val = split_validation([t], 0.25)
    assert (train[0][:, -10:] == -1).all() and (train[0][:, :-10] == 0).all()
    assert (val[0][:, -10:] == 0).all() and (val[0][:, :-10] == -1).all()
    # annotations only inside the stripe: no validation, everything trains
    only_right = np.zeros((10, 40), np.uint8)
    only_right[:, -3:] = 1
    train, val = split_validation([to_internal(only_right)], 0.25)
    assert val == [] and (train[0] >= 0).sum() == 30


def test_sampler_prefers_annotated_pixels_and_rare_classes():
    rng = np.random.default_rng(0)
    image = rng.random((1, 200, 200), dtype=np.float32)
    target = np.full((200, 200), -1, np.int16)
    target[5, 5] = 1  # one pixel of a rare class
    target[150:160, 150:160] = 0
    sampler = PatchSampler([image], [target], (16, 16), 2, 1.0, rng)
    hits = [(sampler.sample()[1] == 1).any() for _ in range(200)]
    assert 0.35 < np.mean(hits) < 0.65  # classes drawn uniformly
    assert all((sampler.sample()[1] >= 0).any() for _ in range(50))
    with pytest.raises(ValueError, match="no annotated"):
        PatchSampler([image], [np.full((200, 200), -1, np.int16)], (16, 16), 2, 1.0, rng)


def test_sampler_revisits_hard_pixels():
    rng = np.random.default_rng(0)
    image = np.zeros((1, 200, 200), np.float32)
    target = np.zeros((200, 200), np.int16)
    hard = np.zeros((200, 200), bool)
    hard[150:152, 20:22] = True  # four pixels in a corner
    sampler = PatchSampler([image], [target], (16, 16), 1, 1.0, rng, hard_fraction=0.5)
    image[0, 150:152, 20:22] = 1.0  # marks the hard pixels in the sampled images

    def share_on_hard():
        return np.mean([sampler.sample()[0].max() > 0 for _ in range(400)])

    before = share_on_hard()
    sampler.set_hard(0, hard)
    assert sampler.hard_pixels == 4
    after = share_on_hard()
    assert before < 0.05 and 0.4 < after < 0.6
    sampler.set_hard(0, np.zeros_like(hard))  # nothing wrong any more: back to normal
    assert sampler.hard_pixels == 0 and share_on_hard() < 0.05


def test_small_images_are_padded_and_val_patches_cover_stripe():
    rng = np.random.default_rng(0)
    image = np.ones((1, 10, 12), np.float32)
    target = np.zeros((10, 12), np.int16)
    sampler = PatchSampler([image], [target], (16, 16), 1, 0.5, rng)
    img, tgt = sampler.sample()
    assert img.shape == (1, 16, 16) and (tgt == -1).sum() == 256 - 120
    val_t = np.full((64, 64), -1, np.int16)
    val_t[:, -6:] = 0
    imgs, tgts = validation_patches([np.zeros((1, 64, 64), np.float32)], [val_t], (16, 16), rng)
    assert imgs.shape == (4, 1, 16, 16)
    assert sum((t >= 0).sum() for t in tgts) == 64 * 6


def test_augmentation_keeps_image_and_target_aligned():
    rng = np.random.default_rng(1)
    target = np.zeros((16, 16), np.int16)
    target[2:6, 3:12] = 1
    image = target[None].astype(np.float32) * 5 + 1
    config = TrainConfig(intensity=False, elastic=True)
    for _ in range(10):
        img, tgt = augment(image, target, config, rng)
        assert ((img[0] > 3) == (tgt == 1)).mean() > 0.97
    assert image[0, 2, 3] == 6.0  # input untouched
    warped, wt = random_elastic(image, target, rng)
    assert wt.dtype == target.dtype and set(np.unique(wt)) <= {0, 1}


def test_soft_loss_matches_hard_loss_for_one_hot_shares_and_learns_shares():
    from torch.nn import functional as F

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6)
    target = torch.randint(0, 3, (2, 6, 6))
    target[0, :2] = -1  # not annotated
    onehot = F.one_hot(target.clamp(min=0), 3).movedim(-1, 1).float()
    hard = segmentation_loss(logits, target)
    assert torch.isclose(segmentation_loss(logits, target, soft=onehot), hard, atol=1e-5)
    # shares that do not sum to 1 are normalised over the annotated share
    assert torch.isclose(segmentation_loss(logits, target, soft=0.5 * onehot), hard, atol=1e-5)
    # the soft cross-entropy is smallest where the softmax equals the shares
    shares = torch.softmax(torch.randn(1, 2, 4, 4), 1)
    valid = torch.zeros(1, 4, 4, dtype=torch.long)
    at_shares = segmentation_loss(shares.log(), valid, dice_weight=0.0, soft=shares)
    sharper = segmentation_loss(3 * shares.log(), valid, dice_weight=0.0, soft=shares)
    assert at_shares < sharper
    # unannotated pixels do not count
    changed = logits.clone()
    changed[0, :, :2] = 100.0
    assert torch.isclose(
        segmentation_loss(changed, target, soft=onehot),
        segmentation_loss(logits, target, soft=onehot),
    )


def test_augment_moves_extra_channels_without_changing_their_values():
    rng = np.random.default_rng(3)
    image = rng.random((1, 16, 16)).astype(np.float32)
    shares = np.stack([np.arange(256, dtype=np.float32).reshape(16, 16) / 256] * 2)
    target = (shares[0] * 4).astype(np.int16)
    config = TrainConfig(intensity=True, flips=True, rotate90=True)
    for _ in range(10):
        out, tgt = augment(np.concatenate([image, shares]), target, config, rng, channels=1)
        assert out.shape == (3, 16, 16)
        np.testing.assert_array_equal(np.sort(out[1].ravel()), np.sort(shares[0].ravel()))
        np.testing.assert_array_equal((out[1] * 4).astype(np.int16), tgt)  # moved together


def test_random_zoom_scales_objects_and_keeps_image_and_target_together():
    from cellsight.core.nn.augment import random_zoom

    yy, xx = np.mgrid[:48, :48]
    disk = ((yy - 23.5) ** 2 + (xx - 23.5) ** 2 < 100).astype(np.int16)
    image = disk[None].astype(np.float32)
    areas = []
    for seed in range(20):
        zoomed, target = random_zoom(image, disk, np.random.default_rng(seed))
        assert zoomed.shape == (1, 48, 48) and target.shape == (48, 48)
        assert np.mean((zoomed[0] > 0.5) == (target == 1)) > 0.98
        areas.append(target.sum() / disk.sum())
    assert min(areas) < 0.85 and max(areas) > 1.2 and 0.6 < min(areas) and max(areas) < 1.6
