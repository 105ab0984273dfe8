"""gampen calibrate end to end, and gampen predict applying the stored calibration."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from gampen.cli import main
from gampen.data.labels import LabelTransform
from gampen.errors import BundleError
from gampen.evaluation.calibration import CalibrationResult
from gampen.infer.predict import PredictOptions, predict
from gampen.model.bundle import load_bundle, read_metadata

from ..synthetic import tiny_bundle, write_labelled_set

FAST = ["--n-passes", "4", "--n-samples", "60", "--num-workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    catalog = write_labelled_set(folder / "data", n=80)
    bundle = tiny_bundle(folder)
    out = folder / "calibrated"
    status = main(["calibrate", str(bundle), "--catalog", str(catalog), "--out", str(out), *FAST])
    assert status == 0
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
    for key in ("joint_before", "joint_after"):
        assert set(cal["check"][key]) == {"ci68", "ci95"}
        assert all(0.0 <= v <= 1.0 for v in cal["check"][key].values())
    assert meta["weights_sha256"] == read_metadata(bundle)["weights_sha256"]


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


def test_the_printed_table_names_every_map_and_the_faint_limit_in_adu(calibrated):
    """The split's limit is stored standardised; the table shows it as a flux in ADU,
    exp(mean + std * below) for the log-flux label (written out here by hand), and as a
    magnitude."""
    _, bundle, out = calibrated
    stored = read_metadata(out)["calibration"]
    labels = read_metadata(bundle)["preprocessing"]["labels"]
    below = 0.25
    factors = {k: stored[k] for k in ("scale", "tail", "knee", "power", "width_ref", "shrink")}
    faint = {"param": "flux", "below": below, **factors}
    crowded = {"above": 0.1, **factors}
    calibration = {**stored, "faint": faint, "crowded": crowded}
    check = calibration["check"]
    groups = {"bright": check["after"], "faint": check["after"]}
    calibration["check"] = {**check, "after_by_brightness": groups}
    text = CalibrationResult(load_bundle(bundle), calibration).table()
    adu = np.exp(labels["mean"][2] + labels["std"][2] * below)
    limit = f"{adu:.4g} ADU (mag {read_metadata(bundle)['zero_point'] - 2.5 * np.log10(adu):.2f})"
    assert f"map for clean (crowding <= 0.1), predicted flux < {limit}:" in text
    assert f"map for clean (crowding <= 0.1), predicted flux >= {limit}:" in text
    assert "map for crowded (crowding > 0.1):" in text
    assert "after, faint galaxies: 68 % coverage" in text


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
    from astropy.table import Table

    from gampen.data.catalog import label_array, object_ids
    from gampen.data.provenance import training_marks

    table = Table.read(catalog)
    marks = training_marks(
        table, label_array(table, ["bt", "r_e", "flux"]), object_ids(table), catalog
    )
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


def test_a_small_set_warns_with_the_size_it_needs(tmp_path, calibrated, caplog):
    import logging

    from gampen.evaluation.calibration import calibrate

    catalog, bundle, _ = calibrated
    options = PredictOptions(n_passes=4, n_samples=60, num_workers=0, progress=False)
    with caplog.at_level(logging.WARNING, logger="gampen"):
        result = calibrate(bundle, catalog, options=options)
    # 0.6827 x 0.3173 / 0.01^2 = 2166.2: the galaxies one binomial sd of 1 point needs
    assert "needs 2167 in each part" in caplog.text
    assert "40 check galaxies measure 68.27 % coverage to +-7.4 points" in result.table()


def test_a_calibration_worse_than_none_is_not_written_unless_forced(tmp_path, calibrated):
    import copy

    from gampen.errors import CatalogError
    from gampen.evaluation.calibration import write_calibrated

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
    assert cal["ood"]["quantile"] == 0.995 and cal["ood"]["threshold"] > 0
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
