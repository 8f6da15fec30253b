"""Losses over annotated pixels only (target -1 = not annotated)."""

import torch
from torch.nn import functional as F

IGNORE = -1


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over pixels whose target is not ``IGNORE`` (0 if there are none)."""
    if not (target != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=IGNORE)


def masked_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0):
    """One minus the soft Dice of the softmax, averaged over classes, annotated pixels only.

    Parameters
    ----------
    logits : torch.Tensor
        ``(N, K, *spatial)`` raw network outputs.
    target : torch.Tensor
        ``(N, *spatial)`` long, classes ``0..K-1`` or ``IGNORE``.
    smooth : float
        Added to numerator and denominator (a class absent from the annotation and
        from the prediction scores 1).
    """
    n_classes = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1).to(logits.dtype)
    probs = torch.softmax(logits.float(), dim=1) * valid
    onehot = F.one_hot(target.clamp(min=0), n_classes).movedim(-1, 1).float() * valid
    dims = (0, *range(2, logits.ndim))
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    return 1.0 - dice.mean()


def _soft_shares(target: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Class shares normalised to sum 1 on annotated pixels, 0 elsewhere."""
    valid = (target != IGNORE).unsqueeze(1)
    total = soft.float().sum(1, keepdim=True)
    return torch.where(valid & (total > 0), soft.float() / total.clamp(min=1e-6), 0.0)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, shares: torch.Tensor):
    """Mean cross-entropy against normalised class ``shares`` on annotated pixels.

    ``shares`` come from :func:`_soft_shares`; ``target`` says which pixels count.
    """
    valid = target != IGNORE
    if not valid.any():
        return logits.sum() * 0.0
    per_pixel = -(shares * torch.log_softmax(logits.float(), dim=1)).sum(1)
    return per_pixel[valid].mean()


def soft_dice_loss(logits, target, shares, smooth: float = 1.0):
    """:func:`masked_dice_loss` with normalised class shares in place of one-hot targets."""
    valid = (target != IGNORE).unsqueeze(1).float()
    probs = torch.softmax(logits.float(), dim=1) * valid
    dims = (0, *range(2, logits.ndim))
    inter = (probs * shares).sum(dims)
    denom = probs.sum(dims) + shares.sum(dims)
    return 1.0 - ((2 * inter + smooth) / (denom + smooth)).mean()


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    dice_weight: float = 1.0,
    soft: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` x Dice loss, both over annotated pixels.

    With ``soft`` (``(N, K, *spatial)`` class shares) both terms compare with the
    shares instead of the hard classes; ``target`` still says which pixels count.
    """
    if soft is not None:
        shares = _soft_shares(target, soft)
        loss = soft_cross_entropy(logits, target, shares)
        if dice_weight:
            loss = loss + dice_weight * soft_dice_loss(logits, target, shares)
        return loss
    loss = masked_cross_entropy(logits, target)
    if dice_weight:
        loss = loss + dice_weight * masked_dice_loss(logits, target)
    return loss
