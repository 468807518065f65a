"""Test configuration: hypothesis profiles and the device the suite runs on.

- ``ci`` (the default): few examples per property, derandomised, so a run is bounded
  and repeatable; this is what ``.ci/run`` uses.
- ``thorough``: many random examples, for a long local run:
  ``HYPOTHESIS_PROFILE=thorough pytest``.

``MINIGRAD_DEVICE=cuda pytest`` runs every test on the GPU (CuPy); the strategies and
factories create tensors on the default device. ``MINIGRAD_TEST_FAKE_CUPY=1`` puts the strict
CuPy stand-in (tests/cupy_standin) in CuPy's place first, so that ``MINIGRAD_TEST_FAKE_CUPY=1
MINIGRAD_DEVICE=cuda pytest`` runs the suite's device paths without a GPU.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

if os.environ.get("MINIGRAD_TEST_FAKE_CUPY") == "1":
    from pathlib import Path

    from tests.cupy_standin import install

    install()
    # the Python processes the tests start (MPI ranks) install it too, through its sitecustomize
    _ROOT = Path(__file__).resolve().parents[1]
    _PATHS = [str(_ROOT / "tests" / "cupy_standin" / "site"), str(_ROOT), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, _PATHS))

import minigrad as mg  # noqa: E402 - after the stand-in, which it must import as cupy

_quiet = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.differing_executors,
]
settings.register_profile(
    "ci", max_examples=10, derandomize=True, deadline=None, suppress_health_check=_quiet, print_blob=True
)
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=_quiet)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DEVICE = mg.backend.get_default_device()

# Under ``pytest -n K`` the K workers already keep the cores busy: a worker that also split its
# kernels over every core would oversubscribe them (tests/test_threads.py forces the splits).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    mg.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_grad_mode():
    """Every test starts from the same seed, with grad mode on and float32 as the default."""
    mg.manual_seed(0)
    yield
    assert mg.is_grad_enabled(), "a test left grad mode off"
    mg.set_default_dtype(mg.float32)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip cleanly where CuPy or a GPU is missing."""
    if mg.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a GPU (run with MINIGRAD_DEVICE=cuda on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
