"""Judging posteriors against the truth (``gampen evaluate``).  Fitting their
recalibration (``gampen calibrate``) is :mod:`gampen.calibration`."""
