"""gampen calibrate end to end, and gampen predict applying the stored calibration."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table

import gampen
from gampen.calibration.fit import CalibrationFit, Split
from gampen.calibration.maps import BrightnessSplit, Recalibration, SpreadMap
from gampen.calibration.workflow import (
    CalibrationResult,
    Part,
    fit_and_check,
    fitting_galaxies,
    map_fields,
    stored_factors,
)
from gampen.cli import main
from gampen.data.labels import LabelTransform
from gampen.errors import BundleError
from gampen.infer.predict import PredictOptions, predict
from gampen.model.bundle import load_bundle, read_metadata

from ..synthetic import tiny_bundle, write_labelled_set

FAST = ["--n-passes", "4", "--n-samples", "60", "--num-workers", "0", "--no-progress"]
BOOT = ["--bootstrap", "3"]
NAMES = ["bt", "r_e", "flux"]
#: The shipped model's bundle: whatever calibration it holds must load and round-trip.
SHIPPED = Path(gampen.__file__).parent / "models" / "hsc-compact"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    catalog = write_labelled_set(folder / "data", n=80)
    bundle = tiny_bundle(folder)
    out = folder / "calibrated"
    args = ["calibrate", str(bundle), "--catalog", str(catalog), "--out", str(out)]
    assert main([*args, *FAST, *BOOT]) == 0
    return catalog, bundle, out


def test_calibration_is_stored_with_its_check(calibrated):
    _, bundle, out = calibrated
    meta = read_metadata(out)
    cal = meta["calibration"]
    assert cal["method"] == "spread" and set(cal["scale"]) == {"bt", "r_e", "flux"}
    # An untrained network's posteriors are far off: the factors move away from 1.
    assert any(abs(np.log(a)) > 0.1 for a in cal["scale"].values())
    assert cal["fit"]["n"] + cal["check"]["n"] == 80 and cal["check"]["n"] == 40
    assert cal["fit"]["catalog"] == "info.csv"  # a name, never the machine's absolute path
    for name in ("bt", "r_e", "flux"):
        assert set(cal["check"]["before"][name]) >= {"ci68", "ci95", "ci99", "max_abs_deviation"}
    assert 0.0 <= cal["shrink"] < 1.0
    fit = cal["fit"]
    # 40 fitting galaxies: too few for a class of their own, so one map of 10 numbers,
    # and the numbers listed are the stored map's.
    assert fit["classes"] == "none" and fit["selection"]["steps"] == []
    assert fit["fitted_numbers"] == 10
    assert fit["numbers"]["scale"] == {"all": cal["scale"]}
    assert fit["numbers"]["tail"] == cal["tail"] and fit["numbers"]["power"] == cal["power"]
    assert fit["numbers"]["shrink"] == cal["shrink"] and set(cal["knee"].values()) == {1.0}
    boot = fit["bootstrap"]
    assert boot["resamples"] == 3
    spreads = [*boot["numbers_sd"]["scale"]["all"].values(), boot["numbers_sd"]["shrink"]]
    spreads += [v for key in ("tail", "power") for v in boot["numbers_sd"][key].values()]
    assert len(spreads) == 10 and all(v >= 0 for v in spreads) and any(v > 0 for v in spreads)
    assert {n: set(v) for n, v in boot["check_sd"].items()} == {
        n: {"ci68", "ci95", "ci99"} for n in NAMES
    }
    for key in ("joint_before", "joint_after"):
        assert set(cal["check"][key]) == {"ci68", "ci95"}
        assert all(0.0 <= v <= 1.0 for v in cal["check"][key].values())
    assert meta["weights_sha256"] == read_metadata(bundle)["weights_sha256"]


def test_calibration_claims_the_magnitudes_and_sizes_of_its_catalog(calibrated):
    catalog, bundle, out = calibrated
    truth = Table.read(catalog)
    mag = 27.0 - 2.5 * np.log10(np.asarray(truth["flux"]))
    claimed = read_metadata(out)["contract"]["calibrated_ranges"]
    assert set(claimed) == {"mag", "r_e"}
    for name, values in (("mag", mag), ("r_e", np.asarray(truth["r_e"]))):
        lo, hi = claimed[name]  # widened outward to 4 significant digits
        assert values.min() - 1e-3 * abs(values.min()) <= lo <= values.min()
        assert values.max() <= hi <= values.max() + 1e-3 * abs(values.max())
    assert "calibrated_ranges" not in read_metadata(bundle).get("contract", {})
    assert load_bundle(out).contract.calibrated_ranges == {k: tuple(v) for k, v in claimed.items()}


def _with_calibration(bundle, folder, name: str, **fields):
    """A copy of ``bundle`` named ``name`` whose calibration has ``fields`` set."""
    copy = folder / name
    shutil.copytree(bundle, copy)
    meta = json.loads((copy / "gampen.json").read_text())
    meta["calibration"].update(fields)
    (copy / "gampen.json").write_text(json.dumps(meta))
    return copy


def _standardised(catalog, model, folder, name: str, n_samples: int) -> np.ndarray:
    """``model``'s posterior samples of ``catalog`` from ``gampen predict``, standardised."""
    path = folder / f"{name}.h5"
    options = PredictOptions(
        n_passes=4,
        n_samples=n_samples,
        num_workers=0,
        progress=False,
        batch_size=16,
        samples_out=str(path),
    )
    predict(catalog, out=folder / f"{name}.csv", model=model, options=options)
    labels = LabelTransform.from_dict(read_metadata(model)["preprocessing"]["labels"])
    with h5py.File(path) as h5:
        return labels.forward(h5["samples"][:].astype(np.float64))


def test_predict_applies_the_stored_map(tmp_path, calibrated):
    catalog, bundle, out = calibrated
    cal = read_metadata(out)["calibration"]
    assert "crowded" not in cal  # one map: 40 fitting galaxies are too few for two
    models = {"raw": bundle, "cal": _with_calibration(out, tmp_path, "cal", shrink=0.0)}
    models["shrunk"] = _with_calibration(out, tmp_path, "shrunk", shrink=0.3)
    z = {name: _standardised(catalog, model, tmp_path, name, 60) for name, model in models.items()}
    for j, param in enumerate(("r_e", "flux")):  # bt can sit clipped at 0 or 1
        raw, new = z["raw"][..., j + 1], z["cal"][..., j + 1]
        centre, sd = np.median(raw, 1, keepdims=True), raw.std(1, keepdims=True)
        t = (raw - centre) / sd
        a, b, knee = cal["scale"][param], cal["tail"][param], cal["knee"][param]
        power, ref = cal["power"][param], cal["width_ref"][param]
        # The map written out by hand: a t inside the knee, a (knee + b (|t| - knee)) beyond,
        # times (sd / ref) ** power for a galaxy of width sd.
        g = a * np.sign(t) * np.where(np.abs(t) <= knee, np.abs(t), knee + b * (np.abs(t) - knee))
        g *= (sd / ref) ** power
        # float32 samples round-tripped through the label transform: agree to 1e-3 sd.
        np.testing.assert_allclose((new - centre) / sd, g, atol=2e-3)
    # The shrink scales every correlation by 1 - 0.3 (r_e and flux: never clipped).
    for plain, shrunk in zip(z["cal"], z["shrunk"], strict=True):
        rho = np.corrcoef(plain[:, 1], plain[:, 2])[0, 1]
        np.testing.assert_allclose(
            np.corrcoef(shrunk[:, 1], shrunk[:, 2])[0, 1], 0.7 * rho, atol=1e-3
        )


def test_predict_applies_a_stored_faint_map_to_faint_galaxies_only(tmp_path, calibrated):
    """A bundle whose main map is the identity and whose faint map triples the spread:
    galaxies whose median flux sample lies below the stored limit are stretched by 3 about
    their median, the others come out exactly as without calibration."""
    catalog, bundle, _ = calibrated
    raw = _standardised(catalog, bundle, tmp_path, "raw", 61)
    flux = np.sort(np.median(raw[:, :, 2], axis=1))  # 61 samples: the median is a sample
    below = float((flux[39] + flux[40]) / 2)  # 40 of the 80 galaxies are faint
    faint_map = {"param": "flux", "below": below, "scale": 3.0}
    split = _with_calibration(bundle, tmp_path, "split", scale=1.0, faint=faint_map)
    got = _standardised(catalog, split, tmp_path, "split", 61)
    centre = np.median(raw, axis=1, keepdims=True)
    faint = centre[:, 0, 2] < below
    assert faint.sum() == 40
    for j in (1, 2):  # r_e and flux (bt can sit clipped at 0 or 1)
        # float32 samples round-tripped through the label transform.
        np.testing.assert_allclose(
            got[faint, :, j] - centre[faint, :, j],
            3 * (raw[faint, :, j] - centre[faint, :, j]),
            atol=1e-4,
        )
        np.testing.assert_array_equal(got[~faint, :, j], raw[~faint, :, j])


def _four_classes(below: float) -> CalibrationFit:
    """A calibration of clean / crowded x higher / lower flux galaxies (numbers of 5
    decimals)."""
    return CalibrationFit(
        Split(True, "flux"),
        np.array([[0.9, 1.0, 1.1], [1.2, 1.3, 1.4], [0.8, 0.7, 0.6], [1.5, 1.6, 1.7]]),
        np.array([1.25, 0.75, 1.5]),
        np.array([0.125, 0.0, -0.25]),
        np.array([0.15, 0.035, 0.006]),
        (2, below),
        np.zeros(3),
        np.zeros(3),
        np.ones(3),
        shrink=0.04,
    )


def test_stored_factors_are_read_back_as_the_fitted_maps():
    """The lean calibration is stored in the format every version reads: each class's map
    in full (shared numbers repeated), and it applies as the fit's own maps do."""
    fit = _four_classes(below=0.25)
    factors = stored_factors(fit, NAMES)
    assert factors["faint"]["below"] == 0.25 and factors["crowded"]["above"] == 0.1
    assert factors["crowded"]["faint"]["scale"] == {"bt": 1.5, "r_e": 1.6, "flux": 1.7}
    assert factors["crowded"]["tail"] == factors["tail"] == {"bt": 1.25, "r_e": 0.75, "flux": 1.5}
    read = Recalibration.from_calibration(factors, NAMES)
    rng = np.random.default_rng(40)
    samples = rng.normal(size=(12, 201, 3)) * np.array([0.3, 0.05, 0.01])
    samples[:, :, 2] += rng.uniform(-0.5, 1.0, size=(12, 1))
    crowding = rng.uniform(0.0, 0.2, size=12)
    expected = fit.maps().apply(samples, crowding)
    np.testing.assert_array_equal(read.apply(samples, crowding), expected)
    one = CalibrationFit(**{**fit.__dict__, "split": Split(), "core": fit.core[:1]})
    assert isinstance(Recalibration.from_calibration(stored_factors(one, NAMES), NAMES), SpreadMap)
    dim = CalibrationFit(**{**fit.__dict__, "split": Split(False, "flux"), "core": fit.core[:2]})
    by_light = Recalibration.from_calibration(stored_factors(dim, NAMES), NAMES)
    assert isinstance(by_light, BrightnessSplit) and by_light.below == 0.25


def test_the_shipped_bundle_loads_and_its_maps_round_trip():
    """The shipped model's calibration loads (bundle checks included) and each of its
    maps, written back as calibrate writes a map, gives the stored numbers again."""
    bundle = load_bundle(SHIPPED)
    cal, names = bundle.calibration, bundle.param_names
    maps = Recalibration.from_calibration(cal, names)
    assert maps is not None
    classes = [(maps, cal)]
    if isinstance(maps, Recalibration):
        classes = [(maps.clean, cal), (maps.crowded, cal["crowded"])]
    for part, fields in classes:
        pairs = [(part, fields)]
        if isinstance(part, BrightnessSplit):
            pairs = [(part.bright, fields), (part.faint, fields["faint"])]
            assert part.below == fields["faint"]["below"]
        for spread, stored in pairs:
            written = map_fields(spread, names)
            assert written == {key: stored.get(key, written[key]) for key in written}
            assert written["scale"] == stored["scale"]


def test_the_printed_table_names_every_class_and_the_faint_limit_in_adu(calibrated):
    """The split's limit is stored standardised; the table shows it as a flux in ADU,
    exp(mean + std * below) for the log-flux label (written out here by hand), and as a
    magnitude; every class's core and the shared numbers, each +- its bootstrap sd."""
    _, bundle, out = calibrated
    stored = read_metadata(out)["calibration"]
    labels = read_metadata(bundle)["preprocessing"]["labels"]
    fit = _four_classes(below=0.25)
    numbers = fit.numbers(NAMES)
    hundredth = {k: getattr(fit, k) / 100 for k in ("core", "tail", "power", "shrink")}
    sd = CalibrationFit(**{**fit.__dict__, **hundredth}).numbers(NAMES)
    record = {
        **stored["fit"],
        "classes": fit.split.name,
        "fitted_numbers": fit.n_fitted,
        "numbers": numbers,
        "bootstrap": {**stored["fit"]["bootstrap"], "numbers_sd": sd},
    }
    check = stored["check"]
    groups = {"higher flux": check["after"], "lower flux": check["after"]}
    calibration = {
        **stored,
        **stored_factors(fit, NAMES),
        "fit": record,
        "check": {**check, "after_by_split": groups},
    }
    text = CalibrationResult(load_bundle(bundle), calibration).table()
    adu = np.exp(labels["mean"][2] + labels["std"][2] * 0.25)
    limit = f"{adu:.4g} ADU (mag {read_metadata(bundle)['zero_point'] - 2.5 * np.log10(adu):.2f})"
    assert f"lower flux: predicted flux < {limit}" in text
    assert "crowded: crowding index > 0.1" in text
    assert (
        "calibration: 19 fitted numbers, knee fixed at 1 sd; +- bootstrap sd over 3 refits" in text
    )
    for c in ("clean higher flux", "clean lower flux", "crowded higher flux", "crowded lower flux"):
        assert f"core, {c}" in text
    for group in ("higher flux", "lower flux"):
        assert f"after, {group} galaxies: 68 % coverage" in text
    row = next(line for line in text.splitlines() if line.startswith("core, crowded lower flux"))
    assert row.split()[4:] == ["1.500", "+-0.015", "1.600", "+-0.016", "1.700", "+-0.017"]


def test_refuses_the_training_catalog_and_an_existing_output(tmp_path, calibrated, capsys):
    catalog, bundle, out = calibrated
    status = main(["calibrate", str(bundle), "--catalog", str(catalog), "--out", str(out)])
    assert status == 2 and "exists" in capsys.readouterr().err
    again = tmp_path / "again"
    shutil.copytree(out, again)
    args = ["calibrate", str(bundle), "--catalog", str(catalog), "--out", str(again), *FAST]
    assert main([*args, "--overwrite", "--seed", "3"]) == 0
    assert read_metadata(again)["calibration"]["fit"]["seed"] == 3  # replaced, and readable
    trained = tmp_path / "trained"
    shutil.copytree(bundle, trained)
    meta = json.loads((trained / "gampen.json").read_text())
    from gampen.checksum import file_sha256

    meta["provenance"]["data_sha256"] = file_sha256(catalog)
    (trained / "gampen.json").write_text(json.dumps(meta))
    args = ["calibrate", str(trained), "--catalog", str(catalog), "--out", str(tmp_path / "x")]
    assert main([*args, *FAST]) == 2
    assert "trained on" in capsys.readouterr().err


def test_refuses_too_few_galaxies_and_missing_truth(tmp_path, calibrated, capsys):
    _, bundle, _ = calibrated
    small = write_labelled_set(tmp_path / "small", n=30)
    args = ["calibrate", str(bundle), "--catalog", str(small), "--out", str(tmp_path / "o")]
    assert main([*args, *FAST]) == 2
    assert "too few" in capsys.readouterr().err
    text = small.read_text().replace(",bt,", ",b_t,")
    small.write_text(text)
    assert main([*args, *FAST]) == 2
    assert "true value column" in capsys.readouterr().err


@pytest.mark.parametrize(
    "calibration, message",
    [
        ({"scale": {"bt": 1.0, "r_e": 0.0, "flux": 1.0}}, "r_e"),
        ({"scale": {"bt": 1.0, "r_e": 1.0}}, "'scale' must give one value per parameter"),
        ({"scale": {"bt": 1.0, "r_e": 1.0, "flux": 1.0}, "temperature": 2}, "unknown key"),
        ({"method": "isotonic", "scale": {"bt": 1, "r_e": 1, "flux": 1}}, "unknown calibration"),
        ({"scale": {"bt": 1, "r_e": 1, "flux": 1}, "knee": {"bt": 1.0}}, "'knee' must give one"),
        ({"scale": {"bt": 1, "r_e": 1, "flux": 1}, "knee": -1.0}, "knee"),
        ({"scale": {"bt": 1, "r_e": 1, "flux": 1}, "power": "1"}, "power.bt must be a finite"),
        ({"scale": {"bt": 1, "r_e": 1, "flux": 1}, "width_ref": 0}, "width_ref.bt must be > 0"),
        ({"tail": {"bt": 1, "r_e": 1, "flux": 1}}, "lacks 'scale'"),
    ],
)
def test_bundle_refuses_a_broken_calibration(tmp_path, calibrated, calibration, message):
    _, bundle, _ = calibrated
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    meta = json.loads((broken / "gampen.json").read_text())
    meta["calibration"] = calibration
    (broken / "gampen.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=message):
        load_bundle(broken)


def _trained_on(bundle, folder, catalog):
    """A copy of ``bundle`` whose provenance marks ``catalog`` as its training set."""
    from gampen.data.catalog import load_catalog
    from gampen.data.provenance import training_marks

    loaded = load_catalog(catalog, images=False, targets=("bt", "r_e", "flux"))
    marks = training_marks(loaded.labels, loaded.given_ids, catalog)
    copy = folder / "trained-model"
    shutil.copytree(bundle, copy)
    meta = json.loads((copy / "gampen.json").read_text())
    meta["provenance"].update(marks)
    (copy / "gampen.json").write_text(json.dumps(meta))
    return copy


def test_refuses_training_galaxies_in_any_file_and_the_training_simulation(
    tmp_path, calibrated, capsys
):
    from astropy.table import Table

    catalog, bundle, _ = calibrated
    trained = _trained_on(bundle, tmp_path, catalog)
    subset = Table.read(catalog)[10:70]
    subset.write(tmp_path / "subset.parquet")  # another format, another file hash
    args = ["calibrate", str(trained), "--catalog", str(tmp_path / "subset.parquet")]
    assert main([*args, "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "holds galaxies the model was trained on" in err and "labels of training" in err
    fresh = write_labelled_set(tmp_path / "fresh", n=60, seed=11)
    args = ["calibrate", str(trained), "--catalog", str(fresh), "--out", str(tmp_path / "f")]
    assert main([*args, *FAST, "--force"]) == 0  # galaxies drawn anew pass the guard
    # the same simulation run: simulate.json beside both catalogs, same seed and config
    settings = {"seed": 3, "config": {"name": "hsc"}}
    (catalog.parent / "simulate.json").write_text(json.dumps(settings))
    (fresh.parent / "simulate.json").write_text(json.dumps(settings))
    try:
        resimulated = _trained_on(bundle, tmp_path / "again", catalog)
        args = [
            "calibrate",
            str(resimulated),
            "--catalog",
            str(fresh),
            "--out",
            str(tmp_path / "s"),
        ]
        assert main([*args, *FAST]) == 2
        assert "simulated with the training set's seed (3)" in capsys.readouterr().err
    finally:
        (catalog.parent / "simulate.json").unlink()


def test_training_galaxies_are_calibrated_on_only_when_allowed(tmp_path, calibrated, capsys):
    """A catalog sharing the training galaxies' labels is refused; with
    --allow-training-galaxies the bundle is written, the overlap recorded in its
    calibration.fit; a bundle calibrated on new galaxies records nothing."""
    catalog, bundle, out = calibrated
    trained = _trained_on(bundle, tmp_path, catalog)
    args = ["calibrate", str(trained), "--catalog", str(catalog), *FAST, "--bootstrap", "0"]
    refused = tmp_path / "refused"
    assert main([*args, "--out", str(refused)]) == 2
    err = capsys.readouterr().err
    assert "holds galaxies the model was trained on" in err and "labels of training" in err
    assert "--allow-training-galaxies" in err and not refused.exists()
    allowed = tmp_path / "allowed"
    assert main([*args, "--out", str(allowed), "--force", "--allow-training-galaxies"]) == 0
    fit = read_metadata(allowed)["calibration"]["fit"]
    assert (
        "of its sampled rows have exactly the labels of training galaxies"
        in (fit["training_overlap"])
    )
    assert "training_overlap" not in read_metadata(out)["calibration"]["fit"]


def test_the_training_file_itself_is_refused_or_recorded(tmp_path, calibrated, caplog):
    import logging

    from gampen.calibration.workflow import calibrate
    from gampen.checksum import file_sha256
    from gampen.errors import CatalogError

    catalog, bundle, _ = calibrated
    same = _with_calibration(bundle, tmp_path, "same")
    meta = json.loads((same / "gampen.json").read_text())
    meta["provenance"]["data_sha256"] = file_sha256(catalog)
    (same / "gampen.json").write_text(json.dumps(meta))
    options = PredictOptions(n_passes=4, n_samples=60, num_workers=0, progress=False)
    with pytest.raises(CatalogError, match="is the catalog the model was trained on"):
        calibrate(same, catalog, options=options, bootstrap=0)
    with caplog.at_level(logging.WARNING, logger="gampen"):
        result = calibrate(
            same, catalog, options=options, bootstrap=0, allow_training_galaxies=True
        )
    why = "it is the catalog the model was trained on"
    assert result.calibration["fit"]["training_overlap"] == why
    assert f"calibrating on galaxies the model was trained on ({why})" in caplog.text


def test_a_small_set_warns_with_the_size_it_needs(tmp_path, calibrated, caplog):
    import logging

    from gampen.calibration.workflow import calibrate

    catalog, bundle, _ = calibrated
    options = PredictOptions(n_passes=4, n_samples=60, num_workers=0, progress=False)
    with caplog.at_level(logging.WARNING, logger="gampen"):
        result = calibrate(bundle, catalog, options=options)
    # 0.6827 x 0.3173 / 0.01^2 = 2166.2: the galaxies one binomial sd of 1 point needs
    assert "needs 2167 in each part" in caplog.text
    assert "40 check galaxies measure 68.27 % coverage to +-7.4 points" in result.table()


def test_a_calibration_worse_than_none_is_not_written_unless_forced(tmp_path, calibrated):
    import copy

    from gampen.calibration.workflow import write_calibrated
    from gampen.errors import CatalogError

    _, bundle, out = calibrated
    calibration = copy.deepcopy(read_metadata(out)["calibration"])
    check = calibration["check"]
    for name in check["after"]:
        check["before"][name]["max_abs_deviation"] = 0.073
        check["after"][name]["max_abs_deviation"] = 0.05
    check["after"]["bt"]["max_abs_deviation"] = 0.107  # the 300-galaxy case
    result = CalibrationResult(load_bundle(bundle), calibration)
    assert result.worse_than_none
    with pytest.raises(CatalogError, match=r"worse.*0\.073 before, 0\.107 after.*not written"):
        write_calibrated(result, tmp_path / "worse")
    assert not (tmp_path / "worse").exists()
    assert write_calibrated(result, tmp_path / "forced", force=True).exists()
    check["after"]["bt"]["max_abs_deviation"] = 0.073  # no worse: written
    assert not CalibrationResult(load_bundle(bundle), calibration).worse_than_none


def test_calibration_stores_an_ood_model_that_predict_applies(tmp_path, calibrated):
    from astropy.io import fits
    from astropy.table import Table

    from gampen.flags import Flag

    catalog, _, out = calibrated
    cal = read_metadata(out)["calibration"]
    assert cal["ood"]["quantile"] == 0.997 and cal["ood"]["threshold"] > 0
    assert 0.0 <= cal["check"]["ood_flagged"] <= 0.1
    options = PredictOptions(n_passes=4, n_samples=60, num_workers=0, progress=False)
    same = predict(catalog, model=out, options=options)
    assert np.isfinite(same["ood_score"]).all()
    assert np.mean(same["flags"] & Flag.OUT_OF_DISTRIBUTION > 0) <= 0.05
    # the same galaxies on a residual sky of 20 noise sigma: unlike anything calibrated
    table = Table.read(catalog)
    (tmp_path / "sky").mkdir()
    for name in table["file_name"]:
        with fits.open(catalog.parent / "cutouts" / name) as hdul:
            hdul[0].data = hdul[0].data + np.float32(1.0)
            hdul.writeto(tmp_path / "sky" / name)
    table.write(tmp_path / "sky" / "info.csv")
    shifted = predict(tmp_path / "sky" / "info.csv", model=out, options=options)
    assert np.median(shifted["ood_score"]) > 2 * np.median(same["ood_score"])
    assert np.mean(shifted["flags"] & Flag.OUT_OF_DISTRIBUTION > 0) > 0.5


def _claimed_half_as_wide(n: int, rng: np.random.Generator) -> Part:
    """One parameter whose samples claim half the true width (core factor 2)."""
    mu = rng.normal(size=(n, 1))
    width = rng.uniform(0.5, 2.0, size=(n, 1))
    truth = mu + width * rng.normal(size=(n, 1))
    return Part(
        mu[:, None] + 0.5 * width[:, None] * rng.normal(size=(n, 200, 1)), truth, np.zeros(n)
    )


def test_bootstrap_spread_matches_the_spread_over_independent_sets():
    """The oracle: the same calibration fitted on 10 fresh sets drawn from the same law;
    the sd of its numbers and of the coverage it gives one check set.  The bootstrap of
    one set must agree within what 10 draws of each can tell (a factor of 2)."""
    rng = np.random.default_rng(50)
    held = _claimed_half_as_wide(2000, rng)
    part = _claimed_half_as_wide(800, rng)
    boot = fit_and_check(part, held, ["bt"], seed=1, bootstrap=10, progress=False)["fit"]
    fresh = [
        fit_and_check(
            _claimed_half_as_wide(800, rng), held, ["bt"], seed=1, bootstrap=0, progress=False
        )
        for _ in range(10)
    ]
    core = statistics.stdev(f["fit"]["numbers"]["scale"]["all"]["bt"] for f in fresh)
    coverage = statistics.stdev(f["check"]["after"]["bt"]["ci68"] for f in fresh)
    got = boot["bootstrap"]
    assert 0.5 < got["numbers_sd"]["scale"]["all"]["bt"] / core < 2.0
    assert 0.5 < got["check_sd"]["bt"]["ci68"] / coverage < 2.0
    assert 0.01 < core < 0.2  # a core factor of 2 from 800 galaxies: a few per cent


def test_fitting_galaxies_scale_a_spread_as_one_over_root_n():
    # 6000 galaxies measure a spread of 0.5 points: 1 point needs a quarter of them.
    assert fitting_galaxies(6000, 0.005, 0.01) == 1500
    assert fitting_galaxies(100, 0.02, 0.01) == 400
    assert fitting_galaxies(3, 0.01, 0.01) == 3


def test_the_table_relates_the_check_precision_to_the_bootstrap_spread(calibrated):
    _, bundle, out = calibrated
    cal = read_metadata(out)["calibration"]
    spread = max(v["ci68"] for v in cal["fit"]["bootstrap"]["check_sd"].values())
    text = CalibrationResult(load_bundle(bundle), cal).table()
    need = math.ceil(40 * (spread / 0.01) ** 2)
    assert f"moves it by up to +-{100 * spread:.1f} points (bootstrap sd" in text
    assert f"+-1 point needs about {need:,})" in text
    for name in NAMES:
        sd = cal["fit"]["bootstrap"]["check_sd"][name]["ci68"]
        assert f"-> {cal['check']['after'][name]['ci68']:.3f} +-{sd:.3f}" in text


def test_bootstrap_can_be_skipped_but_needs_two_refits(tmp_path, calibrated, capsys):
    catalog, bundle, _ = calibrated
    args = ["calibrate", str(bundle), "--catalog", str(catalog), *FAST]
    assert main([*args, "--out", str(tmp_path / "one"), "--bootstrap", "1"]) == 2
    assert "bootstrap" in capsys.readouterr().err and not (tmp_path / "one").exists()
    assert main([*args, "--out", str(tmp_path / "none"), "--bootstrap", "0"]) == 0
    cal = read_metadata(tmp_path / "none")["calibration"]
    assert "bootstrap" not in cal["fit"] and "fitted_numbers" in cal["fit"]
    text = CalibrationResult(load_bundle(bundle), cal).table()
    assert "+-" not in text.split("coverage on")[0]  # no spreads where none were measured
