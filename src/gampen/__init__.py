"""gampen: calibrated Bayesian posteriors of galaxy morphology from survey cutouts."""

__version__ = "0.1.0"
