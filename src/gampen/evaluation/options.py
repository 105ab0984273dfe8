"""What ``gampen evaluate`` runs beyond the table checks, in a module light enough for
``import gampen``."""

from __future__ import annotations

from dataclasses import dataclass

from gampen.checks import check_int

WHERE = "evaluate option"


@dataclass
class EvaluateOptions:
    """What to run beyond the table checks; see ``gampen evaluate --help``."""

    model: str | None = None
    #: Judge ``model`` even on galaxies it was trained on (refused otherwise).
    allow_training_galaxies: bool = False
    image_dir: str | None = None
    show: int = 0
    rotation: bool = False
    rotation_galaxies: int = 200
    n_passes: int = 50
    n_samples: int = 500
    seed: int = 0
    progress: bool = True
    #: Truth columns whose bins get their own coverage (``--by``).
    by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse out-of-range counts and seeds with a message naming the option."""
        check_int(WHERE, "show", self.show, 0, 1000)
        check_int(WHERE, "rotation_galaxies", self.rotation_galaxies, 1, 1_000_000)
        check_int(WHERE, "n_passes", self.n_passes, 1, 100_000)
        check_int(WHERE, "n_samples", self.n_samples, 1, 1_000_000)
        check_int(WHERE, "seed", self.seed, 0, 2**63 - 1)
        # one column name given alone (by="psf_model") is one column, not its letters
        self.by = (self.by,) if isinstance(self.by, str) else tuple(str(c) for c in self.by)

    @property
    def needs_model(self) -> bool:
        """Whether any check runs the network."""
        return self.show > 0 or self.rotation
