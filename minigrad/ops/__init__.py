"""The op library, one module per family. Each op is a ``Function`` next to the public
function that calls it; ``Function.registry`` lists every differentiable op."""

from minigrad.ops import elementwise, index, linalg, nondiff, reduce, shape  # noqa: F401
