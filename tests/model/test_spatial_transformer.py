"""Spatial transformer: identity at initialisation, zoom always inside its bounds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet
from gampen.model.stn import SpatialTransformer, bounded_zoom, zoom_at_limit


def _stn(kind: str, **bounds: float) -> SpatialTransformer:
    """A small spatial transformer for one band."""
    limits = {"zoom_min": 0.25, "zoom_max": 1.25} | bounds
    return SpatialTransformer(1, kind=kind, widths=(4, 8), **limits)


@pytest.mark.parametrize("kind", ["zoom", "affine"])
def test_identity_at_initialisation(kind: str) -> None:
    stn = _stn(kind)
    x = torch.randn(3, 1, 32, 32)
    warped, zoom = stn(x)
    torch.testing.assert_close(warped, x, rtol=0.0, atol=1e-5)
    torch.testing.assert_close(zoom, torch.ones(3))


def test_network_with_stn_none_passes_images_untouched(tiny_config: NetworkConfig) -> None:
    net = GampenNet(dataclasses.replace(tiny_config, stn="none"))
    x = torch.randn(2, 1, 32, 32)
    warped, zoom = net.transform(x)
    assert warped is x
    assert torch.equal(zoom, torch.ones(2))
    assert not net.zoom_at_limit(zoom).any()


def test_zoom_samples_the_central_window() -> None:
    """Zoom s samples the input every s pixels: a ramp's slope is multiplied by s."""
    stn = _stn("zoom")
    with torch.no_grad():
        stn.localisation.out.bias[0] = 0.0  # sigmoid(0) = 0.5 -> zoom 0.75 with these bounds
    ramp = torch.linspace(-1, 1, 33)[None, None, None, :].expand(1, 1, 33, 33).contiguous()
    warped, zoom = stn(ramp)
    assert zoom.item() == pytest.approx(0.75)
    centre_slope = (warped[0, 0, 16, 20] - warped[0, 0, 16, 12]) / 8
    assert centre_slope.item() == pytest.approx(0.75 * 2 / 32, rel=1e-4)


@pytest.mark.parametrize("kind", ["zoom", "affine"])
@pytest.mark.parametrize("bias", [-1e4, -30.0, 30.0, 1e4])
def test_zoom_within_bounds_for_extreme_localisation_outputs(kind: str, bias: float) -> None:
    stn = _stn(kind, zoom_min=0.3, zoom_max=1.5)
    with torch.no_grad():
        stn.localisation.out.weight.normal_(0.0, 100.0)
        stn.localisation.out.bias.fill_(bias)
    x = 1e3 * torch.randn(4, 1, 32, 32)
    warped, zoom = stn(x)
    assert torch.isfinite(warped).all()
    assert ((zoom >= 0.3) & (zoom <= 1.5)).all()
    assert zoom_at_limit(zoom, zoom_min=0.3, zoom_max=1.5).all()


def test_affine_zoom_is_sqrt_det_of_linear_part() -> None:
    stn = _stn("affine")
    with torch.no_grad():
        stn.localisation.out.bias.copy_(torch.tensor([0.3, 0.7, 2.0, -1.5, 0.4, -0.2]))
    theta, zoom = stn.transformation(torch.randn(2, 1, 32, 32))
    det = torch.linalg.det(theta[:, :, :2])
    torch.testing.assert_close(det.abs().sqrt(), zoom)
    expected = bounded_zoom(torch.tensor(0.3), zoom_min=0.25, zoom_max=1.25)
    torch.testing.assert_close(zoom, expected.expand(2))


def test_zoom_at_limit_tolerance() -> None:
    zoom = torch.tensor([0.25, 0.26, 0.5, 1.0, 1.24, 1.25])
    flags = zoom_at_limit(zoom, zoom_min=0.25, zoom_max=1.25, tolerance=0.01)
    assert flags.tolist() == [True, True, False, False, True, True]


def test_stn_learns_from_the_loss() -> None:
    stn = _stn("zoom")
    warped, _ = stn(torch.randn(2, 1, 32, 32))
    warped.square().mean().backward()
    assert stn.localisation.out.bias.grad.abs().sum() > 0
