"""The ``evaluate`` subpackage; calling it runs :func:`gampen.api.evaluate`."""

from gampen.api import make_callable

make_callable(__name__)  # gampen.evaluate(...) runs gampen.api.evaluate
