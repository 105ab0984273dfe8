"""Benchmark: how many galaxies per second ``gampen simulate`` makes.

    python benchmarks/bench_simulate.py [--preset hsc] [--n 400] [--workers 2] [--seed 0]

Runs a full simulation (drawing, truth, FITS writing, catalog; worker start-up included)
into a temporary folder and prints galaxies/s.  Then times each stage of one galaxy in this
process on a sample, to show where the time goes (``r_e`` must not dominate).
Target for the hsc preset: at least 15 galaxies/s with 2 workers on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gampen.simulation.cutout import cutout_header, write_cutout
from gampen.simulation.presets import load_config
from gampen.simulation.priors import draw_galaxy, noise_seed
from gampen.simulation.render import render_cutout
from gampen.simulation.runner import simulate
from gampen.simulation.truth import truth_row

STAGE_SAMPLE = 100


def stage_times(preset: str, seed: int, folder: Path) -> dict[str, float]:
    """Milliseconds per galaxy of each stage, in this process (caches warmed first)."""
    config = load_config(preset)
    ids = range(10_000_000, 10_000_000 + STAGE_SAMPLE)  # ids the full run did not use
    render_cutout(draw_galaxy(config, seed, 0), config, 1)  # warm GalSim's n = 4 tables
    totals = dict.fromkeys(("parameters", "truth (r_e)", "render", "write FITS"), 0.0)
    for object_id in ids:
        t0 = time.perf_counter()
        galaxy = draw_galaxy(config, seed, object_id)
        t1 = time.perf_counter()
        truth_row(galaxy, config)
        t2 = time.perf_counter()
        data = render_cutout(galaxy, config, noise_seed(seed, object_id))
        t3 = time.perf_counter()
        write_cutout(folder / f"{object_id}.fits", data, cutout_header(galaxy, config))
        t4 = time.perf_counter()
        for stage, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[stage] += seconds
    return {stage: 1e3 * seconds / STAGE_SAMPLE for stage, seconds in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="hsc")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_config(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate(config, Path(tmp) / "set", n=args.n, seed=args.seed, workers=args.workers)
        seconds = time.perf_counter() - start
        print(
            f"{args.preset}: {args.n} galaxies with {args.workers} workers in {seconds:.1f} s "
            f"-> {args.n / seconds:.1f} galaxies/s (target >= 15 for hsc on 2 cores)"
        )
        stages = stage_times(args.preset, args.seed, Path(tmp))
    total = sum(stages.values())
    print(f"one process, per galaxy ({STAGE_SAMPLE} galaxies):")
    for stage, ms in stages.items():
        print(f"  {stage:<12} {ms:7.2f} ms  ({100 * ms / total:4.1f} %)")


if __name__ == "__main__":
    main()
