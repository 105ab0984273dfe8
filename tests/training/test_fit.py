"""End-to-end training on tiny synthetic sets: bundle, resume after a kill, NaN guard,
transfer learning, packs and two-process DDP."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from astropy.io import fits
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

import gampen
from gampen.data.catalog import load_catalog, read_catalog
from gampen.data.packfile import write_pack
from gampen.errors import CatalogError, ConfigError
from gampen.infer.predict import PredictOptions, predict
from gampen.model.bundle import load_bundle
from gampen.training.checkpoint_io import SafeCheckpointIO
from gampen.training.config import TrainConfig
from gampen.training.fit import train
from gampen.training.module import GampenModule, TrainingDivergedError

from ..synthetic import DDP_TWO_CPUS, TINY_NETWORK, run_gampen, write_labelled_set


def _config(tmp_path, catalog, **fields) -> TrainConfig:
    base = dict(
        catalog=str(catalog),
        out=str(tmp_path / "model"),
        input_size=32,
        epochs=2,
        batch_size=16,
        network=dict(TINY_NETWORK),
        progress=False,
        logger=["csv"],
    )
    return TrainConfig(**{**base, **fields})


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_labelled_set(tmp_path_factory.mktemp("set"), n=96)


def test_train_writes_a_complete_bundle(tmp_path, labelled):
    bundle_path = train(_config(tmp_path, labelled, epochs=3))
    bundle = load_bundle(bundle_path)
    assert bundle.param_names == ["bt", "r_e", "flux"]
    assert (bundle.pixel_scale, bundle.zero_point) == (0.2, 27.0)  # from the FITS headers
    assert set(bundle.preprocessing) == {"stretch", "labels", "scalars"}
    metrics = bundle.metrics
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 96
    assert metrics["val_nll"] < metrics["val_nll_baseline"] + 1.0  # sane, finite
    run = tmp_path / "model.run"
    splits = read_catalog(run / "splits.csv")
    assert sorted(set(splits["split"])) == ["test", "train", "val"]
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "logs" / "version_0" / "metrics.csv").exists()
    assert json.loads((run / "config.json").read_text())["epochs"] == 3


def test_mixture_training_stores_its_label_epsilon(tmp_path, labelled):
    config = _config(tmp_path, labelled, loss="mixture", train_passes=4, label_eps=0.05)
    bundle = load_bundle(train(config))
    assert bundle.preprocessing["labels"]["eps"] == 0.05
    assert bundle.provenance["data"] == "info.csv"  # no absolute path of this machine
    assert bundle.provenance["splits"] == "model.run/splits.csv"
    assert bundle.metrics["val_nll"] < bundle.metrics["val_nll_baseline"] + 1.0
    with pytest.raises(ConfigError, match="train_passes"):
        _config(tmp_path, labelled, loss="mixture", train_passes=1)
    with pytest.raises(ConfigError, match="label_eps"):
        _config(tmp_path, labelled, label_eps=0.5)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from lightning.pytorch.callbacks import Callback
    from gampen.training.config import TrainConfig
    from gampen.training.fit import train

    class Kill(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    train(TrainConfig(**{config}), callbacks=[Kill()])
    """
)


class WorsenAfterFirstEpoch(Callback):
    """Scrambles the weights before every validation but the first, so no later epoch
    beats epoch 0 on val_nll."""

    def on_validation_start(self, trainer, module):
        if trainer.current_epoch > 0:
            with torch.no_grad():
                for p in module.parameters():
                    p.add_(torch.randn_like(p))


def test_last_checkpoint_is_the_latest_epoch_even_when_it_did_not_improve(tmp_path, labelled):
    """--resume starts from last.ckpt: it must hold the last epoch, not the best one
    (Lightning's save_last only writes it when the best improves)."""
    config = _config(tmp_path, labelled, epochs=3, early_stopping_patience=0)
    bundle = load_bundle(train(config, callbacks=[WorsenAfterFirstEpoch()]))
    folder = tmp_path / "model.run" / "checkpoints"
    io = SafeCheckpointIO()
    assert io.load_checkpoint(folder / "last.ckpt")["epoch"] == 2
    assert io.load_checkpoint(folder / "best.ckpt")["epoch"] == 0
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]
    best = io.load_checkpoint(folder / "best.ckpt")["state_dict"]
    weights = bundle.net.state_dict()
    assert all(torch.equal(weights[k.removeprefix("net.")], v) for k, v in best.items())


@pytest.mark.parametrize("loss, workers", [("nll", 0), ("mixture", 1)])
def test_resume_after_kill_is_bitwise_identical(tmp_path, labelled, loss, workers):
    """With loader workers too: they prefetch from the sampler before Lightning sets the
    resumed epoch, and the replayed epoch used epoch 0's order (found by benchmarks/faults.py)."""
    fields = dict(epochs=3, early_stopping_patience=0, loss=loss, num_workers=workers)
    straight = _config(tmp_path / "a", labelled, **fields)
    train(straight)
    killed = _config(tmp_path / "b", labelled, **fields)
    script = KILLER.format(config=repr(killed.to_dict()))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]  # really killed mid-epoch 1
    assert not (tmp_path / "b" / "model").exists()
    killed.resume = True
    train(killed)
    a = load_file(tmp_path / "a" / "model.run" / "checkpoints" / "last.ckpt")
    b = load_file(tmp_path / "b" / "model.run" / "checkpoints" / "last.ckpt")
    weights = [k for k in a if k.startswith("/state_dict/")]
    assert weights and all(torch.equal(a[k], b[k]) for k in weights)
    moments = [k for k in a if k.startswith("/optimizer_states/")]
    assert moments and all(torch.equal(a[k], b[k]) for k in moments)


def test_resume_refuses_changed_settings(tmp_path, labelled):
    train(_config(tmp_path, labelled, epochs=1))
    with pytest.raises(Exception, match=r"--resume with settings that differ.*'lr'"):
        train(_config(tmp_path, labelled, epochs=2, lr=0.1, resume=True))


def test_nan_guard_names_object_ids(tmp_path, labelled):
    from gampen.model.config import NetworkConfig
    from gampen.model.network import GampenNet

    net = GampenNet(NetworkConfig(input_size=32, **TINY_NETWORK))
    with torch.no_grad():
        next(net.head.parameters()).fill_(float("nan"))
    module = GampenModule(net, _config(tmp_path, labelled), object_ids=["a", "b", "c", "d"])
    batch = {
        "image": torch.zeros(2, 1, 32, 32),
        "target": torch.zeros(2, 3),
        "flags": torch.zeros(2, dtype=torch.int64),
        "index": torch.tensor([1, 3]),
        "scalars": torch.zeros(2, 0),
    }
    with pytest.raises(TrainingDivergedError, match=r"non-finite training loss.*\['b', 'd'\]"):
        module.training_step(batch, 0)


def test_transfer_learning_freezes_and_keeps_scalers(tmp_path, labelled):
    first = load_bundle(train(_config(tmp_path / "a", labelled, epochs=1)))
    tuned = load_bundle(
        train(
            _config(
                tmp_path / "b",
                labelled,
                epochs=1,
                lr=0.01,
                init_from=str(tmp_path / "a" / "model"),
                freeze=["stn", "backbone"],
            )
        )
    )
    for name, value in first.net.backbone.state_dict().items():
        assert torch.equal(value, tuned.net.backbone.state_dict()[name]), name
    head_a, head_b = first.net.head.state_dict(), tuned.net.head.state_dict()
    assert any(not torch.equal(head_a[k], head_b[k]) for k in head_a)
    assert tuned.preprocessing["labels"] == first.preprocessing["labels"]


BORDER = {"method": "border", "width": 8}  # the bundle record of --background border


def test_fine_tuning_adds_or_inherits_the_border_background_and_remembers_each_stage(
    tmp_path, labelled
):
    """``--background border`` with ``--init-from`` removes the background even when the
    starting bundle had none; without it the bundle's own setting is kept.  Each stage's
    training marks travel in ``earlier``, so calibration refuses the first stage's
    galaxies through the last model."""
    other = write_labelled_set(tmp_path / "other", n=96, seed=1)  # the fine-tuning set

    def stage(name: str, catalog, base: str | None = None, **fields):
        """Train one epoch into ``tmp_path/name``, from ``tmp_path/base``'s bundle if given."""
        init = {"init_from": str(tmp_path / base / "model")} if base else {}
        return load_bundle(train(_config(tmp_path / name, catalog, epochs=1, **init, **fields)))

    first = stage("a", labelled)
    border = stage("b", other, "a", background="border")
    kept = stage("c", other, "b")
    plain = stage("d", other, "a")
    assert "background" not in first.preprocessing and "background" not in plain.preprocessing
    assert border.preprocessing["background"] == BORDER
    assert kept.preprocessing["background"] == BORDER
    assert "earlier" not in first.provenance and "simulation" not in first.provenance
    marks = [{"training_rows": b.provenance["training_rows"]} for b in (border, first)]
    assert border.provenance["earlier"] == marks[1:] == plain.provenance["earlier"]
    assert kept.provenance["earlier"] == marks  # newest stage first
    assert marks[0] != marks[1]
    # the first stage's galaxies, in another file, through the third model
    again = tmp_path / "first_again.ecsv"
    read_catalog(labelled).write(again)
    with pytest.raises(CatalogError, match=r"holds galaxies the model was trained on \(\d+ of"):
        gampen.calibrate(tmp_path / "c" / "model", again, out=tmp_path / "cal", n_passes=2)
    assert not (tmp_path / "cal").exists()


def test_photometry_and_conditions_train_from_a_pack_and_predict_needs_the_column(
    tmp_path, labelled
):
    table = read_catalog(labelled)
    pack = tmp_path / "train.h5"
    write_pack(_all_columns(labelled), pack, input_size=32, progress=False)
    config = _config(tmp_path, pack, epochs=1, photometry=True, conditions=["psf_fwhm"])
    path = train(config)
    bundle = load_bundle(path)
    assert bundle.preprocessing["scalars"] == {"photometry": True, "conditions": ["psf_fwhm"]}
    assert bundle.net.config.n_scalars == 2 * 11 + 1
    splits = read_catalog(tmp_path / "model.run" / "splits.csv")
    train_ids = set(np.asarray(splits["object_id"])[np.asarray(splits["split"]) == "train"])
    psf = np.array([row["psf_fwhm"] for row in table if row["object_id"] in train_ids])
    standardise = bundle.net.scalar_encoder[0]  # fixed training-split statistics
    assert standardise.mean[-1].item() == pytest.approx(psf.mean(), rel=1e-5)
    assert standardise.std[-1].item() == pytest.approx(psf.std(), rel=1e-4)
    options = PredictOptions(n_passes=4, n_samples=20, progress=False)
    result = predict(labelled, model=path, options=options)
    assert np.isfinite(np.asarray(result["r_e_median"])).all()
    table.remove_column("psf_fwhm")
    table.write(tmp_path / "no_psf.csv")
    (tmp_path / "cutouts").symlink_to(labelled.parent / "cutouts")
    with pytest.raises(CatalogError, match=r"needs the condition\(s\) \['psf_fwhm'\]"):
        predict(tmp_path / "no_psf.csv", model=path, options=options)
    with pytest.raises(ConfigError, match="other scalar inputs"):
        train(_config(tmp_path / "b", labelled, epochs=1, init_from=str(path)))


def _all_columns(catalog):
    """The catalog with every column, as ``gampen pack`` reads it."""
    return load_catalog(catalog, keep_columns="all")


def test_training_data_reads_the_catalog_once_and_names_missing_labels(tmp_path, labelled):
    from gampen.data.labels import LabelTransform
    from gampen.training.data import TrainingData

    data = TrainingData(_config(tmp_path, labelled, split_column=None))
    table = read_catalog(labelled)
    written = np.stack([table[name] for name in ("bt", "r_e", "flux")], 1)
    np.testing.assert_array_equal(data.label_values, written)
    assert data.catalog.source == str(labelled) and len(data.catalog) == 96
    with pytest.raises(CatalogError, match=r"info\.csv: label column\(s\) \['mass'\] not found"):
        TrainingData(_config(tmp_path, labelled, targets=["bt", "mass"]))
    with pytest.raises(ConfigError, match="--init-from: the bundle predicts other parameters"):
        TrainingData(_config(tmp_path, labelled), labels=LabelTransform(names=("bt",)))


def test_train_from_pack(tmp_path, labelled):
    pack = tmp_path / "train.h5"
    write_pack(_all_columns(labelled), pack, input_size=32, progress=False)
    bundle = load_bundle(train(_config(tmp_path, pack, epochs=1)))
    assert bundle.pixel_scale == 0.2 and bundle.metrics["n_val"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", ["16", "128"])  # 128: one batch for two ranks
def test_ddp_two_cpu_processes(tmp_path, labelled, batch_size):
    run_gampen(
        "train",
        str(labelled),
        "--out",
        str(tmp_path / "model"),
        "--input-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        batch_size,
        "--logger",
        "csv",
        "--config",
        str(_tiny_yaml(tmp_path)),
        *DDP_TWO_CPUS,
    )
    bundle = load_bundle(tmp_path / "model")
    assert bundle.metrics["epochs_trained"] == 1


def _tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps({"network": TINY_NETWORK}))  # JSON is YAML
    return path


def test_frozen_parts_keep_batch_norm_statistics_but_not_dropout_off(labelled):
    """Fine-tuning a head on a frozen trunk: batch-norm uses the stored statistics, and the
    trunk's dropout stays on, as in the MC-dropout predictions the head is fitted for."""
    from gampen.model.config import NetworkConfig
    from gampen.model.network import GampenNet

    net = GampenNet(NetworkConfig(input_size=32, **TINY_NETWORK))
    config = TrainConfig(
        catalog=str(labelled), out="unused", init_from="base", freeze=["stn", "backbone"]
    )
    module = GampenModule(net, config, object_ids=[0])
    net.train()
    module.on_train_epoch_start()
    frozen = [m for part in (net.stn, net.backbone) for m in part.modules()]
    norms = [m for m in frozen if isinstance(m, torch.nn.BatchNorm2d)]
    drops = [m for m in frozen if isinstance(m, torch.nn.Dropout)]
    assert norms and drops
    assert not any(m.training for m in norms)
    assert all(m.training for m in drops)
    assert net.head.training  # the part being fitted is untouched


def test_trainer_asks_for_deterministic_kernels_but_only_warns_where_none_exist(tmp_path, labelled):
    """GPU training must run: CUDA has no deterministic backward for adaptive pooling or
    grid_sample, and strict determinism made the first backward pass raise there."""
    from gampen.training.fit import _trainer

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        _trainer(_config(tmp_path, labelled), tmp_path / "run", [])
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@pytest.mark.parametrize(("loss", "censored"), [("moments", True), ("nll", True), ("mse", False)])
def test_pure_disks_and_bulges_are_censored_labels(labelled, loss, censored):
    """bt's ends, from the label transform, reach the loss: a pure bulge's score is the
    head's mass beyond the end (the density loss for mse, which has no mass to censor)."""
    from gampen.data.labels import LabelTransform
    from gampen.model.config import NetworkConfig
    from gampen.model.network import GampenNet
    from gampen.training.module import censoring_of

    labels = LabelTransform(
        ("r_e", "bt"), ("log", "logit"), eps=0.05, mean=np.zeros(2), std=np.ones(2)
    )
    censoring = censoring_of(labels)
    end = np.log(0.95 / 0.05)
    assert (censoring.index, censoring.low, censoring.high) == (
        1,
        pytest.approx(-end),
        pytest.approx(end),
    )
    assert (
        censoring_of(LabelTransform(("r_e",), ("log",), mean=np.zeros(1), std=np.ones(1))) is None
    )
    net = GampenNet(NetworkConfig(input_size=32, **TINY_NETWORK))
    config = TrainConfig(catalog=str(labelled), out="unused", loss=loss, train_passes=2)
    module = GampenModule(net, config, object_ids=[0], censoring=censoring)
    assert (module.censoring is not None) == censored


# --- PSF images ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_psf(tmp_path_factory):
    """The labelled set with a PSF HDU in every cutout."""
    return write_labelled_set(tmp_path_factory.mktemp("psf_set"), n=96, psf=True)


def _psf_config(tmp_path, catalog, **fields) -> TrainConfig:
    return _config(tmp_path, catalog, epochs=1, conditions=["psf_fwhm"], psf_image=True, **fields)


def test_training_hides_a_share_of_psf_images_and_validation_none(tmp_path, with_psf):
    from gampen.training.data import TrainingData

    data = TrainingData(_psf_config(tmp_path, with_psf, psf_drop=0.5))
    where = data.scalars.psf_slice(1)

    def shown() -> list[float]:
        """The PSF indicator of each training item of epoch 0, in the sampler's order."""
        loader = data.train_dataloader()
        return [loader.dataset[key]["scalars"][where][0].item() for key in loader.sampler]

    first = shown()
    assert set(first) == {0.0, 1.0} and 0.3 < np.mean(first) < 0.7  # 67 galaxies, p = 0.5
    assert shown() == first  # seeded
    val = data.val_dataloader(rank=0, world=1).dataset
    assert val.psf_drop is None and all(
        val[(k, 0)]["scalars"][where][0] == 1 for k in range(len(val))
    )
    mean, std = data.scalar_statistics()
    assert mean[where][0] == pytest.approx(0.5) and std[where][0] == pytest.approx(0.5)
    assert (std[where] >= 0.05).all()


def test_psf_image_model_trains_and_predicts_with_each_galaxy_psf(tmp_path, with_psf, labelled):
    from gampen.data.psf_features import PSF_FEATURES

    from ..synthetic import psf_hdu

    path = train(_psf_config(tmp_path, with_psf))
    bundle = load_bundle(path)
    assert bundle.preprocessing["scalars"] == {
        "photometry": False,
        "conditions": ["psf_fwhm"],
        "psf_image": True,
    }
    assert bundle.net.config.n_scalars == 1 + PSF_FEATURES and bundle.contract.psf_image
    table = read_catalog(with_psf)[:6]
    options = PredictOptions(
        n_passes=4, n_samples=20, progress=False, image_dir=str(with_psf.parent / "cutouts")
    )
    results = {}
    for name, psf in (("narrow", psf_hdu(0.5)), ("wide", psf_hdu(1.0, 0.6))):
        fits.PrimaryHDU(psf.data, header=psf.header).writeto(tmp_path / f"{name}.fits")
        table["psf_image"] = str(tmp_path / f"{name}.fits")
        results[name] = predict(table, model=path, options=options)
        assert results[name].meta["PSFIMG"] == "column psf_image: 6"
    table["psf_image"] = ""  # empty: each cutout's own PSF HDU
    results["hdu"] = predict(table, model=path, options=options)
    assert results["hdu"].meta["PSFIMG"] == "PSF HDU: 6"
    without = read_catalog(labelled)[:6]  # cutouts without a PSF HDU: psf_fwhm alone
    options.image_dir = str(labelled.parent / "cutouts")
    results["none"] = predict(without, model=path, options=options)
    assert results["none"].meta["PSFIMG"] == "none: 6"
    means = {k: np.asarray(v["r_e_mean"]) for k, v in results.items()}
    for a, b in itertools.combinations(means, 2):
        assert not np.allclose(means[a], means[b], rtol=1e-6, atol=0), (a, b)
    for result in results.values():
        assert not np.asarray(result["flags"]).any() and np.isfinite(means["none"]).all()


def test_init_from_a_bundle_without_psf_images_grows_it_starting_where_it_was(tmp_path, with_psf):
    from gampen.training.data import TrainingData
    from gampen.training.fit import _scalar_inputs, _starting_network

    base_path = train(_config(tmp_path / "a", with_psf, epochs=1, conditions=["psf_fwhm"]))
    config = _psf_config(tmp_path / "b", with_psf, init_from=str(base_path))
    base = load_bundle(base_path)
    scalars = _scalar_inputs(config, base)
    assert scalars.psf_image and scalars.conditions == ("psf_fwhm",)
    data = TrainingData(config, labels=None, scalars=scalars)
    grown = _starting_network(config, data, base).eval()
    items = [data.dataset[i] for i in range(6)]
    images = torch.stack([item["image"] for item in items])
    inputs = torch.stack([item["scalars"] for item in items])
    assert inputs.shape == (6, 11) and (inputs[:, 1] == 1).all()  # each has its PSF
    with torch.no_grad():
        before, after = load_bundle(base_path).net(images, inputs[:, :1]), grown(images, inputs)
    torch.testing.assert_close(after.mean, before.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(after.scale_tril, before.scale_tril, rtol=1e-6, atol=1e-6)
    mean, std = data.scalar_statistics()
    standardise = grown.scalar_encoder[0]
    torch.testing.assert_close(standardise.mean[1:], torch.from_numpy(mean[1:]))
    torch.testing.assert_close(standardise.std[1:], torch.from_numpy(std[1:]))
    assert (grown.scalar_encoder[1].weight[:, 1:] == 0).all()
    tuned = load_bundle(train(config))
    assert tuned.preprocessing["scalars"]["psf_image"] and tuned.net.config.n_scalars == 11
    assert (tuned.net.scalar_encoder[1].weight[:, 1:] != 0).any()  # it learnt to use them
    # a fine-tune of a bundle that takes PSF images keeps them without --psf-image
    tuned_path = str(tmp_path / "b" / "model")
    plain = _config(tmp_path / "c", with_psf, conditions=["psf_fwhm"], init_from=tuned_path)
    assert _scalar_inputs(plain, tuned) == scalars
    other = _config(tmp_path / "c", with_psf, conditions=[], init_from=tuned_path)
    with pytest.raises(ConfigError, match=r"psf_image: true \(as the bundle"):
        _scalar_inputs(other, tuned)


def test_resume_of_a_run_from_before_the_psf_fields(tmp_path, labelled):
    train(_config(tmp_path, labelled, epochs=1))
    saved = tmp_path / "model.run" / "config.json"
    old = json.loads(saved.read_text())
    for key in ("psf_image", "psf_drop"):
        del old[key]
    saved.write_text(json.dumps(old))
    assert train(_config(tmp_path, labelled, epochs=2, resume=True)) is not None


def test_a_sky_sigma_column_sets_the_noise_range_and_predict_flags_other_depths(tmp_path, labelled):
    """A training catalog's ``sky_sigma`` (0.045-0.055 on the training rows, around the
    cutouts' 0.05) becomes the contract's noise range: over the training rows only (the
    validation rows' 0.2 stays out); predict then flags cutouts three times noisier or
    five times quieter (``CONDITION_RANGE``) and not the training cutouts themselves."""
    from gampen.flags import Flag

    table = read_catalog(labelled)
    table["split"] = ["train"] * 72 + ["val"] * (len(table) - 72)
    table["sky_sigma"] = np.random.default_rng(5).uniform(0.045, 0.055, len(table))
    table["sky_sigma"][72:] = 0.2
    table.write(labelled.parent / "noisy.csv", overwrite=True)
    path = train(_config(tmp_path, labelled.parent / "noisy.csv", epochs=1, split_column="split"))
    lo, hi = load_bundle(path).contract.ranges["sky_sigma"]
    used = np.asarray(table["sky_sigma"])[:72]
    assert lo <= used.min() < lo + 1e-5 and hi - 1e-5 < used.max() <= hi

    def options(folder) -> PredictOptions:
        return PredictOptions(n_passes=2, n_samples=20, progress=False, image_dir=str(folder))

    same = predict(table[:8], model=path, options=options(labelled.parent / "cutouts"))
    assert not np.any(np.asarray(same["flags"]) & Flag.CONDITION_RANGE)
    y, x = np.mgrid[:32, :32] - 15.5
    profile = np.exp(-1.678 * np.hypot(x, y) / 3.0)
    header = fits.Header({"PIXSCALE": 0.2, "MAGZP": 27.0})
    for name, sigma in (("shallow", 0.15), ("deep", 0.01)):
        for i in range(4):
            image = 300 * profile / profile.sum() + np.random.default_rng(i).normal(
                0, sigma, (32, 32)
            )
            fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(
                tmp_path / f"{name}{i}.fits"
            )
    other = table[:8].copy()
    other["file_name"] = [f"{n}{i}.fits" for n in ("shallow", "deep") for i in range(4)]
    flagged = predict(other, model=path, options=options(tmp_path))
    assert np.all(np.asarray(flagged["flags"]) & Flag.CONDITION_RANGE)
