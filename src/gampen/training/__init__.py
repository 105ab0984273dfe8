"""Training a model bundle with PyTorch Lightning: ``gampen train`` (:mod:`gampen.training.fit`)."""
