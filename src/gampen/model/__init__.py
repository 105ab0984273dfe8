"""GaMPEN's network, losses and model bundle.

* :mod:`gampen.model.config` — :class:`NetworkConfig`, the validated architecture settings.
* :mod:`gampen.model.stn` — the spatial transformer (learned zoom about the centre, or affine).
* :mod:`gampen.model.backbones` — the ``compact`` residual CNN and GaMPEN's ``vgg16``.
* :mod:`gampen.model.head` — the Gaussian head (mean and Cholesky factor).
* :mod:`gampen.model.network` — :class:`GampenNet`, its prefix/suffix split for MC
  dropout, and :func:`enable_mc_dropout`.
* :mod:`gampen.model.loss` — full-covariance Gaussian NLL, diagonal NLL, MSE, ``get_loss``.
* :mod:`gampen.model.bundle` — ``save_bundle`` / ``load_bundle`` (safetensors + JSON).
* :mod:`gampen.model.ood` — :class:`OodModel`, the Gaussian model of the network's
  features that scores how far a galaxy lies from those the model knows.
* :mod:`gampen.model.command` — ``gampen info``.

Nothing is imported here, so ``gampen --help`` does not load torch.
"""
