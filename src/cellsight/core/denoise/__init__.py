"""Noise2Void (N2V / N2V2): self-supervised denoising trained on the noisy image itself."""

from cellsight.core.denoise.model import N2VModel, denoise, load_model
from cellsight.core.denoise.train import PreviewCrop, train_n2v

__all__ = ["N2VModel", "PreviewCrop", "denoise", "load_model", "train_n2v"]
