"""MC-dropout sampling: the exact prefix speed-up, per-galaxy reproducibility, summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gampen.infer.sampling import galaxy_keys, naive_samples, posterior_samples
from gampen.infer.summary import LEVELS, STATISTICS, summarise
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet

from ..synthetic import TINY_NETWORK


@pytest.fixture(params=[{}, {"dropout_from": 3}], ids=["classifier-dropout", "stage-dropout"])
def net(request) -> GampenNet:
    return GampenNet(NetworkConfig(input_size=32, **TINY_NETWORK, **request.param))


def test_prefix_speed_up_gives_the_naive_samples(net):
    images = torch.randn(3, 1, 32, 32)
    keys = galaxy_keys(5, np.arange(3))
    fast, zoom = posterior_samples(net, images, keys, n_passes=8, n_samples=40)
    slow = naive_samples(net, images, keys, n_passes=8, n_samples=40)
    assert fast.shape == (3, 40, 3) and zoom.shape == (3,)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_samples_do_not_depend_on_batching(net):
    images = torch.randn(6, 1, 32, 32)
    keys = galaxy_keys(1, np.arange(6))
    whole, _ = posterior_samples(net, images, keys, n_passes=5, n_samples=20)
    parts = [
        posterior_samples(net, images[i : i + 2], keys[i : i + 2], n_passes=5, n_samples=20)[0]
        for i in (0, 2, 4)
    ]
    assert torch.equal(whole, torch.cat(parts))
    other, _ = posterior_samples(
        net, images, galaxy_keys(2, np.arange(6)), n_passes=5, n_samples=20
    )
    assert not torch.equal(whole, other)


def test_passes_differ_and_draws_spread_over_them(net):
    images = torch.randn(1, 1, 32, 32)
    samples, _ = posterior_samples(net, images, galaxy_keys(0, [0]), n_passes=4, n_samples=400)
    assert samples.std(dim=1).min() > 0
    assert torch.unique(samples[0, :, 0]).numel() == 400


def test_galaxy_keys_distinct_and_stable():
    keys = galaxy_keys(0, np.arange(1000))
    assert len(set(keys.tolist())) == 1000
    np.testing.assert_array_equal(keys[10:20], galaxy_keys(0, np.arange(10, 20)))


def test_summaries_of_known_distributions():
    rng = np.random.default_rng(0)
    normal = rng.normal(2.0, 0.5, (200, 4000, 1))
    stats = summarise(normal, ["x"])
    assert set(stats) == {f"x_{s}" for s in STATISTICS}
    np.testing.assert_allclose(stats["x_mean"].mean(), 2.0, atol=0.01)
    np.testing.assert_allclose(stats["x_mode"].mean(), 2.0, atol=0.02)
    np.testing.assert_allclose(stats["x_std"].mean(), 0.5, rtol=0.01)
    for name, sigmas in zip(LEVELS, (1, 2, 3), strict=True):
        np.testing.assert_allclose(stats[f"x_{name}_lo"].mean(), 2 - 0.5 * sigmas, atol=0.03)
        np.testing.assert_allclose(stats[f"x_{name}_hi"].mean(), 2 + 0.5 * sigmas, atol=0.03)
    skewed = rng.gamma(3.0, 1.0, (200, 4000, 1))  # mode 2, mean 3
    gamma = summarise(skewed, ["g"])
    assert abs(gamma["g_mode"].mean() - 2.0) < 0.15 < abs(gamma["g_mean"].mean() - 2.0)
    np.testing.assert_allclose(gamma["g_median"], np.median(skewed[..., 0], axis=1), rtol=1e-5)


def test_summaries_keep_nan_rows_nan():
    samples = np.random.default_rng(0).normal(size=(3, 100, 2))
    samples[1] = np.nan
    stats = summarise(samples, ["a", "b"])
    for column in stats.values():
        assert np.isnan(column[1]) and np.all(np.isfinite(column[[0, 2]]))


@pytest.mark.gpu
def test_gpu_samples_match_cpu(net):
    images = torch.randn(2, 1, 32, 32)
    keys = galaxy_keys(3, np.arange(2))
    cpu, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=20)
    gpu, _ = posterior_samples(net.cuda(), images.cuda(), keys, n_passes=4, n_samples=20)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)
