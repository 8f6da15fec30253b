"""Fine-tune an instance model on a biologist's corrections and check it on held-out ones.

:func:`fine_tune` starts from the current model (the built-in ``nuclei`` or a model
folder), trains briefly on the corrected frames (or only around the edits), measures
AP@0.5 of the old and the new model on corrections it kept aside, and saves the new
model as a NEW version folder (``<name>-ft001``, ``-ft002``, ...); no folder is ever
overwritten. The dock widget and ``cellsight train --task instance --from ...`` both
call it.
"""

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cellsight.config.finetune import FineTuneConfig
from cellsight.config.instances import InstancePredictConfig
from cellsight.core.curation.correction_data import (
    NO_CORRECTIONS,
    score_frames,
    split_frames,
    split_holdout,
    spread_frames,
)
from cellsight.core.evaluation.metrics import MatchResult, iou_matrix, match_instances
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    rescale_factor,
    segment_instances,
    train_instances,
)

_VERSION = re.compile(r"^(?P<name>.+)-ft(?P<n>\d{3,})$")
MODELS_DIR_ENV = "CELLSIGHT_MODELS_DIR"


@dataclass(frozen=True)
class Consistency:
    """The new model against the old model's confident objects on un-corrected frames.

    A few corrected frames can be learned by heart while the model gets worse on the
    rest of the data; the held-out corrections (a stripe of the same frame) do not see
    that. So the frames nobody corrected are segmented by both models: the old model's
    *confident* objects (found again, IoU >= 0.7, when the frame is flipped) should be
    found by the new model too, and the new model should not fill the background with
    objects.

    Attributes
    ----------
    frames : int
        Un-corrected frames looked at.
    old_objects, new_objects : int
        Objects of the old / new model on them.
    confident : int
        Old objects found again on the flipped frame.
    kept : int
        Confident old objects the new model also finds (one-to-one, IoU >= 0.5).
    added : int
        New objects lying (>= 80 % of their pixels) where the old model saw background.
    """

    frames: int
    old_objects: int
    new_objects: int
    confident: int
    kept: int
    added: int

    @property
    def kept_share(self) -> float:
        """Share of the old model's confident objects the new model keeps (1 if none)."""
        return self.kept / self.confident if self.confident else 1.0

    @property
    def added_share(self) -> float:
        """Objects added on the background, per object of the old model."""
        return self.added / max(self.old_objects, self.frames, 1)

    def text(self) -> str:
        """One line for the user."""
        return (f"on {self.frames} un-corrected frame(s) the new model keeps "
                f"{self.kept} of {self.confident} objects the old one was sure of and adds "
                f"{self.added} on background ({self.old_objects} -> {self.new_objects} objects)")


def _confident(labels: np.ndarray, flipped_back: np.ndarray, min_iou: float = 0.7) -> np.ndarray:
    """``labels`` reduced to the objects found again (IoU >= min_iou) in ``flipped_back``."""
    iou, ids, _ = iou_matrix(labels, flipped_back)
    if not len(ids):
        return np.zeros_like(labels)
    sure = ids[(iou.max(axis=1) if iou.size else np.zeros(len(ids))) >= min_iou]
    return np.where(np.isin(labels, sure), labels, 0)


def check_consistency(frames, segment_old, segment_new) -> Consistency | None:
    """Score the new model on un-corrected frames against the old one (None: no frames)."""
    if not frames:
        return None
    counts = np.zeros(5, int)
    for image, _name in frames:
        old = segment_old(image)
        flip = tuple(range(image.ndim))
        back = np.flip(segment_old(np.ascontiguousarray(np.flip(image, flip))), flip)
        sure = _confident(old, back)
        new = segment_new(image)
        new_ids = np.unique(new[new > 0])
        on_bg = np.bincount(new.ravel(), weights=(old == 0).ravel(), minlength=new.max() + 1)
        sizes = np.bincount(new.ravel(), minlength=new.max() + 1)
        counts += [
            len(np.unique(old[old > 0])), len(new_ids), len(np.unique(sure[sure > 0])),
            match_instances(sure, new).tp, int((on_bg[new_ids] >= 0.8 * sizes[new_ids]).sum()),
        ]
    return Consistency(len(frames), *(int(c) for c in counts))


@dataclass
class FineTuneResult:
    """What a fine-tuning run produced and how it compares with the model it started from.

    Attributes
    ----------
    model : InstanceModel
        The fine-tuned model (whether or not it is better).
    before, after : MatchResult
        Matching of the old / new model with the held-out corrections (IoU >= 0.5).
    held_out : str
        Which corrections were held out.
    model_dir : pathlib.Path or None
        The new version folder (None when nothing was saved).
    kept : {"new", "old"}
        Which model should stay active: the old one when the new one scores worse.
    message : str
        One line for the user.
    steps_done : int
    seconds : float
        Wall-clock seconds of training.
    consistency : Consistency or None
        The new model against the old one's confident objects on frames of the same
        images that hold no corrections (None when there are none).
    """

    model: InstanceModel
    before: MatchResult
    after: MatchResult
    held_out: str
    model_dir: Path | None
    kept: str
    message: str
    steps_done: int
    seconds: float
    consistency: Consistency | None = None

    @property
    def before_ap(self) -> float:
        """AP@0.5 of the starting model on the held-out corrections."""
        return self.before.ap

    @property
    def after_ap(self) -> float:
        """AP@0.5 of the fine-tuned model on the held-out corrections."""
        return self.after.ap


def user_models_dir() -> Path:
    """Where fine-tuned versions of built-in models go (``$CELLSIGHT_MODELS_DIR``).

    Default ``~/.cellsight/models``: the built-in models themselves are never written.
    """
    return Path(os.environ.get(MODELS_DIR_ENV) or Path.home() / ".cellsight" / "models")


def base_name(name: str) -> str:
    """Model name without a ``-ftNNN`` version suffix (``nuclei-ft002`` -> ``nuclei``)."""
    found = _VERSION.match(name)
    return found["name"] if found else name


def model_versions(parent: str | os.PathLike, name: str) -> list[Path]:
    """Existing ``<parent>/<name>-ftNNN`` folders, oldest version first."""
    parent, name = Path(parent), base_name(name)
    if not parent.is_dir():
        return []
    found = []
    for p in parent.iterdir():
        m = _VERSION.match(p.name)
        if p.is_dir() and m and m["name"] == name:
            found.append((int(m["n"]), p))
    return [p for _, p in sorted(found)]


def next_version_dir(parent: str | os.PathLike, name: str) -> Path:
    """Create and return the next free ``<parent>/<name>-ftNNN`` folder.

    The folder is created here (atomically claimed), so two runs never share one.
    """
    parent, name = Path(parent), base_name(name)
    parent.mkdir(parents=True, exist_ok=True)
    versions = model_versions(parent, name)
    n = int(_VERSION.match(versions[-1].name)["n"]) + 1 if versions else 1
    while True:
        folder = parent / f"{name}-ft{n:03d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


def version_parent(source: str | os.PathLike) -> tuple[Path, str]:
    """(folder for new versions, model name) of a built-in name or a model folder."""
    from cellsight.models import BUILTIN_MODELS

    text = str(source)
    if text in BUILTIN_MODELS and not Path(text).is_dir():
        return user_models_dir(), text
    folder = Path(source).resolve()
    name = folder.name[:-4] if folder.name.lower().endswith(".zip") else folder.name
    return folder.parent, base_name(name)


def _load_base(base) -> tuple[InstanceModel, str]:
    if isinstance(base, InstanceModel):
        return base, str(base.meta.get("name", "model"))
    model = InstanceModel.load(base)
    if "package" in model.meta:  # a bioimage.io package cellsight exported
        return model, base_name(Path(base).name.removesuffix(".zip"))
    return model, version_parent(base)[1]


def _at_scale(model: InstanceModel, diameter: float) -> InstanceModel:
    """The model set to train at the scale its predictions use for this diameter."""
    factor = rescale_factor(model, diameter)
    if not 0.1 <= factor <= 4.0:
        raise ValueError(
            f"Nucleus diameter {diameter} px would rescale the images by {factor:.2f}; "
            "fine-tuning supports factors 0.1 to 4."
        )
    config = model.config.model_copy(update={"scale": round(factor, 4)})
    return InstanceModel(config=config, net=model.net, meta=model.meta)


STOPPED = "Fine-tuning stopped; nothing was saved and the current model stays active."


def _check_new(out_dir) -> None:
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir} already exists and is not empty; fine-tuning never "
                         "overwrites a folder: choose a new one.")


def _out_folder(out_dir, out_parent, name: str) -> Path | None:
    if out_dir is not None:
        _check_new(out_dir)
        return Path(out_dir)
    if out_parent is not None:
        return next_version_dir(out_parent, name)
    return None


def _segmenter(model: InstanceModel, diameter: float, device: str, should_stop):
    def segment(image: np.ndarray) -> np.ndarray:
        config = InstancePredictConfig(mode=f"{image.ndim}d", diameter=diameter, device=device)
        return segment_instances(model, image, config, should_stop=should_stop)

    return segment


def _verdict(before: MatchResult, after: MatchResult, consistency: Consistency | None,
             config: FineTuneConfig) -> str:
    """Why the new model must not replace the old one ("" = it may)."""
    if after.ap < before.ap:
        return "it is WORSE on the held-out corrections"
    if consistency is not None:
        if consistency.kept_share < config.check_keep:
            return (f"it loses {consistency.confident - consistency.kept} of "
                    f"{consistency.confident} objects the current model was sure of on "
                    "un-corrected frames")
        if consistency.added_share > config.check_added:
            return f"it adds {consistency.added} objects on background of un-corrected frames"
    return ""


def _message(before: MatchResult, after: MatchResult, folder: Path | None, why: str,
             consistency: Consistency | None = None) -> str:
    text = f"AP@0.5 on held-out corrections: {before.ap:.2f} -> {after.ap:.2f}"
    if consistency is not None:
        text += f"; {consistency.text()}"
    name = folder.name if folder is not None else "the new model"
    saved = f"{name} saved" if folder is not None else "not saved"
    if not why:
        return f"{text} (new model {saved}, now active)"
    return f"{text}. The fine-tuned model is not used: {why} ({saved}); the current model " \
           "stays active"


def fine_tune(
    images,
    corrected,
    config: FineTuneConfig | None = None,
    *,
    base: "InstanceModel | str | os.PathLike" = "nuclei",
    predictions=None,
    reviewed=None,
    annotated=None,
    diameter: float = 0.0,
    out_dir: str | os.PathLike | None = None,
    out_parent: str | os.PathLike | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> FineTuneResult:
    """Fine-tune an instance model on corrected labels; compare old and new on held-out ones.

    Parameters
    ----------
    images, corrected : array or sequence of arrays
        Images and their corrected instance labels: ``(Y, X)``, stacks ``(T|Z, Y, X)``
        or ``(T, Z, Y, X)``. A 2D model learns from every 2D slice; a 3D model from
        ``(Z, Y, X)`` stacks.
    config : FineTuneConfig, optional
        Steps, learning rate, time limit, what to train on, held-out share.
    base : InstanceModel, built-in name or model folder
        The model to start from; its architecture, post-processing and object size stay.
    predictions : array or sequence of arrays, optional
        The model's labels before correction (to find what was edited).
    reviewed : sequence, optional
        Per image, the indices (first axis) of fully reviewed frames; see
        :func:`~cellsight.core.curation.correction_data.correction_frames`.
    annotated : sequence of bool arrays, optional
        Per image, where the labels are complete (overrides ``config.region``).
    diameter : float
        Nucleus diameter (pixels) used when predicting these images; training and the
        check run at the same scale. 0 = the model's own scale.
    out_dir : path, optional
        Exact folder for the new model; must be new or empty.
    out_parent : path, optional
        Otherwise, the next free ``<out_parent>/<name>-ftNNN`` is used. Neither: the
        model is not saved.
    progress, should_stop : callable
        A stop ends training early and raises
        :class:`~cellsight.core.progress.Cancelled`; nothing is saved then. Its
        ``partial`` is the model trained so far (None when stopped before training),
        not checked on the held-out corrections.

    Returns
    -------
    FineTuneResult

    Raises
    ------
    ValueError
        If there are no corrections, shapes differ, or the folder exists.

    Examples
    --------
    >>> result = fine_tune(image, corrected, base="nuclei", out_parent="models")  # doctest: +SKIP
    >>> result.message  # doctest: +SKIP
    'AP@0.5 on held-out corrections: 0.71 -> 0.83 (new model nuclei-ft001 saved, now active)'
    """
    config = config or FineTuneConfig()
    if out_dir is not None:
        _check_new(out_dir)
    start, name = _load_base(base)
    scaled = _at_scale(start, diameter)
    frames, others = split_frames(
        images, corrected, start.config.unet.ndim, predictions=predictions, reviewed=reviewed,
        annotated=annotated, region=config.region, margin=config.margin,
    )
    if not frames:
        raise ValueError(NO_CORRECTIONS)
    train, held, held_text = split_holdout(frames, config.holdout_fraction, config.seed)
    others = spread_frames(others, config.check_frames) if config.check_frames else []
    progress(ProgressEvent(0, config.steps, "checking the current model on held-out corrections"))
    before = score_frames(held, _segmenter(start, diameter, config.device, should_stop))
    model_config = start.config.model_copy(
        update={"training": config.train_config(start.config.training)}
    )
    began = time.perf_counter()
    try:
        tuned = train_instances(
            [f.image for f in train], [f.labels for f in train], model_config,
            annotated=[f.mask for f in train], init=scaled,
            progress=progress, should_stop=should_stop,
        )
    except Cancelled as exc:
        raise Cancelled(STOPPED, partial=exc.partial) from exc
    seconds = time.perf_counter() - began
    if should_stop():
        raise Cancelled(STOPPED, partial=tuned)
    progress(ProgressEvent(config.steps, config.steps, "checking the new model"))
    try:
        after = score_frames(held, _segmenter(tuned, diameter, config.device, should_stop))
    except Cancelled as exc:
        raise Cancelled(STOPPED, partial=tuned) from exc
    progress(ProgressEvent(config.steps, config.steps, "checking un-corrected frames"))
    try:
        consistency = check_consistency(
            others, _segmenter(start, diameter, config.device, should_stop),
            _segmenter(tuned, diameter, config.device, should_stop),
        ) if config.check_frames else None
    except Cancelled as exc:
        raise Cancelled(STOPPED, partial=tuned) from exc
    why = _verdict(before, after, consistency, config)
    kept = "old" if why else "new"
    folder = _out_folder(out_dir, out_parent, name)
    result = FineTuneResult(tuned, before, after, held_text, folder, kept,
                            _message(before, after, folder, why, consistency),
                            int(tuned.meta["metrics"]["steps_done"]), round(seconds, 1),
                            consistency)
    if folder is not None:
        _save(result, start, name, config)
    return result


def _save(result: FineTuneResult, start: InstanceModel, name: str, config: FineTuneConfig):
    model = result.model
    model.meta = {
        **model.meta,
        "name": result.model_dir.name,
        "fine_tune": {
            "from": start.meta.get("name", name),
            "config": config.model_dump(mode="json"),
            "held_out": result.held_out,
            "ap50_before": round(result.before_ap, 4),
            "ap50_after": round(result.after_ap, 4),
            "kept": result.kept,
            "consistency": (None if result.consistency is None
                            else asdict(result.consistency)),
            "train_seconds": result.seconds,
            "steps_done": result.steps_done,
        },
    }
    if start.meta.get("package"):  # started from a bioimage.io package: the parent
        model.meta["fine_tune"]["parent_package"] = start.meta["package"]
    model.save(result.model_dir)
