"""Judging posteriors against the truth (``gampen evaluate``) and fitting their
recalibration (``gampen calibrate``)."""
