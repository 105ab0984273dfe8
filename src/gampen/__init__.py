"""gampen: calibrated Bayesian posteriors of galaxy morphology from survey cutouts.

The main calls are plain functions (:mod:`gampen.api`): ``gampen.predict``,
``gampen.simulate``, ``gampen.train``, ``gampen.calibrate``, ``gampen.evaluate`` and
``gampen.load_model``.  The subpackages have names of their own: ``gampen.simulation``,
``gampen.training``, ``gampen.calibration``, ``gampen.evaluation``, ``gampen.infer``,
``gampen.model``, ``gampen.data``.
"""

__version__ = "0.1.0"

from gampen.api import calibrate, evaluate, load_model, predict, simulate, train

__all__ = ["__version__", "calibrate", "evaluate", "load_model", "predict", "simulate", "train"]
