"""Installs the CuPy stand-in in Python processes the tests start (MPI ranks, the ddp example's
ranks): tests/conftest.py puts this folder and the project on PYTHONPATH when
``MINIGRAD_TEST_FAKE_CUPY=1``, and Python imports ``sitecustomize`` at start-up."""

import os

if os.environ.get("MINIGRAD_TEST_FAKE_CUPY") == "1":
    from tests.cupy_standin import install

    install()
