"""End-to-end prediction speed: FITS cutouts in, posterior catalog out.

    python benchmarks/bench_predict.py [--n 2000] [--backbones compact vgg16]
        [--n-passes 100] [--n-samples 1000] [--batch-size 64] [--num-workers 2]

For each backbone: writes N 96x96 single-band cutouts (once), saves an untrained bundle of
that architecture (speed does not depend on the weights), runs ``predict`` and prints
galaxies/s end to end (read FITS -> catalog written), the forward-pass FLOPs per galaxy
(prefix once + stochastic suffix per pass), the machine's measured fp32 matmul rate and
the fraction of it the run achieved.  Peak RSS shows memory stays bounded.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_read_cutouts import make_cutouts
from torch.utils.flop_counter import FlopCounterMode

from gampen.data.catalog import write_table
from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.data.scalars import ScalarInputs
from gampen.flags import is_fatal
from gampen.infer.predict import PredictOptions, predict
from gampen.model.bundle import read_metadata, save_bundle
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet
from gampen.models import default_model_path


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matrix-multiply rate of this machine (all torch threads)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def flops_per_galaxy(net: GampenNet, n_passes: int) -> float:
    """Forward FLOPs per galaxy: the prefix once, the suffix once per pass."""
    x, scalars = torch.randn(1, 1, 96, 96), torch.zeros(1, net.config.n_scalars)
    with torch.no_grad(), FlopCounterMode(display=False) as prefix:
        features = net.features(x, scalars)
    with torch.no_grad(), FlopCounterMode(display=False) as suffix:
        net.from_features(features)
    return prefix.get_total_flops() + n_passes * suffix.get_total_flops()


def untrained_bundle(folder: Path, backbone: str) -> tuple[Path, GampenNet]:
    """An untrained bundle of the given backbone (random weights, identity scalers) with
    the shipped default's scalar inputs, background removal and calibration, so the
    benchmark pays for the aperture photometry, the PSF image's features, the border
    background and the calibration map."""
    shipped = read_metadata(default_model_path())
    scalars = shipped["preprocessing"].get("scalars")
    n_scalars = shipped["network"].get("n_scalars", 0)
    net = GampenNet(NetworkConfig(backbone=backbone, n_scalars=n_scalars))
    labels = LabelTransform(names=("bt", "r_e", "flux"))
    path = save_bundle(
        folder / f"model-{backbone}",
        net,
        param_names=["bt", "r_e", "flux"],
        bands=["i"],
        pixel_scale=0.168,
        zero_point=27.0,
        preprocessing={
            "stretch": ArcsinhStretch().to_dict(),
            "labels": labels.to_dict(),
            "scalars": ScalarInputs.from_dict(scalars).to_dict(),
        }
        | {k: v for k, v in shipped["preprocessing"].items() if k == "background"},
        calibration=shipped["calibration"],
    )
    return path, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backbones", nargs="+", default=["compact", "vgg16"])
    parser.add_argument("--n-vgg", type=int, default=4, help="galaxies for vgg16 (slow)")
    parser.add_argument(
        "--rows",
        type=int,
        help="catalog rows, cycling over the N cutouts "
        "(memory scaling: peak RSS must not grow with the catalog)",
    )
    parser.add_argument("--n-passes", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="where to keep the cutouts (default: temp)")
    args = parser.parse_args()
    peak = matmul_gflops()
    print(f"fp32 matmul rate: {peak:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        table = make_cutouts(folder / "cutouts", args.n)  # with psf_fwhm, arcsec
        write_table(table, folder / "catalog.csv")
        for backbone in args.backbones:
            bundle, net = untrained_bundle(folder, backbone)
            n = args.n if backbone == "compact" else min(args.n, args.n_vgg)
            sub = table[:n]
            if args.rows and backbone == "compact":
                n, sub = args.rows, table[np.arange(args.rows) % len(table)]
                sub["object_id"] = np.arange(args.rows)
            write_table(sub, folder / f"catalog-{n}.csv")
            options = PredictOptions(
                n_passes=args.n_passes,
                n_samples=args.n_samples,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                image_dir=str(folder / "cutouts"),
                progress=False,
            )
            out = folder / f"pred-{backbone}.parquet"
            start = time.perf_counter()
            result = predict(folder / f"catalog-{n}.csv", out=out, model=bundle, options=options)
            rate = n / (time.perf_counter() - start)
            skipped = float(np.mean(is_fatal(np.asarray(result["flags"]))))
            flops = flops_per_galaxy(net, args.n_passes)
            print(
                f"{backbone:8s} P={args.n_passes} S={args.n_samples}: {rate:7.1f} galaxies/s "
                f"end to end ({n} galaxies); {flops / 1e9:.3f} GFLOP/galaxy forward; "
                f"{rate * flops / 1e9:.1f} GFLOP/s = {rate * flops / 1e9 / peak:.0%} of matmul; "
                f"{skipped:.0%} flagged fatal (not predicted)"
            )
            out.unlink()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB (main process), {workers:.0f} MiB (largest loader worker)")


if __name__ == "__main__":
    main()
