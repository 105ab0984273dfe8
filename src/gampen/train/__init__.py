"""The ``train`` subpackage; calling it runs :func:`gampen.api.train`."""

from gampen.api import make_callable

make_callable(__name__)  # gampen.train(...) runs gampen.api.train
