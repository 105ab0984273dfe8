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


def _with_shrink(bundle, folder, shrink: float):
    """A copy of a calibrated bundle whose map shrinks correlations by ``shrink``."""
    copy = folder / f"shrink-{shrink}"
    shutil.copytree(bundle, copy)
    meta = json.loads((copy / "gampen.json").read_text())
    meta["calibration"]["shrink"] = shrink
    (copy / "gampen.json").write_text(json.dumps(meta))
    return copy


def test_predict_applies_the_stored_map(tmp_path, calibrated):
    catalog, bundle, out = calibrated
    cal = read_metadata(out)["calibration"]
    assert "crowded" not in cal  # one map: 40 fitting galaxies are too few for two
    labels = LabelTransform.from_dict(read_metadata(bundle)["preprocessing"]["labels"])
    options = dict(n_passes=4, n_samples=60, num_workers=0, progress=False, batch_size=16)
    z = {}
    models = {"raw": bundle, "cal": _with_shrink(out, tmp_path, 0.0)}
    models["shrunk"] = _with_shrink(out, tmp_path, 0.3)
    for name, model in models.items():
        path = tmp_path / f"{name}.h5"
        predict(
            catalog,
            out=tmp_path / f"{name}.csv",
            model=model,
            options=PredictOptions(**options, samples_out=str(path)),
        )
        with h5py.File(path) as h5:
            z[name] = labels.forward(h5["samples"][:].astype(np.float64))
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
