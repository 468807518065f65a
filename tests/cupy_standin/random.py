"""``cupy.random``: the legacy functions on one NumPy ``RandomState``, and ``default_rng``'s
``Generator`` with only the methods CuPy's has (no ``normal``, ``permutation``, ``choice``)."""

import numpy

from .core import NAMES, function, wrap


class Generator:
    """CuPy's ``Generator``: draws from a NumPy ``Generator``, results on the device."""

    def __init__(self, bit_generator=None):
        self._rng = numpy.random.default_rng(bit_generator)

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._rng.random(size, dtype=dtype), out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._rng.standard_normal(size, dtype=dtype), out)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return wrap(numpy.asarray(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        return wrap(numpy.asarray(self._rng.uniform(low, high, size)).astype(dtype, copy=False))

    @staticmethod
    def _fill(draw, out):
        if out is None:
            return wrap(numpy.asarray(draw))
        out[...] = wrap(draw)
        return out


def _draw(name: str):
    def method(self, *args, **kwargs):
        return wrap(numpy.asarray(getattr(self._rng, name)(*args, **kwargs)))

    method.__name__ = name
    return method


for _name in NAMES["cupy.random.Generator"]:
    if not hasattr(Generator, _name):
        setattr(Generator, _name, _draw(_name))


def default_rng(seed=None) -> Generator:
    return Generator(seed)


_state = numpy.random.RandomState()


def seed(seed=None) -> None:
    _state.seed(seed)


STATE = _state
OWN = {  # what cupy.random has of its own; its other functions are NumPy's RandomState methods, wrapped
    "Generator": Generator,
    "default_rng": default_rng,
    "seed": seed,
    **{name: function(name, getattr(_state, name)) for name in ("rand", "randn", "randint", "random_sample")},
}
