"""MC-dropout sampling: known answers for the mixture draws and the dropout masks, the exact
prefix speed-up, per-galaxy reproducibility and the calibration ``spread``.

The oracles are independent of the sampler: the analytic moments and CDF of the equal-weight
Gaussian mixture (numpy / scipy.stats), exact counts of a dropout mask fed every 16-bit
value once, and binomial / central-limit bounds stated where they are used.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy import stats

from gampen.calibration.maps import BrightnessSplit, Recalibration, SpreadMap
from gampen.errors import GampenValueError
from gampen.infer.sampling import (
    _draw,
    _dropout,
    galaxy_keys,
    naive_samples,
    posterior_samples,
)
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet

from ..synthetic import TINY_NETWORK

#: Four passes with well separated means and strongly correlated, pass-dependent factors.
PASS_MEANS = np.array([[0.0, 0.0, 0.0], [4.0, -1.0, 2.0], [-3.0, 3.0, 1.0], [1.5, 2.0, -3.0]])
_BASE_L = np.array([[1.0, 0.0, 0.0], [1.5, 0.5, 0.0], [-1.0, 0.8, 0.3]])
PASS_L = np.stack([_BASE_L * (1.0 + 0.25 * p) for p in range(4)])
PER_PASS = 25_000  # draws per pass; n_samples = 4 * PER_PASS
SIGMAS = 5.0  # every statistical tolerance below is a 5-sigma bound (two-sided p ~ 6e-7)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One thread: the machine's two cores are shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mixture_moments(means: np.ndarray, scale_tril: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, covariance and per-pass covariances of the equal-weight Gaussian mixture."""
    covs = scale_tril @ scale_tril.transpose(0, 2, 1)
    mean = means.mean(axis=0)
    return mean, covs.mean(axis=0) + np.cov(means.T, ddof=0), covs


def _mixture_cdf(x: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """CDF of the equal-weight mixture of normals N(means[p], sds[p]^2) at x."""
    return stats.norm.cdf((np.asarray(x)[..., None] - means) / sds).mean(axis=-1)


def _covariance_tolerance(means: np.ndarray, covs: np.ndarray, n: int) -> np.ndarray:
    """5-sigma bound on |sample cov - cov| per entry, from the mixture's exact 4th moments.

    For y = x - m with x from pass p, y ~ N(d, S) (d = mu_p - m), and
    E[y_i^2 y_j^2] = (S_ii + d_i^2)(S_jj + d_j^2) + 2 S_ij^2 + 4 d_i d_j S_ij.
    Var(y_i y_j) over the mixture, divided by n, is the variance of the sample covariance
    for iid draws; drawing exactly n/P per pass (stratified) can only lower it.
    """
    d = means - means.mean(axis=0)
    var = np.diagonal(covs, axis1=1, axis2=2) + d**2
    fourth = (
        var[:, :, None] * var[:, None, :] + 2 * covs**2 + 4 * d[:, :, None] * d[:, None, :] * covs
    ).mean(axis=0)
    cov = covs.mean(axis=0) + np.cov(means.T, ddof=0)
    return SIGMAS * np.sqrt((fourth - cov**2) / n)


def _draw_case(n_samples: int = 4 * PER_PASS, seed: int = 0, **kwargs) -> np.ndarray:
    mean, scale_tril = torch.from_numpy(PASS_MEANS), torch.from_numpy(PASS_L)
    draws = _draw(mean, scale_tril, n_samples, np.random.default_rng(seed), **kwargs)
    return draws.numpy()


def test_draws_have_the_mixture_mean_and_covariance():
    x = _draw_case()
    n = len(x)
    mean, cov, covs = _mixture_moments(PASS_MEANS, PASS_L)
    # Draws are stratified (n/P per pass): the sample mean's variance is avg_p(S_p)/n.
    mean_tol = SIGMAS * np.sqrt(np.diagonal(covs.mean(axis=0)) / n)
    assert np.all(np.abs(x.mean(axis=0) - mean) < mean_tol)
    assert np.all(np.abs(np.cov(x.T) - cov) < _covariance_tolerance(PASS_MEANS, covs, n))
    # Cases that must fail: pass 0 alone, or the factors without their off-diagonals.
    assert np.all(np.abs(PASS_MEANS[0] - mean)[:2] > 20 * mean_tol[:2])
    diagonal_only = np.stack([np.diag(np.diag(m)) for m in PASS_L])
    _, cov_diagonal_only, _ = _mixture_moments(PASS_MEANS, diagonal_only)
    assert (
        np.abs(cov_diagonal_only - cov).max()
        > 20 * _covariance_tolerance(PASS_MEANS, covs, n).max()
    )


def test_draws_have_the_mixture_marginal_cdfs():
    """Kolmogorov-Smirnov distance to the analytic mixture CDF, with a DKW bound.

    With n = N/P draws from each pass, sup|F_N - F| <= avg_p sup|F_{p,n} - F_p|, and by the
    Dvoretzky-Kiefer-Wolfowitz inequality and a union bound over the P passes this exceeds
    eps = sqrt(ln(2 P / alpha) / (2 n)) with probability at most alpha = 1e-6.
    """
    x = _draw_case()
    n_passes = len(PASS_MEANS)
    eps = np.sqrt(np.log(2 * n_passes / 1e-6) / (2 * PER_PASS))
    _, cov, covs = _mixture_moments(PASS_MEANS, PASS_L)
    for i in range(3):
        sds = np.sqrt(covs[:, i, i])
        mixture = stats.kstest(
            x[:, i], lambda v, i=i, sds=sds: _mixture_cdf(v, PASS_MEANS[:, i], sds)
        )
        assert mixture.statistic < eps, i
        # Must fail: the single Gaussian with the same two moments, and pass 0 alone.
        matched = stats.kstest(x[:, i], stats.norm(x[:, i].mean(), np.sqrt(cov[i, i])).cdf)
        assert matched.statistic > 1.5 * eps, i
        first = stats.kstest(x[:, i], stats.norm(PASS_MEANS[0, i], sds[0]).cdf)
        assert first.statistic > 4 * eps, i


def test_sample_j_comes_from_pass_j_mod_p():
    """With a negligible scale, every draw sits on its pass's mean (10 draws, 4 passes)."""
    tiny = torch.from_numpy(PASS_L * 1e-9)
    draws = _draw(torch.from_numpy(PASS_MEANS), tiny, 10, np.random.default_rng(1))
    expected = PASS_MEANS[np.arange(10) % 4]
    np.testing.assert_allclose(draws.numpy(), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draws_keep_the_dtype_and_are_reproducible(dtype):
    mean, scale_tril = torch.from_numpy(PASS_MEANS).to(dtype), torch.from_numpy(PASS_L).to(dtype)
    a = _draw(mean, scale_tril, 12, np.random.default_rng(3))
    assert a.dtype == dtype and a.shape == (12, 3)
    assert torch.equal(a, _draw(mean, scale_tril, 12, np.random.default_rng(3)))
    assert not torch.equal(a, _draw(mean, scale_tril, 12, np.random.default_rng(4)))


def test_draws_use_float32_standard_normals_from_the_galaxy_stream():
    """The documented stream: standard normals drawn as float32 from the galaxy's generator
    (changing it would change every published posterior for the same seed)."""
    zero, eye = torch.zeros(2, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    draws = _draw(zero, eye.expand(2, 3, 3), 5, np.random.default_rng(9))
    expected = np.random.default_rng(9).standard_normal((5, 3), dtype=np.float32)
    np.testing.assert_array_equal(draws.numpy(), expected.astype(np.float64))


def test_spread_rescales_each_parameter_about_the_median():
    """Same seed, core factors a and unit tail factors (a plain rescaling): z -> m + a (z - m)
    with m the median, so the median stays and the covariance becomes diag(a) C diag(a),
    exactly up to float rounding."""
    a = np.array([0.5, 2.0, 1.3])
    base = _draw_case(4000, seed=5)
    spread = _draw_case(4000, seed=5, spread=SpreadMap(a))
    median = np.median(base, axis=0)
    np.testing.assert_allclose(np.median(spread, axis=0), median, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spread - median, a * (base - median), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        np.cov(spread.T), np.diag(a) @ np.cov(base.T) @ np.diag(a), rtol=1e-12, atol=0
    )
    # The factors take the samples' dtype (float32 samples stay float32).
    single = _draw(
        torch.from_numpy(PASS_MEANS).float(),
        torch.from_numpy(PASS_L).float(),
        40,
        np.random.default_rng(5),
        spread=SpreadMap(a),
    )
    assert single.dtype == torch.float32
    # spread=None is the unspread path, bit for bit; a factor of 1 changes nothing either.
    assert np.array_equal(_draw_case(4000, seed=5, spread=None), base)
    np.testing.assert_allclose(
        _draw_case(4000, seed=5, spread=SpreadMap(np.ones(3))), base, atol=1e-12
    )


class _EveryValueOnce:
    """A stand-in generator whose bytes are every 16-bit value exactly once."""

    def bytes(self, n: int) -> bytes:
        assert n == 2 * 65536
        return np.arange(65536, dtype=np.uint16).tobytes()


@pytest.mark.parametrize("p", [0.0004, 0.1, 0.3, 0.5, 0.9])
def test_dropout_mask_drops_exactly_p_of_all_16_bit_values(p):
    """Fed each 16-bit value once, the mask keeps exactly 65536 - round(65536 p) units, so
    the drop probability of a uniform stream is p to within 2^-17, and kept units are
    scaled by 1 / (1 - p)."""
    out = _dropout(torch.ones(256, 256), p=p, rng=_EveryValueOnce())
    kept = out != 0
    assert int(kept.sum()) == 65536 - round(65536 * p)
    assert abs(kept.float().mean().item() - (1 - p)) <= 2**-17
    torch.testing.assert_close(
        out[kept], torch.full((int(kept.sum()),), 1 / (1 - p)), rtol=1e-6, atol=0
    )
    # The values dropped are the smallest ones (a threshold on the random integers).
    assert not kept.flatten()[: round(65536 * p)].any() and kept.flatten()[round(65536 * p) :].all()


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_statistics_with_a_real_generator(p):
    """Fraction kept within a 5-sigma binomial bound of 1 - p; kept values x / (1 - p)."""
    n = 200_000
    x = torch.randn(n) + 3.0  # no exact zeros
    out = _dropout(x, p=p, rng=np.random.default_rng(0))
    kept = out != 0
    bound = SIGMAS * np.sqrt(p * (1 - p) / n) + 2**-17  # + the 16-bit quantisation of p
    assert abs(kept.float().mean().item() - (1 - p)) < bound
    torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-6, atol=0)
    assert out.dtype == x.dtype and out.shape == x.shape
    # Reproducible from the generator's state, different for another state.
    assert torch.equal(out, _dropout(x, p=p, rng=np.random.default_rng(0)))
    assert not torch.equal(out, _dropout(x, p=p, rng=np.random.default_rng(1)))


def test_dropout_rate_zero_is_the_identity_and_draws_nothing():
    x = torch.randn(5, 7)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert _dropout(x, p=0.0, rng=rng) is x
    assert rng.bit_generator.state == state


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


def _loud_net(dropout_from: int | None) -> GampenNet:
    """A tiny net whose pass-to-pass jitter of the mean (several units) dwarfs ``L`` (~1),
    with strongly correlated ``L``: drawing from the wrong pass, or ignoring the
    off-diagonal of ``L``, is then obvious."""
    extra = {} if dropout_from is None else {"dropout_from": dropout_from}
    net = GampenNet(NetworkConfig(input_size=32, dropout=0.5, **TINY_NETWORK, **extra))
    with torch.no_grad():
        net.head.linear.weight[:3] *= 300.0
        net.head.linear.bias[6:] = 1.5
    return net


@pytest.mark.parametrize("dropout_from", [None, 3])
def test_draws_follow_the_gaussian_of_their_own_pass(dropout_from):
    """Sample j whitened by pass j mod P is standard normal; the passes differ.

    The pass Gaussians are read from the head's output with a forward hook.  Per pass,
    m = 500 whitened draws: each mean within 5/sqrt(m) of 0; the sample covariance within
    5 sqrt(2/m) (diagonal) and 5 sqrt(1/m) (off-diagonal) of the identity.
    """
    net = _loud_net(dropout_from)
    outputs = []
    hook = net.head.register_forward_hook(lambda module, args, out: outputs.append(out))
    n_passes, m = 4, 500
    samples, _ = posterior_samples(
        net, torch.randn(1, 1, 32, 32), galaxy_keys(0, [0]), n_passes=n_passes, n_samples=4 * m
    )
    hook.remove()
    mean, scale_tril = (t.double() for t in outputs[0])
    x = samples[0].double()
    assert mean.std(dim=0).min() > 1.0  # the passes differ by much more than L
    for p in range(n_passes):
        z = torch.linalg.solve_triangular(scale_tril[p], (x[p::n_passes] - mean[p]).T, upper=False)
        assert z.mean(dim=1).abs().max() < SIGMAS / np.sqrt(m)
        deviation = (torch.cov(z) - torch.eye(3, dtype=torch.float64)).abs()
        limit = SIGMAS * torch.sqrt((1 + torch.eye(3, dtype=torch.float64)) / m)
        assert (deviation < limit).all(), p
        # Must fail: the same draws against pass 0 (for p > 0) or against diag(L) only.
        wrong = p if p else 1
        z_wrong = torch.linalg.solve_triangular(
            scale_tril[0], (x[wrong::n_passes] - mean[0]).T, upper=False
        )
        assert z_wrong.mean(dim=1).abs().max() > 4 * SIGMAS / np.sqrt(m)
        diagonal = torch.diagonal(scale_tril[p])
        z_diag = (x[p::n_passes] - mean[p]) / diagonal
        assert (torch.cov(z_diag.T) - torch.eye(3, dtype=torch.float64)).abs().max() > 1.0


def test_spread_in_posterior_samples(net):
    images = torch.randn(2, 1, 32, 32)
    keys = galaxy_keys(4, np.arange(2))
    a = np.array([0.6, 1.0, 1.8], dtype=np.float32)
    base, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301)
    spread, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301, spread=SpreadMap(a))
    centre = base.median(dim=1, keepdim=True).values  # odd count: the median is a sample
    torch.testing.assert_close(spread.median(dim=1, keepdim=True).values, centre)
    torch.testing.assert_close(spread - centre, torch.from_numpy(a) * (base - centre))
    for b in range(2):
        expected = np.diag(a) @ np.cov(base[b].numpy().T) @ np.diag(a)
        np.testing.assert_allclose(np.cov(spread[b].numpy().T), expected, rtol=1e-4, atol=1e-7)
    unspread, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301, spread=None)
    assert torch.equal(unspread, base)


def test_galaxy_keys_distinct_stable_and_documented():
    keys = galaxy_keys(0, np.arange(1000))
    assert keys.dtype == np.int64 and len(set(keys.tolist())) == 1000
    np.testing.assert_array_equal(keys[10:20], galaxy_keys(0, np.arange(10, 20)))
    # Known answer: the top 63 bits of SeedSequence([seed, row]).
    for seed, row in [(0, 0), (7, 3), (3, 7)]:
        state = np.random.SeedSequence([seed, row]).generate_state(2, np.uint64)
        assert galaxy_keys(seed, [row])[0] == int(state[0]) >> 1


def test_each_galaxy_gets_the_map_of_its_crowding(net):
    images = torch.randn(3, 1, 32, 32)
    keys = galaxy_keys(4, np.arange(3))
    base, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301)
    centre = base.median(dim=1, keepdim=True).values
    maps = Recalibration(SpreadMap(np.full(3, 0.5)), SpreadMap(np.full(3, 2.0)), above=0.1)
    run = functools.partial(posterior_samples, net, images, keys, n_passes=4, n_samples=301)
    got, _ = run(spread=maps, crowding=np.array([0.0, 0.3, 0.1]))
    for g, a in enumerate([0.5, 2.0, 0.5]):  # 0.1 is not above the threshold
        torch.testing.assert_close(got[g] - centre[g], a * (base[g] - centre[g]))
    with pytest.raises(ValueError, match="crowding index"):
        run(spread=maps)


def test_each_galaxy_gets_the_map_of_its_brightness(net):
    """A brightness split picks by the median of the galaxy's own raw draws of the
    parameter: here only the galaxy of lowest median flux (parameter 2) is faint."""
    images = torch.randn(3, 1, 32, 32)
    keys = galaxy_keys(4, np.arange(3))
    base, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301)
    centre = base.median(dim=1, keepdim=True).values  # odd count: the median is a sample
    flux = centre[:, 0, 2].numpy().astype(np.float64)
    faintest, next_one = np.argsort(flux)[:2]
    below = (flux[faintest] + flux[next_one]) / 2
    maps = BrightnessSplit(SpreadMap(np.full(3, 0.5)), SpreadMap(np.full(3, 2.0)), below, param=2)
    got, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=301, spread=maps)
    for g in range(3):
        a = 2.0 if g == faintest else 0.5
        torch.testing.assert_close(got[g] - centre[g], a * (base[g] - centre[g]))


@pytest.mark.gpu
def test_gpu_samples_match_cpu(net):
    images = torch.randn(2, 1, 32, 32)
    keys = galaxy_keys(3, np.arange(2))
    cpu, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=20)
    gpu, _ = posterior_samples(net.cuda(), images.cuda(), keys, n_passes=4, n_samples=20)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_gpu_spread_samples_stay_on_the_gpu_and_match_cpu(net):
    images = torch.randn(2, 1, 32, 32)
    keys = galaxy_keys(3, np.arange(2))
    spread = SpreadMap(np.array([0.5, 1.0, 2.0]))
    cpu, _ = posterior_samples(net, images, keys, n_passes=4, n_samples=20, spread=spread)
    gpu, _ = posterior_samples(
        net.cuda(), images.cuda(), keys, n_passes=4, n_samples=20, spread=spread
    )
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_prefix_speed_up_gives_the_naive_samples_with_scalar_inputs():
    net = GampenNet(NetworkConfig(input_size=32, **TINY_NETWORK, n_scalars=4))
    net.set_scalar_statistics(torch.ones(4), torch.full((4,), 2.0))
    images, scalars = torch.randn(3, 1, 32, 32), torch.randn(3, 4)
    keys = galaxy_keys(5, np.arange(3))
    fast, _ = posterior_samples(net, images, keys, n_passes=8, n_samples=40, scalars=scalars)
    slow = naive_samples(net, images, keys, n_passes=8, n_samples=40, scalars=scalars)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    other, _ = posterior_samples(net, images, keys, n_passes=8, n_samples=40, scalars=scalars + 1)
    assert not torch.allclose(fast, other)  # the scalars reach the head
    with pytest.raises(GampenValueError, match="scalar inputs"):
        posterior_samples(net, images, keys, n_passes=8, n_samples=40)
    with pytest.raises(GampenValueError, match="scalar inputs"):
        net(images, scalars[:, :3])
