"""How often does an *exact* posterior's interval hold a pure disk (bt = 0) or a pure bulge
(bt = 1)?  Issue 20 asks 68 % intervals to hold such galaxies 68 +- 5 % of the time; this
computes what the right answer would give.

A toy with nothing learnt: bt is drawn from gampen's prior (point masses ``pi0`` at 0 and
``pi1`` at 1, uniform between), observed as ``y = bt + N(0, sigma)``, and the exact posterior
is evaluated on a fine grid.  Its equal-tailed interval at level ``c`` runs between the
posterior quantiles ``(1 -+ c) / 2``; whenever the mass at 0 exceeds ``(1 - c) / 2`` the
interval starts at 0 and holds a pure disk.  So the exact posterior covers pure galaxies far
above nominal, and only the whole prior (atoms and continuum together) comes near it.

The second table asks the same of a set *without* pure galaxies (bt uniform, as the clean
``hsc`` preset draws it), per fifth of true bt, for the exact posterior under the atom
prior and under the matching prior without atoms: issue 20 also wants every fifth within
5 points, and the atoms pull the outer fifths' intervals toward 0 and 1.

    .venv/bin/python scripts/exact_atom_coverage.py [--n 4000] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import norm

#: (pi0, pi1): the network's training prior (`hsc-real`: 15 % pure disks, 10 % pure bulges),
#: and a prior as rich in pure galaxies as the pure test set itself.
PRIORS = ((0.15, 0.10), (0.5, 0.5))
#: Noise of the toy's bt measurement: about the network's bt error (MAE 0.08) and half of it.
SIGMAS = (0.05, 0.1)
LEVELS = (0.6827, 0.9545)
GRID = np.linspace(0.0, 1.0, 2001)[1:-1]


def intervals(y: np.ndarray, sigma: float, pi0: float, pi1: float, level: float) -> np.ndarray:
    """Equal-tailed interval ends (N, 2) of the exact posterior of bt given each ``y`` (N,)."""
    step = GRID[1] - GRID[0]
    w0 = pi0 * norm.pdf(y, 0.0, sigma)[:, None]
    w1 = pi1 * norm.pdf(y, 1.0, sigma)[:, None]
    wc = (1 - pi0 - pi1) * norm.pdf(y[:, None], GRID[None, :], sigma) * step
    cdf = np.concatenate([w0, w0 + np.cumsum(wc, axis=1), w0 + wc.sum(1, keepdims=True) + w1], 1)
    cdf /= cdf[:, -1:]
    values = np.concatenate([[0.0], GRID, [1.0]])
    tail = (1 - level) / 2
    lo = values[np.argmax(cdf >= tail, axis=1)]
    hi = values[np.argmax(cdf >= 1 - tail, axis=1)]
    return np.stack([lo, hi], axis=1)


def coverage(truth: np.ndarray, sigma: float, prior: tuple[float, float], level: float, rng):
    """Share of galaxies of true bt ``truth`` (N,) whose exact interval holds it."""
    ends = intervals(truth + rng.normal(0.0, sigma, len(truth)), sigma, *prior, level)
    return float(np.mean((ends[:, 0] <= truth) & (truth <= ends[:, 1])))


def prior_draws(n: int, prior: tuple[float, float], rng) -> np.ndarray:
    """``n`` draws of bt from the prior with point masses ``prior`` at 0 and 1."""
    u = rng.random(n)
    return np.where(u < prior[0], 0.0, np.where(u < sum(prior), 1.0, rng.random(n)))


def fifth_coverage(
    sigma: float, prior: tuple[float, float], level: float, n: int, rng
) -> np.ndarray:
    """Coverage (5,) in each fifth of true bt of ``n`` galaxies drawn uniformly in (0, 1),
    each fifth apart, their exact intervals taken under ``prior``."""
    return np.array(
        [coverage(rng.uniform(q / 5, (q + 1) / 5, n), sigma, prior, level, rng) for q in range(5)]
    )


def main() -> None:
    """Print the tables: coverage of pure disks, pure bulges and the whole prior; then of
    each fifth of a set without pure galaxies."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="galaxies per cell")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| prior pi0 / pi1 | sigma | level | pure disks | pure bulges | whole prior |")
    print("|---|---|---|---|---|---|")
    for prior in PRIORS:
        for sigma in SIGMAS:
            for level in LEVELS:
                cells = [
                    coverage(np.zeros(args.n), sigma, prior, level, rng),
                    coverage(np.ones(args.n), sigma, prior, level, rng),
                    coverage(prior_draws(args.n, prior, rng), sigma, prior, level, rng),
                ]
                print(
                    f"| {prior[0]:g} / {prior[1]:g} | {sigma:g} | {100 * level:.2f} % | "
                    + " | ".join(f"{100 * c:.1f} %" for c in cells)
                    + " |"
                )
    print()
    print("| posterior's prior pi0 / pi1 | sigma | level | coverage by fifth of true bt |")
    print("|---|---|---|---|")
    for prior in (PRIORS[0], (0.0, 0.0)):
        for sigma in SIGMAS:
            for level in LEVELS:
                cells = fifth_coverage(sigma, prior, level, args.n, rng)
                print(
                    f"| {prior[0]:g} / {prior[1]:g} | {sigma:g} | {100 * level:.2f} % | "
                    + " / ".join(f"{100 * c:.1f}" for c in cells)
                    + " |"
                )


if __name__ == "__main__":
    main()
