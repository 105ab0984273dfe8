"""Conditional coverage: per-subset known answers, a model right on average and wrong per subset."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gampen.errors import CatalogError
from gampen.evaluation import evidence as ev
from gampen.evaluation.conditional import (
    bt_subsets,
    conditional_coverage,
    interval_width,
    quantile_subsets,
    subsets,
)
from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.options import EvaluateOptions

from .posteriors import (
    expected_joint,
    expected_marginal,
    gaussian_population,
    mixture_half_width,
    scale_mixture_population,
    write_inputs,
)

N = 3000
HEADLINE = ("neighbours", "mag_halves")


def _tolerance(level: float, n: int) -> float:
    """Four binomial standard deviations plus one point (estimated sample moments)."""
    return 4 * np.sqrt(level * (1 - level) / n) + 0.01


def _evaluate(tmp_path, pop):
    matched = load_inputs(*write_inputs(tmp_path, pop)[:2], samples=tmp_path / "samples.h5")
    found = ev.collect(matched, rng=np.random.default_rng(0), progress=False)
    return matched, conditional_coverage(found, subsets(matched))


@pytest.fixture(scope="module", params=[1.0, 0.5, 2.0], ids=["calibrated", "narrow", "wide"])
def result(request, tmp_path_factory):
    pop = gaussian_population(N, scale=request.param, n_samples=400, seed=11)
    return request.param, _evaluate(tmp_path_factory.mktemp("cond"), pop)


def test_every_headline_subset_has_the_analytic_coverage(result):
    scale, (_, cond) = result
    for split in HEADLINE:
        assert len(cond[split]) == 2
        for entry in cond[split]:
            n = entry["n"]
            assert n > 600
            for p, cell in entry["params"].items():
                for name in ("ci68", "ci95"):
                    nominal = cell["intervals"][name]["nominal"]
                    got = cell["intervals"][name]["empirical"]
                    expected = expected_marginal(nominal, scale)
                    assert abs(got - expected) < _tolerance(expected, n), (entry["label"], p)
                    if scale != 1.0:  # fails, in the right direction
                        assert np.sign(got - nominal) == np.sign(scale - 1), (entry["label"], p)
                        assert abs(got - nominal) > _tolerance(nominal, n)
            joint68 = entry["joint"]["mahalanobis"]["coverage"]["68"]
            assert abs(joint68 - expected_joint(0.68, scale)) < _tolerance(0.68, n)


def test_calibrated_on_average_but_wrong_in_each_half(tmp_path):
    narrow, wide = 0.5, 1.5
    pop = scale_mixture_population(N, narrow=narrow, wide=wide, n_samples=400, seed=3)
    matched = load_inputs(*write_inputs(tmp_path, pop)[:2], samples=tmp_path / "samples.h5")
    found = ev.collect(matched, rng=np.random.default_rng(0), progress=False)
    overall = ev.summarise(found, curves=False)["params"]["x"]["intervals"]
    halves = {e["label"]: e for e in conditional_coverage(found, subsets(matched))["mag_halves"]}
    for name, level in (("ci68", 0.6827), ("ci95", 0.9545)):
        assert abs(overall[name]["empirical"] - level) < _tolerance(level, N)
        q = mixture_half_width(level, narrow, wide)
        for label, sd in (("bright (mag < 21)", narrow), ("faint (mag >= 21)", wide)):
            entry = halves[label]
            expected = 2 * stats.norm.cdf(q / sd) - 1  # truth from N(0, sd^2) in +-q
            got = entry["params"]["x"]["intervals"][name]["empirical"]
            assert abs(got - expected) < _tolerance(expected, entry["n"]), (label, name)
            assert abs(got - level) > _tolerance(level, entry["n"]), (label, name)


def test_subsets_follow_the_columns_present(result):
    _, (matched, cond) = result
    assert list(cond)[:3] == ["neighbours", "mag_halves", "bt"]
    assert {"mag", "r_e", "psf_fwhm", "width_bt", "width_r_e", "width_flux"} <= set(cond)
    for split, n_bins in (("mag", 5), ("r_e", 5), ("psf_fwhm", 4), ("width_bt", 4)):
        assert len(cond[split]) == n_bins and sum(e["n"] for e in cond[split]) == N
    assert sum(e["n"] for e in cond["bt"]) == N  # no B/T exactly 0 or 1: fifths only
    assert set(cond["width_r_e"][0]["params"]) == {"r_e"} and "joint" not in cond["width_r_e"][0]
    matched.truth.remove_columns(["n_neighbours", "psf_fwhm"])
    names = {s.split for s in subsets(matched)}
    assert "neighbours" not in names and "psf_fwhm" not in names and "mag_halves" in names


def test_bt_bins_fixed_edges_one_included_and_pure_rows():
    bt = np.array([0.0, 0.1, 0.2, 0.39, 0.4, 0.8, 0.99, 1.0, 0.0, np.nan])
    parts = bt_subsets(bt)
    got = {p.label: np.flatnonzero(p.mask).tolist() for p in parts}
    assert got == {
        "true B/T in [0, 0.2)": [0, 1, 8],
        "true B/T in [0.2, 0.4)": [2, 3],
        "true B/T in [0.4, 0.6)": [4],  # [0.6, 0.8) is empty: left out
        "true B/T in [0.8, 1]": [5, 6, 7],
        "pure disks (B/T = 0)": [0, 8],
        "pure bulges (B/T = 1)": [7],
    }
    assert {p.split for p in parts} == {"bt"}
    mixed = bt_subsets(np.array([0.3, 0.5]))
    assert [p.label for p in mixed] == ["true B/T in [0.2, 0.4)", "true B/T in [0.4, 0.6)"]


def test_interval_width_is_relative_for_log_scaled_parameters(result):
    _, (matched, _) = result
    r_e = interval_width(matched, "r_e")
    expected = (matched.column("r_e_ci68_hi") - matched.column("r_e_ci68_lo")) / matched.column(
        "r_e_median"
    )
    np.testing.assert_allclose(r_e, expected)
    np.testing.assert_allclose(
        interval_width(matched, "bt"), matched.column("bt_ci68_hi") - matched.column("bt_ci68_lo")
    )


def test_quantile_bins_exact():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan])
    parts = quantile_subsets(values, "v", "value", n_bins=4)
    assert [p.mask.sum() for p in parts] == [2, 2, 2, 2]
    assert not any(p.mask[-1] for p in parts)
    assert parts[0].label == "value in [1, 2.75)" and parts[-1].label == "value in [6.25, 8]"
    discrete = quantile_subsets(np.array([0.0] * 6 + [1.0] * 2), "n", "n", n_bins=4)
    assert [p.mask.sum() for p in discrete] == [6, 2]
    single = quantile_subsets(np.full(5, 0.7), "psf", "psf", n_bins=4)
    assert len(single) == 1 and single[0].mask.all()
    assert quantile_subsets(np.full(3, np.nan), "x", "x") == []


def _by_population(tmp_path, narrow: float, wide: float):
    """The bright/faint mixture of :func:`scale_mixture_population`, its truth carrying a
    number column (bright in [0, 1), faint in [10, 11)) and a name column keyed the same."""
    pop = scale_mixture_population(N, narrow=narrow, wide=wide, n_samples=400, seed=5)
    bright = np.asarray(pop.truth["mag"]) < 21
    rng = np.random.default_rng(2)
    pop.truth["depth"] = np.where(bright, 0.0, 10.0) + rng.random(N)
    pop.truth["psf_model"] = np.where(bright, "moffat", "kolmogorov")
    matched = load_inputs(*write_inputs(tmp_path, pop)[:2], samples=tmp_path / "samples.h5")
    return matched, ev.collect(matched, rng=np.random.default_rng(0), progress=False)


def test_by_columns_bin_numbers_by_quartile_and_names_one_by_one(tmp_path):
    narrow, wide = 0.5, 1.5
    matched, found = _by_population(tmp_path, narrow, wide)
    parts = [s for s in subsets(matched, by=("depth", "psf_model")) if s.split.startswith("by ")]
    cond = conditional_coverage(found, parts)
    assert len(cond["by depth"]) == 4 and sum(e["n"] for e in cond["by depth"]) == N
    assert [e["label"] for e in cond["by psf_model"]] == [
        "psf_model = kolmogorov",
        "psf_model = moffat",
    ]
    bright = np.asarray(matched.truth["mag"]) < 21
    models = np.asarray(matched.truth["psf_model"]).astype(str)
    for part in parts[4:]:  # each name's bin holds exactly the galaxies of that name
        assert np.array_equal(part.mask, models == part.label.removeprefix("psf_model = "))
    entries = cond["by depth"] + cond["by psf_model"]
    judged = {narrow: 0, wide: 0}
    for part, entry in zip(parts, entries, strict=True):
        if bright[part.mask].all() or not bright[part.mask].any():  # a bin of one kind
            sd = narrow if bright[part.mask].all() else wide
            for name, level in (("ci68", 0.6827), ("ci95", 0.9545)):
                q = mixture_half_width(level, narrow, wide)
                expected = 2 * stats.norm.cdf(q / sd) - 1  # truth from N(0, sd^2) in +-q
                got = entry["params"]["x"]["intervals"][name]["empirical"]
                assert abs(got - expected) < _tolerance(expected, entry["n"]), (
                    entry["label"],
                    name,
                )
            judged[sd] += 1
    assert judged[narrow] >= 2 and judged[wide] >= 2  # quartiles and names of each kind


def test_by_a_column_the_truth_lacks_is_refused_naming_it(tmp_path):
    matched, _ = _by_population(tmp_path, 0.5, 1.5)
    with pytest.raises(CatalogError, match=r"no 'noise_correlation' column.*depth"):
        subsets(matched, by=("noise_correlation",))


def test_by_given_alone_through_the_options_is_one_column():
    assert EvaluateOptions(by="psf_model").by == ("psf_model",)
    assert EvaluateOptions(by=["depth", "psf_model"]).by == ("depth", "psf_model")
