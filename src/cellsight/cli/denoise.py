"""``cellsight denoise``: Noise2Void on a noisy image, or apply a saved N2V model."""

import sys
import time

from cellsight.core.progress import ProgressEvent

TRAIN_OPTIONS = ("steps", "patch_size", "batch_size", "variant", "save_model")


class _Printer:
    """Prints training progress to stderr about once a second."""

    def __init__(self):
        self.last = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        done = event.total and event.step >= event.total
        if now - self.last < 1.0 and not done:
            return
        self.last = now
        parts = [f"[{event.step}/{event.total}] {event.message}"]
        for key in ("loss", "val_loss"):
            if key in event.values:
                parts.append(f"{key} {event.values[key]:.4f}")
        print("  ".join(parts), file=sys.stderr)


def _config(args):
    from cellsight.config.n2v import N2VConfig

    values = {
        "steps": args.steps,
        "patch_size": args.patch_size,
        "batch_size": args.batch_size,
        "variant": args.variant,
    }
    return N2VConfig(**{k: v for k, v in values.items() if v is not None})


def _check_args(args) -> None:
    from cellsight.cli import CommandError

    if args.model:
        given = [f"--{k.replace('_', '-')}" for k in TRAIN_OPTIONS if getattr(args, k) is not None]
        if given:
            raise CommandError(
                f"{', '.join(given)} only apply to training; drop them with --model."
            )


def run(args) -> int:
    """Train on IMG (unless --model is given), denoise IMG and write OUT."""
    from cellsight.core.denoise import denoise, load_model, train_n2v
    from cellsight.io.tiff import read_image, write_image

    _check_args(args)
    img = read_image(args.image)
    axes = (args.axes or img.axes).upper()
    report = _Printer()
    if args.model:
        model = load_model(args.model)
    else:
        model = train_n2v(
            img.data, _config(args), axes=axes, device=args.device,
            checkpoint_dir=args.save_model and f"{args.save_model}/checkpoints",
            progress=report,
        )
        if args.save_model:
            model.save(args.save_model)
            print(f"Model saved to {args.save_model}", file=sys.stderr)
    out = denoise(img.data, model, axes=axes, device=args.device, progress=report)
    write_image(args.out, out, axes=img.axes, scale=img.scale)
    print(f"Denoised image written to {args.out}", file=sys.stderr)
    return 0


def register(sub) -> None:
    """Add the ``denoise`` subcommand."""
    from cellsight.config.n2v import N2VConfig

    def helptext(name: str) -> str:
        title, desc = N2VConfig.field_help(name)
        return f"{title}: {desc} (default {N2VConfig.model_fields[name].default})"

    p = sub.add_parser(
        "denoise",
        help="Noise2Void: train a denoiser on a noisy image and denoise it.",
        description="Train a Noise2Void denoiser on IMG itself (no clean image needed) and "
        "write the denoised image (float32, IMG's shape and units) to --out. With --model, "
        "apply a saved model instead of training.",
    )
    p.add_argument("image", metavar="IMG", help="Noisy TIFF / OME-TIFF image.")
    p.add_argument("--out", required=True, help="Output TIFF (float32, same shape as IMG).")
    p.add_argument("--steps", type=int, help=helptext("steps"))
    p.add_argument("--patch-size", type=int, help=helptext("patch_size"))
    p.add_argument("--batch-size", type=int, help=helptext("batch_size"))
    p.add_argument("--variant", choices=("n2v", "n2v2"), help=helptext("variant"))
    p.add_argument(
        "--save-model",
        metavar="DIR",
        help="Save the trained model folder here (checkpoints in DIR/checkpoints).",
    )
    p.add_argument("--model", metavar="DIR", help="Apply this saved N2V model; no training.")
    p.add_argument(
        "--axes",
        help="Axis letters of IMG, e.g. TYX for a time series, ZYX for a volume "
        "(default: read from the file).",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="Compute device."
    )
    p.set_defaults(handler=run)
