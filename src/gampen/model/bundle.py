"""The model bundle: everything prediction needs, as safetensors weights plus JSON metadata.

A bundle is a directory (or a ``.zip`` of one) holding

* ``model.safetensors`` — the network's ``state_dict`` (no pickle anywhere);
* ``gampen.json`` — the fields below, validated on saving and on loading.

===================  =========================================================================
field                content
===================  =========================================================================
``format_version``   int, :data:`FORMAT_VERSION`; newer versions are refused (upgrade gampen)
``gampen_version``   version of gampen that wrote the bundle
``network``          :meth:`NetworkConfig.to_dict` (architecture, widths, dropout, STN ...)
``param_names``      predicted parameters in output order, e.g. ``["bt", "r_e", "flux"]``
``bands``            band names in input-channel order
``input_size``       input side in pixels (equals ``network.input_size``)
``pixel_scale``      arcsec per pixel (> 0)
``zero_point``       photometric zero point (``mag = zero_point - 2.5 log10(flux)``)
``preprocessing``    the data layer's dict, stored as given; must hold ``stretch`` and
                     ``labels`` (pixel stretch; label transforms and scaler statistics)
``calibration``      dict; ``scale`` (and optionally ``tail``, ``knee``, ``power``,
                     ``width_ref``) give every parameter the factors of the map
                     ``gampen predict`` applies to the posterior
                     (:mod:`gampen.calibration.maps`), ``shrink`` its correlation shrink,
                     ``crowded`` (``above`` and the same keys) a second map for
                     crowded galaxies, and ``faint`` in either (``param``, ``below``
                     and the same keys) a map for the class's galaxies whose median
                     of ``param`` is below ``below`` (faint, or small for r_e); by
                     default the identity;
                     ``gampen calibrate`` adds ``method``, ``ood``
                     (:mod:`gampen.model.ood`), ``fit``, ``check``
``provenance``       dict; ``created`` (UTC, ISO 8601) is added when missing
``metrics``          dict of validation metrics
``contract``         (format 2) what the model expects of its inputs beyond pixel scale, zero
                     point and size: ``magnitudes`` ("AB"), ``condition_units``
                     (``{"psf_fwhm": "arcsec"}``), the training ``ranges`` of conditions,
                     ``mag``, ``r_e`` ... and, written by ``gampen calibrate``, the
                     ``calibrated_ranges`` of ``mag`` and ``r_e``
                     (:class:`gampen.data.contract.InputContract`); format-1 bundles load
                     with no ranges
``weights_sha256``   SHA-256 of ``model.safetensors``; a mismatched pair is refused
===================  =========================================================================

:attr:`Bundle.sha256` hashes the whole bundle (the JSON, which holds the weights' hash), so
a recalibrated or edited bundle has another; prediction files record it as ``MODELSHA``.

Unknown fields are refused: a new field means a new ``format_version``.  Loading also
refuses weights whose names or shapes differ from the network ``network`` describes.

Usage::

    save_bundle("runs/m1", net, param_names=["bt", "r_e", "flux"], bands=["i"],
                pixel_scale=0.168, zero_point=27.0, preprocessing=data_layer_dict)
    bundle = load_bundle("runs/m1")        # or "runs/m1.zip"; bundle.net is in eval mode
"""

from __future__ import annotations

import datetime
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gampen import __version__
from gampen.atomic import atomic_path
from gampen.calibration.maps import Recalibration
from gampen.checks import is_finite_number
from gampen.data.contract import InputContract
from gampen.errors import BundleError, ConfigError, GampenError
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet
from gampen.model.ood import OodModel

FORMAT_VERSION = 2
WEIGHTS_NAME = "model.safetensors"
METADATA_NAME = "gampen.json"
REQUIRED_FIELDS: tuple[str, ...] = (
    "format_version",
    "gampen_version",
    "network",
    "param_names",
    "bands",
    "input_size",
    "pixel_scale",
    "zero_point",
    "preprocessing",
    "calibration",
    "provenance",
    "metrics",
    "weights_sha256",
    "contract",
)
#: Fields a bundle of an older format version may lack: name -> first version with it.
ADDED_IN: dict[str, int] = {"contract": 2}

CALIBRATION_KEYS: tuple[str, ...] = (
    "method",
    "scale",
    "tail",
    "knee",
    "power",
    "width_ref",
    "shrink",
    "crowded",
    "faint",
    "ood",
    "fit",
    "check",
)


@dataclass
class Bundle:
    """A loaded bundle: the network (eval mode), its config and the metadata fields.

    ``metadata`` is the whole ``gampen.json`` document as read.
    """

    net: GampenNet
    config: NetworkConfig
    param_names: list[str]
    bands: list[str]
    input_size: int
    pixel_scale: float
    zero_point: float
    preprocessing: dict[str, Any]
    calibration: dict[str, Any]
    provenance: dict[str, Any]
    metrics: dict[str, Any]
    gampen_version: str
    format_version: int = FORMAT_VERSION
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def contract(self) -> InputContract:
        """What the model expects of each cutout and catalog value."""
        return InputContract.from_metadata(self.metadata)

    @property
    def sha256(self) -> str:
        """SHA-256 of the whole bundle: its JSON (which holds the weights' checksum),
        serialised canonically, so the same bundle hashes the same as a folder or a zip."""
        return bundle_sha256(self.metadata)

    @property
    def calibrated(self) -> bool:
        """True when ``gampen calibrate`` fitted this bundle's calibration."""
        return "fit" in self.calibration


def save_bundle(
    path: str | Path,
    net: GampenNet,
    *,
    param_names: list[str],
    bands: list[str],
    pixel_scale: float,
    zero_point: float,
    preprocessing: dict[str, Any],
    calibration: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    contract: dict[str, Any] | None = None,
) -> Path:
    """Write ``net`` and its metadata to the bundle directory (or ``.zip``) ``path``.

    ``contract`` is the ``contract`` field (:meth:`InputContract.to_dict`); by default the
    model's conditions in their usual units, with no training ranges."""
    weights = save_safetensors(_state_tensors(net), metadata={"format": "pt"})
    metadata = {
        "format_version": FORMAT_VERSION,
        "gampen_version": __version__,
        "network": net.config.to_dict(),
        "param_names": list(param_names),
        "bands": list(bands),
        "input_size": net.config.input_size,
        "pixel_scale": pixel_scale,
        "zero_point": zero_point,
        "preprocessing": preprocessing,
        "calibration": calibration if calibration is not None else _identity(param_names),
        "provenance": {"created": _utc_now(), **(provenance or {})},
        "metrics": metrics or {},
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    metadata["contract"] = contract or InputContract.from_metadata(metadata).to_dict()
    _validate(metadata)
    try:
        text = json.dumps(metadata, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise BundleError(f"bundle metadata is not plain JSON: {exc}") from exc
    path = Path(path)
    if path.suffix == ".zip":
        _write_zip(path, weights, text)
    else:
        _write_directory(path, weights, text)
    return path


def load_bundle(path: str | Path, *, device: str | torch.device = "cpu") -> Bundle:
    """Read and validate a bundle directory or ``.zip``; the network comes in eval mode."""
    weights, text = _read_files(Path(path))
    metadata = _parse_json(text, path)
    _validate(metadata)
    config = NetworkConfig.from_dict(metadata["network"])
    net = GampenNet(config)
    tensors = _parse_weights(weights, path)
    _check_weights(net, tensors, path)
    if hashlib.sha256(weights).hexdigest() != metadata["weights_sha256"]:
        raise BundleError(
            f"{path}: {WEIGHTS_NAME} does not match {METADATA_NAME} (checksum differs); "
            "the bundle was modified or only partly written"
        )
    net.load_state_dict(tensors, strict=True)
    net.to(device).eval()
    return Bundle(
        net=net,
        config=config,
        param_names=metadata["param_names"],
        bands=metadata["bands"],
        input_size=metadata["input_size"],
        pixel_scale=float(metadata["pixel_scale"]),
        zero_point=float(metadata["zero_point"]),
        preprocessing=metadata["preprocessing"],
        calibration=metadata["calibration"],
        provenance=metadata["provenance"],
        metrics=metadata["metrics"],
        gampen_version=metadata["gampen_version"],
        format_version=metadata["format_version"],
        metadata=metadata,
    )


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The validated ``gampen.json`` of a bundle, without building the network."""
    _, text = _read_files(Path(path))
    metadata = _parse_json(text, path)
    _validate(metadata)
    return metadata


def bundle_sha256(metadata: dict[str, Any]) -> str:
    """SHA-256 of a bundle's metadata in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _state_tensors(net: GampenNet) -> dict[str, torch.Tensor]:
    """The state dict as contiguous CPU tensors, as safetensors requires."""
    return {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def _identity(param_names: list[str]) -> dict[str, Any]:
    """Calibration that changes nothing: a unit scale factor per parameter."""
    return {"scale": {name: 1.0 for name in param_names}}


def _utc_now() -> str:
    """Current UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write_directory(path: Path, weights: bytes, text: str) -> None:
    """Write both files atomically, weights first (the checksum catches a torn pair)."""
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / WEIGHTS_NAME) as tmp:
        tmp.write_bytes(weights)
    with atomic_path(path / METADATA_NAME) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_zip(path: Path, weights: bytes, text: str) -> None:
    """Write a zip holding both files at its top level, atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(METADATA_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(WEIGHTS_NAME, weights, compress_type=zipfile.ZIP_STORED)


def _read_files(path: Path) -> tuple[bytes, str]:
    """Raw weights and JSON text from a bundle directory or zip."""
    if path.is_dir():
        members = {name: path / name for name in (WEIGHTS_NAME, METADATA_NAME)}
        missing = [name for name, p in members.items() if not p.is_file()]
        if missing:
            raise BundleError(f"{path}: not a gampen bundle, missing {', '.join(missing)}")
        return members[WEIGHTS_NAME].read_bytes(), members[METADATA_NAME].read_text("utf-8")
    if path.is_file() and zipfile.is_zipfile(path):
        return _read_zip(path)
    raise BundleError(
        f"{path}: no model bundle here",
        allowed=f"a directory or .zip holding {WEIGHTS_NAME} and {METADATA_NAME}",
    )


def _read_zip(path: Path) -> tuple[bytes, str]:
    """Both files from a zip, at its top level or inside one top-level folder."""
    with zipfile.ZipFile(path) as archive:
        names = {Path(n).name: n for n in archive.namelist() if Path(n).parent.parent == Path()}
        missing = [n for n in (WEIGHTS_NAME, METADATA_NAME) if n not in names]
        if missing:
            raise BundleError(f"{path}: not a gampen bundle, missing {', '.join(missing)}")
        weights = archive.read(names[WEIGHTS_NAME])
        return weights, archive.read(names[METADATA_NAME]).decode("utf-8")


def _parse_json(text: str, path: str | Path) -> dict[str, Any]:
    """The JSON document, or a :class:`BundleError` saying where it is broken."""
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: {METADATA_NAME} is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise BundleError(f"{path}: {METADATA_NAME} must hold a JSON object")
    return metadata


def _parse_weights(weights: bytes, path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from safetensors bytes, or a :class:`BundleError`."""
    try:
        return load_safetensors(weights)
    except SafetensorError as exc:
        raise BundleError(f"{path}: {WEIGHTS_NAME} is not a valid safetensors file: {exc}") from exc


def _check_weights(net: GampenNet, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights whose names or shapes differ from the network the JSON describes."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [f"missing {k}" for k in sorted(expected.keys() - found.keys())]
    problems += [f"unexpected {k}" for k in sorted(found.keys() - expected.keys())]
    problems += [
        f"{k} has shape {found[k]}, expected {shape}"
        for k, shape in expected.items()
        if k in found and found[k] != shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise BundleError(
            f"{path}: {WEIGHTS_NAME} does not fit the network described in {METADATA_NAME}: {shown}"
        )


def _validate(metadata: dict[str, Any]) -> None:
    """Check the version, the presence and the type of every field."""
    version = metadata.get("format_version")
    _check_version(version)
    missing = [
        name
        for name in REQUIRED_FIELDS
        if name not in metadata and ADDED_IN.get(name, 1) <= version
    ]
    if missing:
        raise BundleError(f"{METADATA_NAME} lacks required field(s): {', '.join(missing)}")
    unknown = sorted(set(metadata) - set(REQUIRED_FIELDS))
    if unknown:
        raise BundleError(
            f"{METADATA_NAME} has unknown field(s)", value=unknown, allowed=REQUIRED_FIELDS
        )
    try:
        config = NetworkConfig.from_dict(metadata["network"])
    except (ConfigError, TypeError) as exc:
        raise BundleError(f"{METADATA_NAME} field 'network' is invalid: {exc}") from exc
    _check_names("param_names", metadata["param_names"], config.n_params)
    _check_names("bands", metadata["bands"], config.n_bands)
    if metadata["input_size"] != config.input_size:
        raise BundleError(
            "field 'input_size' disagrees with network.input_size",
            value=metadata["input_size"],
            allowed=config.input_size,
        )
    _check_number("pixel_scale", metadata["pixel_scale"], positive=True)
    _check_number("zero_point", metadata["zero_point"], positive=False)
    for name in ("preprocessing", "calibration", "provenance", "metrics"):
        _check_type(name, metadata[name], dict, "a JSON object")
    for key in ("stretch", "labels"):
        if key not in metadata["preprocessing"]:
            raise BundleError(f"field 'preprocessing' lacks the key '{key}'")
    _check_preprocessing(metadata["preprocessing"], metadata["param_names"])
    _check_calibration(metadata["calibration"], metadata["param_names"])
    _check_contract(metadata)
    _check_type("gampen_version", metadata["gampen_version"], str, "a string")
    _check_type("weights_sha256", metadata["weights_sha256"], str, "a hex string")


def _check_preprocessing(preprocessing: dict[str, Any], param_names: list[str]) -> None:
    """Refuse label transforms, stretch or scalar inputs that prediction could not use:
    malformed, of another parameter list, or with non-finite or non-positive scales."""
    from gampen.data.background import BorderBackground
    from gampen.data.labels import LabelTransform
    from gampen.data.normalize import ArcsinhStretch
    from gampen.data.scalars import ScalarInputs

    try:
        labels = LabelTransform.from_dict(preprocessing["labels"])
        ArcsinhStretch.from_dict(preprocessing["stretch"])
        ScalarInputs.from_dict(preprocessing.get("scalars"))
        BorderBackground.from_dict(preprocessing.get("background"))
    except GampenError as exc:
        raise BundleError(f"field 'preprocessing': {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(
            f"field 'preprocessing' is malformed ({type(exc).__name__}: {exc})"
        ) from exc
    k = len(param_names)
    if (
        list(labels.names) != list(param_names)
        or labels.mean.shape != (k,)
        or labels.std.shape != (k,)
    ):
        raise BundleError(
            "field 'preprocessing.labels' must give a mean and std for each parameter",
            value=preprocessing["labels"],
            allowed=param_names,
        )
    if not (np.isfinite(labels.mean).all() and np.isfinite(labels.std).all()) or np.any(
        labels.std <= 0
    ):
        raise BundleError(
            "field 'preprocessing.labels' needs finite means and finite positive stds",
            value=preprocessing["labels"],
        )


def _check_calibration(calibration: dict[str, Any], param_names: list[str]) -> None:
    """Refuse a calibration without a positive, finite spread factor for every parameter."""
    unknown = sorted(set(calibration) - set(CALIBRATION_KEYS))
    if unknown:
        raise BundleError(
            "field 'calibration' has unknown key(s)", value=unknown, allowed=CALIBRATION_KEYS
        )
    method = calibration.get("method", "spread")
    if method != "spread":
        raise BundleError("unknown calibration method", value=method, allowed=("spread",))
    try:
        Recalibration.from_calibration(calibration, param_names)
        if "ood" in calibration:
            OodModel.from_dict(calibration["ood"])
    except ValueError as exc:
        raise BundleError(f"field 'calibration': {exc}") from exc


def _check_contract(metadata: dict[str, Any]) -> None:
    """Refuse a ``contract`` field that is not an object of the known keys with valid
    units and ranges."""
    contract = metadata.get("contract", {})
    _check_type("contract", contract, dict, "a JSON object")
    known = ("magnitudes", "condition_units", "ranges", "calibrated_ranges")
    unknown = sorted(set(contract) - set(known))
    if unknown:
        raise BundleError("field 'contract' has unknown key(s)", value=unknown, allowed=known)
    if contract.get("magnitudes", "AB") != "AB":
        raise BundleError("field 'contract.magnitudes'", value=contract["magnitudes"], allowed="AB")
    for key in ("condition_units", "ranges", "calibrated_ranges"):
        _check_type(f"contract.{key}", contract.get(key, {}), dict, "a JSON object")
    try:
        InputContract.from_metadata(metadata)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"field 'contract' is malformed: {exc}") from exc


def _check_version(version: Any) -> None:
    """Refuse a missing, malformed or future format version."""
    if version is None:
        raise BundleError(f"{METADATA_NAME} lacks required field(s): format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(
            "field 'format_version' is invalid", value=version, allowed="an integer >= 1"
        )
    if version > FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version} is newer than this gampen ({__version__}) reads; "
            "upgrade gampen (pip install --upgrade gampen) to load it",
            value=version,
            allowed=f"<= {FORMAT_VERSION}",
        )


def _check_names(name: str, value: Any, length: int) -> None:
    """Refuse anything but a list of ``length`` distinct non-empty strings."""
    ok = (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, str) and v for v in value)
        and len(set(value)) == length
    )
    if not ok:
        raise BundleError(
            f"field '{name}' is invalid",
            value=value,
            allowed=f"{length} distinct names (from 'network')",
        )


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    """Refuse a non-finite number (or a non-positive one when ``positive``)."""
    if not is_finite_number(value) or (positive and value <= 0):
        raise BundleError(
            f"field '{name}' is invalid",
            value=value,
            allowed="a positive number" if positive else "a finite number",
        )


def _check_type(name: str, value: Any, kind: type, description: str) -> None:
    """Refuse a field of the wrong JSON type."""
    if not isinstance(value, kind):
        raise BundleError(f"field '{name}' is invalid", value=value, allowed=description)
