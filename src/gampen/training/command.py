"""``gampen train``: fit a GaMPEN network on a catalog or pack and write a model bundle."""

from __future__ import annotations

import argparse

from gampen.cli import count_or_auto

#: CLI flags that set fields of the network config rather than of the training config.
NETWORK_FLAGS = ("backbone", "stn", "dropout")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen train``."""
    p = subparsers.add_parser(
        "train",
        help="train a GaMPEN model on labelled cutouts and write a model bundle",
        description="Train the STN + CNN + full-covariance Gaussian network on a catalog "
        "(FITS cutouts) or a pack made by 'gampen pack'. Settings come from --preset, then "
        "--config YAML, then the flags below (each overrides its config field).",
    )
    p.add_argument("catalog", help="catalog (.csv/.ecsv/.fits/.parquet) or pack (.h5)")
    p.add_argument("--out", required=True, help="model bundle to write (directory or .zip)")
    p.add_argument("--config", help="YAML file of training-config fields")
    p.add_argument(
        "--preset",
        default="default",
        help="recipe to start from: 'default' (compact backbone, AdamW) or "
        "'gampen-paper' (VGG-16, SGD momentum 0.99, GaMPEN's published settings)",
    )
    g = p.add_argument_group("data")
    g.add_argument("--image-dir", help="folder file_name is relative to")
    g.add_argument("--hdu", help="FITS HDU holding the image (name or index)")
    g.add_argument("--bands", type=_names, help="comma-separated band names")
    g.add_argument("--input-size", type=int, help="cutout side in pixels (default 96)")
    g.add_argument("--targets", type=_names, help="label columns (default bt,r_e,flux)")
    g.add_argument("--softening", type=_floats, help="arcsinh softening per band (default 1)")
    g.add_argument("--pixel-scale", type=float, help="arcsec/pixel (default: PIXSCALE header)")
    g.add_argument("--zero-point", type=float, help="magnitude zero point (default: MAGZP)")
    g.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep every cutout in memory after its first read (default: on up to 20,000 galaxies)",
    )
    g = p.add_argument_group("splits")
    g.add_argument("--seed", type=int, help="seed of splits, initialisation and augmentation")
    g.add_argument("--val-fraction", type=float, help="validation fraction (default 0.15)")
    g.add_argument("--test-fraction", type=float, help="held-out test fraction (default 0.15)")
    g.add_argument("--split-column", help="catalog column of train/val/test labels")
    g.add_argument("--balance-on", help="stratify the splits on this target")
    g = p.add_argument_group("network and optimisation")
    g.add_argument("--backbone", choices=("compact", "vgg16"), help="CNN (default compact)")
    g.add_argument("--stn", choices=("zoom", "affine", "none"), help="spatial transformer")
    g.add_argument("--dropout", type=float, help="dropout rate (also used by MC dropout)")
    g.add_argument(
        "--loss",
        choices=("nll", "diagonal", "mse", "moments", "mixture"),
        help="training loss: 'moments' (default preset: NLL of the Gaussian with the moments "
        "of the MC-dropout mixture), 'mixture' (NLL of the mixture itself) or 'nll' "
        "(GaMPEN's: each dropout pass alone)",
    )
    g.add_argument(
        "--train-passes", type=int, help="dropout passes per image for the MC losses (default 8)"
    )
    g.add_argument(
        "--label-eps",
        type=float,
        help="bt logit epsilon: logit(eps + (1 - 2 eps) bt) (GaMPEN: 0.001)",
    )
    g.add_argument(
        "--rotations",
        choices=("dihedral", "any", "none"),
        help="augmentation: exact quarter turns and flips (dihedral, default), or any angle "
        "by bilinear resampling (any, GaMPEN's), or none",
    )
    g.add_argument(
        "--photometry",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the network aperture photometry (curves of growth) measured on the linear "
        "pixels beside the image (default preset: on)",
    )
    g.add_argument(
        "--background",
        choices=["none", "border", "border-centred", "masked-centred"],
        help="remove each cutout's local background (a plane fitted to its border, outliers "
        "clipped) before anything is measured; border-centred then also rolls the central "
        "galaxy back to the cutout's centre by whole pixels; masked-centred does both, "
        "leaving the border's sources (neighbours, the galaxy's outskirts) out of the plane; "
        "stored in the bundle, predict does the same",
    )
    g.add_argument(
        "--conditions",
        type=_names,
        help="catalog columns given to the network as inputs, e.g. psf_fwhm (default preset); "
        "'none' for an image-only model. predict then needs the same columns",
    )
    g.add_argument(
        "--psf-image",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the network each galaxy's PSF image where there is one (the catalog's "
        "psf_image column, else the cutout's PSF HDU) as encircled energies and ellipticity "
        "beside the image; galaxies without one rely on --conditions psf_fwhm. predict then "
        "reads them the same way",
    )
    g.add_argument(
        "--psf-drop",
        type=float,
        metavar="P",
        help="with --psf-image: the share of training galaxies per epoch whose PSF image is "
        "hidden (seeded), so the network also learns to do without (default 0.25)",
    )
    g.add_argument("--optimizer", choices=("adamw", "sgd"))
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g = p.add_argument_group("running")
    g.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue the run in the run directory from its last checkpoint",
    )
    g.add_argument("--run-dir", help="checkpoints and logs (default: <out>.run)")
    g.add_argument("--init-from", help="start from a trained bundle (transfer learning)")
    g.add_argument("--freeze", type=_names, help="with --init-from: freeze 'stn', 'backbone'")
    g.add_argument("--devices", type=count_or_auto, help="devices per node (int or 'auto')")
    g.add_argument("--num-nodes", type=int)
    g.add_argument("--strategy", help="Lightning strategy, e.g. ddp")
    g.add_argument("--accelerator", help="cpu, gpu or auto")
    g.add_argument("--num-workers", type=int, help="data-loading processes (default 0)")
    g.add_argument("--logger", type=_names, help="csv,tensorboard,mlflow")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the config from preset, YAML and flags; train; report."""
    from gampen.training.config import load_config
    from gampen.training.fit import train

    skip = {"func", "command", "verbose", "config", "preset", *NETWORK_FLAGS}
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    config = load_config(preset=args.preset, config_file=args.config, overrides=overrides)
    network = {k: getattr(args, k) for k in NETWORK_FLAGS if getattr(args, k) is not None}
    config.network = {**config.network, **network}
    bundle = train(config)
    if bundle is not None:
        print(f"model bundle written to {bundle}; inspect it with: gampen info {bundle}")
    return 0


def _names(text: str) -> list[str]:
    if text.strip().lower() == "none":
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    return [float(t) for t in _names(text)]
