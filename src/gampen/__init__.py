"""gampen: calibrated Bayesian posteriors of galaxy morphology from survey cutouts.

``gampen.predict``, ``gampen.simulate``, ``gampen.train``, ``gampen.evaluate`` and
``gampen.load_model`` are the main calls (:mod:`gampen.api`).  ``simulate``, ``train``
and ``evaluate`` are also subpackages: calling one runs the function of its name.
"""

__version__ = "0.1.0"

from gampen import evaluate, simulate, train  # callable subpackages
from gampen.api import load_model, predict

__all__ = ["__version__", "evaluate", "load_model", "predict", "simulate", "train"]
