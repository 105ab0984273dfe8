"""How ``gampen predict`` samples and runs: the options of the command, the Python call and
``gampen calibrate``'s sampling, in a module light enough for ``import gampen``."""

from __future__ import annotations

from dataclasses import dataclass, field

from gampen.checks import check_float, check_int

#: Largest --psf-fwhm-error accepted: beyond it the PSF model is no model.
MAX_PSF_ERROR = 0.5

WHERE = "prediction option"


@dataclass
class PredictOptions:
    """How to sample and how to run; see ``gampen predict --help``."""

    n_passes: int = 100
    n_samples: int = 1000
    batch_size: int = 64
    chunk_size: int = 512
    seed: int = 0
    num_workers: int = 2  # reading, background removal and PSF features keep one busy
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    image_dir: str | None = None
    hdu: str | None = None
    samples_out: str | None = None
    progress: bool = True
    overwrite: bool = False
    keep_columns: tuple[str, ...] | str = ()
    #: Catalog column (or header keyword) holding each condition the model takes, where
    #: it is not the condition's own name, e.g. ``{"psf_fwhm": "SEEING"}``.
    conditions: dict[str, str] = field(default_factory=dict)
    #: rms of ln(true / reported PSF FWHM), or the catalog column holding each galaxy's:
    #: the posterior is marginalised over a PSF that much wider or narrower
    #: (:mod:`gampen.infer.psf_error`); 0: the PSF is exact.
    psf_fwhm_error: float | str = 0.0

    def __post_init__(self) -> None:
        check_int(WHERE, "n_passes", self.n_passes, 1, 100_000)
        check_int(WHERE, "n_samples", self.n_samples, 2, 1_000_000)
        check_int(WHERE, "batch_size", self.batch_size, 1, 65_536)
        check_int(WHERE, "chunk_size", self.chunk_size, 1, 1_000_000)
        check_int(WHERE, "seed", self.seed, 0, 2**63 - 1)
        check_int(WHERE, "num_workers", self.num_workers, 0, 256)
        if not (isinstance(self.psf_fwhm_error, str) and self.psf_fwhm_error):
            check_float(WHERE, "psf_fwhm_error", self.psf_fwhm_error, low=0.0, high=MAX_PSF_ERROR)
