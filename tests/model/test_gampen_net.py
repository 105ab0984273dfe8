"""GampenNet: output shapes, the exact prefix/suffix split, MC dropout, and training."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from gampen.errors import GampenValueError
from gampen.model.config import NetworkConfig
from gampen.model.loss import gaussian_nll
from gampen.model.network import (
    GampenNet,
    count_parameters,
    enable_mc_dropout,
    with_more_scalars,
)


@pytest.fixture(params=["compact", "vgg16"])
def config(
    request: pytest.FixtureRequest, tiny_config: NetworkConfig, tiny_vgg_config
) -> NetworkConfig:
    """Both backbones, small."""
    return tiny_config if request.param == "compact" else tiny_vgg_config


def test_output_shapes(config: NetworkConfig) -> None:
    net = GampenNet(config).eval()
    out = net(torch.randn(2, 1, 32, 32))
    assert out.mean.shape == (2, 3)
    assert out.scale_tril.shape == (2, 3, 3)
    assert out.zoom.shape == (2,)
    assert torch.equal(out.scale_tril, out.scale_tril.tril())
    assert (torch.linalg.eigvalsh(out.covariance) > 0).all()


def test_several_bands_and_affine_stn(tiny_config: NetworkConfig) -> None:
    net = GampenNet(dataclasses.replace(tiny_config, n_bands=3, n_params=2, stn="affine")).eval()
    out = net(torch.randn(2, 3, 32, 32))
    assert out.mean.shape == (2, 2)
    assert out.scale_tril.shape == (2, 2, 2)
    torch.testing.assert_close(out.zoom, torch.ones(2))


def test_input_of_wrong_shape_is_refused(tiny_config: NetworkConfig) -> None:
    net = GampenNet(tiny_config)
    with pytest.raises(
        GampenValueError, match=r"wrong shape.*\(2, 3, 32, 32\).*\(batch, 1, 32, 32\)"
    ):
        net(torch.randn(2, 3, 32, 32))
    with pytest.raises(GampenValueError, match="wrong shape"):
        net(torch.randn(1, 32, 32))


def test_prefix_holds_no_dropout_and_suffix_starts_with_it(config: NetworkConfig) -> None:
    net = GampenNet(config)
    prefix_modules = [*net.stn.modules(), *net.backbone.prefix.modules()]
    assert not any(isinstance(m, nn.Dropout) for m in prefix_modules)
    first_suffix_leaf = next(m for m in net.backbone.suffix.modules() if not list(m.children()))
    assert isinstance(first_suffix_leaf, nn.Dropout)


def test_split_puts_every_layer_in_one_part_and_all_randomness_in_the_suffix(
    config: NetworkConfig,
) -> None:
    """The prefix/suffix split, checked against full stochastic passes (not against
    ``forward``, which is itself ``from_features(features(x))``).

    Full passes over an image replicated P times and suffix passes over its features
    replicated P times draw the same dropout masks from the same torch seed only if the
    prefix draws none: a dropout layer moved into the prefix, or a layer lost from the
    split, makes them differ.
    """
    net = enable_mc_dropout(GampenNet(dataclasses.replace(config, dropout=0.3)))
    x = torch.randn(2, 1, 32, 32)
    torch.manual_seed(1)
    first = net.features(x)
    torch.manual_seed(2)
    second = net.features(x)
    assert torch.equal(first.maps, second.maps) and torch.equal(first.zoom, second.zoom)

    passes = 4
    torch.manual_seed(7)
    full = net(x.repeat_interleave(passes, dim=0))
    torch.manual_seed(7)
    split = net.from_features(first.repeat_interleave(passes))
    for a, b in zip(full, split, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert (full.mean.reshape(2, passes, -1).std(dim=1) > 0).all()  # the passes do differ

    parts = [net.stn, net.backbone.prefix, net.backbone.suffix, net.head]
    owned = [id(p) for part in parts for p in part.parameters()]
    assert len(owned) == len(set(owned)) == len(list(net.parameters()))


def test_repeated_features_give_one_row_per_pass(tiny_config: NetworkConfig) -> None:
    net = GampenNet(tiny_config).eval()
    x = torch.randn(2, 1, 32, 32)
    out = net.from_features(net.features(x).repeat_interleave(4))
    expected = net(x)
    assert out.mean.shape == (8, 3)
    torch.testing.assert_close(out.mean, expected.mean.repeat_interleave(4, dim=0))
    torch.testing.assert_close(out.zoom, expected.zoom.repeat_interleave(4))


def test_mc_dropout_varies_while_eval_is_deterministic(config: NetworkConfig) -> None:
    net = GampenNet(dataclasses.replace(config, dropout=0.2))
    x = torch.randn(2, 1, 32, 32)
    net.eval()
    assert torch.equal(net(x).mean, net(x).mean)
    enable_mc_dropout(net)
    passes = torch.stack([net(x).mean for _ in range(4)])
    assert (passes.std(dim=0) > 0).all()
    assert not any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(m.training for m in net.modules() if isinstance(m, nn.Dropout))


def test_mc_dropout_leaves_batch_norm_statistics_alone(tiny_config: NetworkConfig) -> None:
    net = enable_mc_dropout(GampenNet(tiny_config))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net(torch.randn(2, 1, 32, 32))
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_parameter_counts_of_default_networks() -> None:
    """The documented sizes: ~1.6 M (compact) and ~50 M (vgg16) parameters at 96x96."""
    assert count_parameters(GampenNet(NetworkConfig())) == pytest.approx(1.57e6, rel=0.01)
    assert count_parameters(GampenNet(NetworkConfig(backbone="vgg16"))) == pytest.approx(
        50.5e6, rel=0.01
    )


@pytest.mark.slow
def test_full_size_vgg16_takes_a_training_step() -> None:
    net = GampenNet(NetworkConfig(backbone="vgg16", input_size=32))
    optimiser = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x, y = torch.randn(2, 1, 32, 32), torch.randn(2, 3)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    out = net.train()(x)
    loss = gaussian_nll(out.mean, out.scale_tril, y)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    # The STN's last layer starts at zero weights (identity), so on the first step only it,
    # not the localisation layers before it, receives a gradient.
    unchanged = [name for name, p in net.named_parameters() if torch.equal(p, before[name])]
    assert unchanged
    assert all(name.startswith("stn.localisation.body.") for name in unchanged)


def _blobs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred Gaussian blobs; targets are their standardised log-width and log-amplitude."""
    log_width = torch.empty(n).uniform_(0.4, 1.8)
    log_amp = torch.empty(n).uniform_(-1.0, 1.0)
    coords = torch.arange(32.0) - 15.5
    r2 = coords[None, :] ** 2 + coords[:, None] ** 2
    images = log_amp.exp()[:, None, None] * torch.exp(
        -r2 / (2 * log_width.exp()[:, None, None] ** 2)
    )
    images = images + 0.05 * torch.randn_like(images)
    targets = torch.stack([log_width, log_amp], dim=1)
    return images[:, None], (targets - targets.mean(0)) / targets.std(0)


@pytest.mark.parametrize("stn", ["zoom", "affine"])
def test_compact_network_learns_a_toy_problem(tiny_config: NetworkConfig, stn: str) -> None:
    net = GampenNet(dataclasses.replace(tiny_config, n_params=2, stn=stn))
    x, y = _blobs(64)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)

    def evaluate() -> float:
        with torch.no_grad():
            out = net.eval()(x)
            return gaussian_nll(out.mean, out.scale_tril, y).item()

    start = evaluate()
    for _ in range(60):
        out = net.train()(x)
        loss = gaussian_nll(out.mean, out.scale_tril, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    end = evaluate()
    assert end < start - 1.0


@pytest.mark.parametrize("n_scalars", [0, 5])
def test_growing_the_scalar_inputs_keeps_every_output(
    tiny_config: NetworkConfig, n_scalars: int
) -> None:
    """``--init-from`` a bundle without the PSF features: the grown network predicts what
    the bundle does, whatever the new inputs hold, and it can learn from them."""
    torch.manual_seed(0)
    base = GampenNet(dataclasses.replace(tiny_config, n_scalars=n_scalars)).eval()
    if n_scalars:
        base.set_scalar_statistics(torch.randn(n_scalars), torch.rand(n_scalars) + 0.5)
    mean, std = torch.tensor([0.75, 0.2, 0.6, 0.1]), torch.tensor([0.43, 0.05, 0.1, 0.0])
    grown = with_more_scalars(base, mean, std)
    assert grown.config.n_scalars == n_scalars + 4 and not grown.training
    standardise = grown.scalar_encoder[0]
    assert torch.equal(standardise.mean[n_scalars:], mean)
    assert torch.equal(standardise.std[n_scalars:], torch.tensor([0.43, 0.05, 0.1, 1e-6]))
    x, s = torch.randn(3, 1, 32, 32), torch.randn(3, n_scalars)
    before = base(x, s if n_scalars else None)
    for extra in (torch.zeros(3, 4), 10 * torch.randn(3, 4)):
        after = grown(x, torch.cat((s, extra), 1))
        # the same sums with zero terms added: equal but for the order BLAS adds in
        torch.testing.assert_close(after.mean, before.mean, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(after.scale_tril, before.scale_tril, rtol=1e-6, atol=1e-7)
    grown.train()
    out = grown(x, torch.cat((s, torch.randn(3, 4)), 1))
    gaussian_nll(out.mean, out.scale_tril, torch.randn(3, tiny_config.n_params)).backward()
    first = grown.scalar_encoder[1] if n_scalars else grown.head.linear
    assert first.weight.grad.abs().sum() > 0  # the new inputs' weights learn
