"""Synthetic posteriors whose calibration is known exactly, for the known-answer tests.

Every galaxy has a Gaussian in the unbounded space (logit bt, log r_e, log flux) with its
own mean and correlated covariance; the truth is drawn from that Gaussian, so a posterior
with the same covariance is calibrated, and one whose covariance is scaled by ``scale``
is too narrow (< 1) or too wide (> 1).  Interval columns come from the Gaussian's exact
quantiles (scipy), samples from NumPy: nothing here uses gampen's own code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from astropy.table import Table
from scipy import optimize, special, stats

PARAMS = ("bt", "r_e", "flux")
#: Probability content of the table's intervals (the predictions contract).
TABLE_LEVELS = {"ci68": 0.6827, "ci95": 0.9545, "ci99": 0.9973}
ZERO_POINT = 27.0


@dataclass
class Population:
    """Truth catalog, predictions table and samples (n, S, k) of one synthetic set."""

    truth: Table
    predictions: Table
    samples: np.ndarray
    params: tuple[str, ...]


def to_physical(u: np.ndarray) -> np.ndarray:
    """(…, 3) unbounded values -> bt (sigmoid), r_e and flux (exp)."""
    return np.stack([special.expit(u[..., 0]), np.exp(u[..., 1]), np.exp(u[..., 2])], axis=-1)


def gaussian_population(
    n: int, *, scale: float, n_samples: int = 1000, seed: int = 0
) -> Population:
    """Gaussian posteriors in the unbounded space, covariance multiplied by ``scale``."""
    rng = np.random.default_rng(seed)
    mu = np.stack(
        [rng.uniform(-2, 2, n), rng.uniform(np.log(0.3), np.log(3), n), rng.uniform(4, 8, n)], 1
    )
    sigma = rng.uniform(0.1, 0.4, (n, 3))
    corr = np.array([[1.0, 0.5, -0.3], [0.5, 1.0, 0.4], [-0.3, 0.4, 1.0]])
    chol = np.linalg.cholesky(corr)[None] * sigma[:, :, None]  # L = diag(sigma) chol(corr)
    truth_u = mu + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, 3)))
    eps = rng.standard_normal((n, n_samples, 3))
    samples_u = mu[:, None, :] + np.sqrt(scale) * np.einsum("nij,nsj->nsi", chol, eps)
    truth = _truth_table(to_physical(truth_u), np.exp(mu[:, 2]), rng)
    predictions = Table({"object_id": np.arange(n), "flags": np.zeros(n, dtype=np.int64)})
    for j, p in enumerate(PARAMS):
        width = np.sqrt(scale) * sigma[:, j]
        for name, level in TABLE_LEVELS.items():
            z = stats.norm.ppf((1 + level) / 2)
            for end, sign in (("lo", -1), ("hi", 1)):
                u = mu.copy()
                u[:, j] = mu[:, j] + sign * z * width
                predictions[f"{p}_{name}_{end}"] = to_physical(u)[:, j]
        predictions[f"{p}_median"] = to_physical(mu)[:, j]
        predictions[f"{p}_mode"] = to_physical(mu)[:, j]
    return Population(truth, predictions, to_physical(samples_u).astype(np.float32), PARAMS)


def expected_marginal(level: float | np.ndarray, scale: float) -> np.ndarray:
    """Coverage of the equal-tailed interval of N(0, scale) for truths from N(0, 1)."""
    return 2 * stats.norm.cdf(np.sqrt(scale) * stats.norm.ppf((1 + np.asarray(level)) / 2)) - 1


def expected_joint(level: float | np.ndarray, scale: float, k: int = 3) -> np.ndarray:
    """Coverage of the Mahalanobis region of N(0, scale Σ) for truths from N(0, Σ), k dims."""
    return stats.chi2.cdf(scale * stats.chi2.ppf(level, k), k)


def scale_mixture_population(
    n: int, *, narrow: float = 0.5, wide: float = 1.5, n_samples: int = 1000, seed: int = 0
) -> Population:
    """One parameter ``x``: calibrated on average, too wide for bright, too narrow for faint.

    Bright galaxies (mag < 21) have truths from N(m, narrow^2), faint ones from
    N(m, wide^2); every posterior is the equal mixture of the two, which is the exact
    distribution of the truth when the magnitude is ignored.
    """
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-3, 3, n)
    bright = rng.random(n) < 0.5
    truth_x = centre + np.where(bright, narrow, wide) * rng.standard_normal(n)
    pick = rng.random((n, n_samples)) < 0.5
    spread = np.where(pick, narrow, wide) * rng.standard_normal((n, n_samples))
    samples = (centre[:, None] + spread)[:, :, None].astype(np.float32)
    truth = Table(
        {
            "object_id": np.arange(n),
            "x": truth_x,
            "mag": np.where(bright, rng.uniform(18, 21, n), rng.uniform(21, 24, n)),
        }
    )
    predictions = Table({"object_id": np.arange(n), "flags": np.zeros(n, dtype=np.int64)})
    for name, level in TABLE_LEVELS.items():
        q = mixture_half_width(level, narrow, wide)
        predictions[f"x_{name}_lo"] = centre - q
        predictions[f"x_{name}_hi"] = centre + q
    predictions["x_median"] = centre
    return Population(truth, predictions, samples, ("x",))


def truth_bin_population(
    n: int,
    *,
    narrow: tuple[float, float] = (0.4, 0.6),
    factor: float = 2.0,
    n_samples: int = 200,
    seed: int = 0,
) -> Population:
    """Posteriors exact for every true value, except ``factor`` times too narrow for the
    galaxies whose true bt lies in ``[narrow[0], narrow[1])``.

    Each parameter's estimate is its truth plus an N(0, sigma^2) error (bt as it is, r_e
    and flux in log) and its posterior is N(estimate, (sigma / f)^2), f = ``factor`` in
    the narrowed bin and 1 elsewhere, so the truth lies in the central ``a`` interval with
    probability 2 Phi(z_a / f) - 1 whatever the true value: bins of true values have a
    known coverage.  A tenth of the galaxies are pure disks (bt = 0), a tenth pure bulges.
    """
    rng = np.random.default_rng(seed)
    kind = rng.random(n)
    bt = np.where(kind < 0.1, 0.0, np.where(kind < 0.2, 1.0, rng.uniform(0, 1, n)))
    true_u = np.stack([bt, rng.uniform(np.log(0.3), np.log(3), n), rng.uniform(4, 8, n)], 1)
    sigma = np.array([0.05, 0.2, 0.1])
    f = np.where((bt >= narrow[0]) & (bt < narrow[1]), factor, 1.0)
    estimate = true_u + sigma * rng.standard_normal((n, 3))
    width = sigma / f[:, None]
    samples_u = estimate[:, None] + width[:, None] * rng.standard_normal((n, n_samples, 3))

    def physical(u: np.ndarray) -> np.ndarray:
        return np.stack([u[..., 0], np.exp(u[..., 1]), np.exp(u[..., 2])], axis=-1)

    truth = Table({"object_id": np.arange(n)})
    for j, p in enumerate(PARAMS):
        truth[p] = physical(true_u)[:, j]
    truth["mag"] = ZERO_POINT - 2.5 * np.log10(truth["flux"])
    predictions = Table({"object_id": np.arange(n), "flags": np.zeros(n, dtype=np.int64)})
    for j, p in enumerate(PARAMS):
        for name, level in TABLE_LEVELS.items():
            z = stats.norm.ppf((1 + level) / 2)
            for end, sign in (("lo", -1), ("hi", 1)):
                predictions[f"{p}_{name}_{end}"] = physical(estimate + sign * z * width)[:, j]
        predictions[f"{p}_median"] = physical(estimate)[:, j]
    return Population(truth, predictions, physical(samples_u).astype(np.float32), PARAMS)


def mixture_half_width(level: float, narrow: float, wide: float) -> float:
    """Half-width of the central ``level`` interval of the equal mixture of two normals."""

    def mass(q: float) -> float:
        inside = stats.norm.cdf(q / narrow) + stats.norm.cdf(q / wide) - 1
        return inside - level

    return float(optimize.brentq(mass, 1e-9, 50 * wide))


def write_inputs(folder: Path, population: Population, *, shuffle_samples: bool = True) -> tuple:
    """Predictions (.parquet), truth (.csv) and samples (.h5, rows shuffled) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pred, truth, h5_path = folder / "pred.parquet", folder / "truth.csv", folder / "samples.h5"
    population.predictions.write(pred, overwrite=True)
    population.truth.write(truth, overwrite=True)
    n = len(population.predictions)
    order = np.random.default_rng(1).permutation(n) if shuffle_samples else np.arange(n)
    with h5py.File(h5_path, "w") as h5:
        h5["samples"] = population.samples[order]
        h5["object_id"] = np.asarray(population.predictions["object_id"])[order]
        h5.create_dataset("param_names", data=list(population.params), dtype=h5py.string_dtype())
    return pred, truth, h5_path


def _truth_table(
    physical: np.ndarray, observed_flux: np.ndarray, rng: np.random.Generator
) -> Table:
    """A truth catalog with the simulator's covariate columns.

    ``mag`` is the magnitude of the posterior centre (a function of the data), so that a
    calibrated posterior stays exactly calibrated within magnitude bins; bins of a true
    value (as r_e) select on the truth's own deviation and need not.
    """
    n = len(physical)
    return Table(
        {
            "object_id": np.arange(n),
            "bt": physical[:, 0],
            "r_e": physical[:, 1],
            "flux": physical[:, 2],
            "mag": ZERO_POINT - 2.5 * np.log10(observed_flux),
            "n_neighbours": rng.integers(0, 3, n),
            "psf_fwhm": rng.uniform(0.5, 0.9, n),
        }
    )
