"""Training building blocks: config, splits, augmentation, sampler, pickle-free checkpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from astropy.table import Table

from gampen.cli import build_parser
from gampen.data.catalog import load_catalog
from gampen.errors import CatalogError, ConfigError
from gampen.seeding import derive_seed
from gampen.training.augment import Augment, PsfDrop
from gampen.training.checkpoint_io import SafeCheckpointIO
from gampen.training.config import TrainConfig, load_config, preset_names
from gampen.training.data import SeededSampler
from gampen.training.module import WarmupCosine
from gampen.training.splits import column_splits, random_splits


def test_presets_and_precedence(tmp_path):
    assert {"default", "gampen-paper"} <= set(preset_names())
    paper = load_config(preset="gampen-paper", overrides={})
    assert paper.network["backbone"] == "vgg16" and paper.optimizer == "sgd"
    assert paper.momentum == 0.99 and paper.weight_decay == 1e-4
    user = tmp_path / "my.yaml"
    user.write_text("lr: 0.01\nepochs: 7\nnetwork:\n  dropout: 0.2\n")
    config = load_config(
        preset="gampen-paper", config_file=user, overrides={"epochs": 3, "lr": None}
    )
    assert (config.lr, config.epochs) == (0.01, 3)  # flag beats YAML beats preset; None = unset
    assert config.network == {"backbone": "vgg16", "stn": "zoom", "dropout": 0.2}


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"lr": -1.0}, r"'lr' is invalid; got -1\.0; expected \(0\.0, 10\.0\]"),
        ({"optimizer": "adam"}, r"'optimizer' is invalid; got 'adam'"),
        ({"val_fraction": 0.9}, r"'val_fraction' is invalid; got 0\.9"),
        ({"epochs": 0}, r"'epochs' is invalid; got 0; expected integer in \[1, 100000\]"),
        ({"freeze": ["stn"]}, r"'freeze' needs 'init_from'"),
        ({"balance_on": "mass"}, r"'balance_on' must be a target"),
        ({"logger": ["wandb"]}, r"'logger' is invalid; got 'wandb'"),
        ({"psf_drop": 1.0}, r"'psf_drop' is invalid; got 1\.0; expected \[0\.0, 1\.0\)"),
    ],
)
def test_config_errors_name_field_value_and_range(fields, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig(**fields)


def test_unknown_yaml_field_and_preset(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown training config field.*learning_rate"):
        load_config(config_file=bad, overrides={})
    with pytest.raises(ConfigError, match="unknown training preset"):
        load_config(preset="fast", overrides={})


def test_random_splits_deterministic_and_sized():
    a = random_splits(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    b = random_splits(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    assert np.array_equal(a, b)
    assert (np.sum(a == "val"), np.sum(a == "test")) == (100, 200)
    assert not np.array_equal(a, random_splits(1000, seed=4, val_fraction=0.1, test_fraction=0.2))


def test_stratified_splits_match_distribution():
    values = np.random.default_rng(0).exponential(size=2000)
    labels = random_splits(2000, seed=0, val_fraction=0.2, test_fraction=0.2, stratify=values)
    quantiles = [
        np.quantile(values[labels == s], [0.1, 0.5, 0.9]) for s in ("train", "val", "test")
    ]
    np.testing.assert_allclose(quantiles[1], quantiles[0], rtol=0.1)
    np.testing.assert_allclose(quantiles[2], quantiles[0], rtol=0.1)


def test_column_splits():
    table = Table({"split": ["Train", "validation", "test", "train"]})
    catalog = load_catalog(table, images=False, keep_columns=("split",))
    assert column_splits(catalog, "split").tolist() == ["train", "val", "test", "train"]
    table["split"][1] = "holdout"
    catalog = load_catalog(table, images=False, keep_columns=("split",))
    with pytest.raises(CatalogError, match=r"unknown value.*holdout"):
        column_splits(catalog, "split")
    with pytest.raises(CatalogError, match=r"split column 'fold' not found.*\['split'\]"):
        column_splits(catalog, "fold")


@pytest.fixture
def one_torch_thread():
    """One thread for the small tensor work: on the shared two-core machine, thread
    contention made these tests ~50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blob(sigma: float, size: int = 32) -> torch.Tensor:
    """A round Gaussian blob (float64) near the centre, well inside the frame."""
    y, x = torch.meshgrid(*(torch.arange(size, dtype=torch.float64),) * 2, indexing="ij")
    return torch.exp(-((x - 15.3) ** 2 + (y - 16.2) ** 2) / (2 * sigma**2))[None]


def _rotation_flux_bound(sigma: float, n_angles: int = 2001, reach: int = 6) -> float:
    """Largest relative flux change that bilinear resampling on a rotated pixel grid can
    make to a Gaussian blob of width ``sigma`` pixels, over all angles and shifts.

    The output sum is the lattice sum of the bilinear interpolant f over the rotated grid
    R Z^2 + b.  By Poisson summation it equals sum_k F(R k) exp(2 pi i R k.b), k in Z^2;
    the k = 0 term is the integral of f, the input's flux exactly (each tent integrates to
    one).  F = T S, with T(v) = sinc^2(v_x) sinc^2(v_y) the tent's transform and
    |S(v)| <= flux sum_j exp(-2 pi^2 sigma^2 |v - j|^2) the sampled blob's.  Summing |F|
    over k != 0 bounds the change for every shift; the maximum is taken over a fine grid of
    angles in [0, pi/2) (Z^2 is invariant under quarter turns).
    """
    k = torch.tensor(
        [(a, b) for a in range(-reach, reach + 1) for b in range(-reach, reach + 1) if a or b],
        dtype=torch.float64,
    )
    theta = torch.linspace(0, torch.pi / 2, n_angles, dtype=torch.float64)[:, None]
    v = torch.stack(
        [
            k[:, 0] * theta.cos() - k[:, 1] * theta.sin(),
            k[:, 0] * theta.sin() + k[:, 1] * theta.cos(),
        ],
        dim=-1,
    )
    tent = (torch.sinc(v[..., 0]) * torch.sinc(v[..., 1])) ** 2
    near = v.round()
    blob = sum(
        torch.exp(
            -2 * torch.pi**2 * sigma**2 * (v - near - torch.tensor([dx, dy])).square().sum(-1)
        )
        for dx in (-2, -1, 0, 1, 2)
        for dy in (-2, -1, 0, 1, 2)
    )
    return float((tent * blob).sum(dim=1).max())


def test_augment_reproducible_and_varied():
    image = torch.zeros(1, 16, 16)
    image[0, 4:8, 2:12] = 1.0
    augment = Augment(rotations="any", max_shift=2.0)
    assert torch.equal(augment(image, 7), augment(image, 7))
    assert not torch.equal(augment(image, 7), augment(image, 8))
    assert torch.equal(Augment(flips=False, rotations="none", max_shift=0.0)(image, 7), image)
    assert augment(image, 11).shape == image.shape


@pytest.mark.usefixtures("one_torch_thread")
def test_augment_flips_and_shifts_conserve_flux_exactly():
    """The exact cases: a flip permutes pixels; a pure shift splits every input pixel over
    four output pixels with bilinear weights summing to one (T(k) = 0 for integer k != 0)."""
    image = torch.rand(1, 16, 16, dtype=torch.float64)
    flip = Augment(rotations="none", max_shift=0.0)
    flipped = [flip(image, seed) for seed in range(400)]
    mirrored = sum(torch.equal(out, image.flip(-1)) for out in flipped)
    assert sum(torch.equal(out, image) for out in flipped) + mirrored == 400
    assert abs(mirrored - 200) < 5 * 10  # Binomial(400, 1/2): 5 sigma = 50
    blob = _blob(1.5)  # its tail beyond the frame, even shifted, is below 1e-17
    shift = Augment(flips=False, rotations="none", max_shift=2.0)
    for seed in range(50):
        out = shift(blob, seed)
        assert not torch.equal(out, blob)
        torch.testing.assert_close(out.sum(), blob.sum(), rtol=1e-13, atol=0)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_augment_rotation_changes_flux_less_than_the_resampling_bound(sigma):
    """A blob inside the frame keeps its flux to within the analytic aliasing bound of
    bilinear resampling (2.2 % at sigma = 1 px, 0.17 % at 2 px); an image that reaches the
    frame loses more (zeros flow in at the corners), and so must fail the same bound."""
    bound = _rotation_flux_bound(sigma)
    assert 0.001 < bound < 0.03
    blob = _blob(sigma)
    augment = Augment(rotations="any", max_shift=2.0)
    changes = torch.stack([augment(blob, s).sum() / blob.sum() - 1 for s in range(300)])
    assert changes.abs().max() <= bound
    assert changes.abs().max() > 0.2 * bound  # the bound is not vacuous
    full_frame = torch.ones(1, 32, 32, dtype=torch.float64)
    lost = torch.stack([augment(full_frame, s).sum() / full_frame.sum() - 1 for s in range(20)])
    assert lost.abs().max() > 5 * bound


def test_sampler_epochs_and_ranks():
    sampler = SeededSampler(10, seed=0, shuffle=True)
    first = list(sampler)
    assert sorted(p for p, _ in first) == list(range(10))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    shards = [list(SeededSampler(10, seed=0, shuffle=True, rank=r, world=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert {p for s in shards for p, _ in s} == set(range(10))


def test_warmup_cosine():
    schedule = WarmupCosine(warmup=4, total=20)
    factors = [schedule(s) for s in range(21)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == pytest.approx(1.0)
    assert factors[20] == pytest.approx(0.0, abs=1e-12)
    assert all(b <= a for a, b in itertools.pairwise(factors[4:]))


def test_checkpoint_io_round_trip_without_pickle(tmp_path):
    shared = torch.arange(4.0)
    checkpoint = {
        "epoch": 2,
        "state_dict": {"net.w": torch.randn(3, 2), "net.b": shared},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(5.0), "exp_avg": shared}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
            }
        ],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3}}}},
        "score": np.float32(1.5),
        "none": None,
    }
    io = SafeCheckpointIO()
    io.save_checkpoint(checkpoint, tmp_path / "c.ckpt")
    back = io.load_checkpoint(tmp_path / "c.ckpt")
    assert back["epoch"] == 2 and back["none"] is None and back["score"] == 1.5
    assert torch.equal(back["state_dict"]["net.w"], checkpoint["state_dict"]["net.w"])
    group = back["optimizer_states"][0]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["params"] == [0]
    assert torch.equal(back["optimizer_states"][0]["state"][0]["exp_avg"], shared)
    assert not (tmp_path / "c.ckpt").read_bytes().startswith(b"\x80")  # not a pickle stream
    with pytest.raises(Exception, match="cannot store without pickle"):
        io.save_checkpoint({"bad": object()}, tmp_path / "d.ckpt")


def test_mlflow_logger_needs_mlflow(tmp_path):
    import importlib.util

    from gampen.training.fit import _loggers

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("MLflow is installed here; the missing-package message cannot be shown")
    with pytest.raises(ConfigError, match=r"--logger mlflow needs MLflow.*gampen\[mlflow\]"):
        _loggers(TrainConfig(logger=["mlflow"]), tmp_path)


def test_dihedral_augmentation_only_moves_pixels():
    """Quarter turns, flips and whole-pixel rolls: the augmented image holds exactly the
    input's pixel values (a permutation), so flux and noise are untouched; all 8
    orientations and several shifts occur, reproducibly."""
    image = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 16, 16)
    augment = Augment(rotations="dihedral", max_shift=2.0)
    outputs = [augment(image, seed) for seed in range(400)]
    for out in outputs:
        assert torch.equal(out.flatten().sort().values, image.flatten().sort().values)
        assert torch.equal(out[1] - out[0], torch.full((16, 16), 256.0))  # bands move together
    assert torch.equal(augment(image, 3), outputs[3])
    # Undo the roll by locating pixel value 0 (a corner before the turn): 8 orientations
    # times 5 x 5 shifts are possible; most must occur in 400 draws.
    distinct = {tuple(out[0].flatten()[:20].tolist()) for out in outputs}
    assert len(distinct) > 100
    unshifted = Augment(rotations="dihedral", max_shift=0.0)
    corners = {
        tuple(unshifted(image, s)[0, [0, 0, -1, -1], [0, -1, 0, -1]].tolist()) for s in range(200)
    }
    assert len(corners) == 8  # the dihedral group of the square


def test_psf_drop_hides_a_seeded_share_per_seed_epoch_and_galaxy():
    drop = PsfDrop(0.25, slice(3, 13))
    seeds = [derive_seed(7, epoch, galaxy) for epoch in range(2) for galaxy in range(4000)]
    dropped = np.array([drop.dropped(seed) for seed in seeds])
    assert abs(dropped.mean() - 0.25) < 0.02  # 8,000 draws: one sd is 0.005
    assert np.array_equal(dropped, [drop.dropped(seed) for seed in seeds])
    assert 0.3 < np.mean(dropped[:4000] != dropped[4000:]) < 0.45  # new draws each epoch
    assert not any(PsfDrop(0.0, slice(3, 13)).dropped(seed) for seed in seeds[:100])
    scalars = torch.arange(1.0, 16.0)
    hidden = drop(scalars, seeds[int(np.flatnonzero(dropped)[0])])
    assert not hidden[3:13].any() and torch.equal(hidden[:3], scalars[:3])
    assert torch.equal(hidden[13:], scalars[13:]) and scalars.all()  # a copy
    kept = seeds[int(np.flatnonzero(~dropped)[0])]
    assert torch.equal(drop(scalars, kept), scalars)


def test_psf_flags_of_gampen_train():
    args = build_parser().parse_args(
        ["train", "cat.csv", "--out", "m", "--psf-image", "--psf-drop", "0.3"]
    )
    assert (args.psf_image, args.psf_drop) == (True, 0.3)
    args = build_parser().parse_args(["train", "cat.csv", "--out", "m"])
    assert (args.psf_image, args.psf_drop) == (None, None)  # the config's: off, 0.25
    config = load_config(overrides={"psf_image": True, "psf_drop": None})
    assert config.psf_image and config.psf_drop == 0.25 and config.scalars.psf_image
