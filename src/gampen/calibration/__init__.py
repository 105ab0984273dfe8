"""Recalibration of the posteriors: the maps ``gampen predict`` applies, their fit, and
``gampen calibrate``.

* :mod:`gampen.calibration.maps` — the maps a bundle's ``calibration`` field describes
  (:class:`~gampen.calibration.maps.SpreadMap`, :class:`~gampen.calibration.maps.Recalibration`
  ...), how they reshape posterior samples and how they are read from the bundle's JSON;
  numpy only, so the model layer can validate a bundle with them.
* :mod:`gampen.calibration.ranks` — where the truth ranks among a posterior's samples
  (randomised PIT, Mahalanobis rank fraction): the maths that the fit's check and
  ``gampen evaluate`` share.
* :mod:`gampen.calibration.fit` — the fit of the maps to standardised samples and truths
  (numpy only).
* :mod:`gampen.calibration.workflow` — ``gampen calibrate``'s work: draw a catalog's samples
  through the network, fit, check on a held-out part, bootstrap, write the bundle.
* :mod:`gampen.calibration.command` — the ``gampen calibrate`` command line.

Nothing is imported here, so ``gampen --help`` stays light.
"""
