"""What a test module needs from the machine: skipped where it is missing, except in CI
(CI=true), where a missing tool is a failure: CI must run every test."""

from __future__ import annotations

import os

import pytest

from testbed.topology import missing_requirements


def network_namespaces(what: str) -> None:
    """Root, iproute2, iptables, nftables, util-linux (the data-path tests)."""
    missing = missing_requirements()
    if missing and os.environ.get("CI"):
        raise RuntimeError(f"CI must run the {what}, but: {missing}")
    if missing:
        pytest.skip(f"{what} skipped: {missing}", allow_module_level=True)


def program(name: str, package: str, what: str) -> None:
    """A program the tests run (e.g. conntrackd), by the same rule: skipped, or in CI a
    failure."""
    import shutil

    if shutil.which(name) is None:
        message = f"{what}: {name} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            raise RuntimeError(f"CI must run the {message}")
        pytest.skip(message, allow_module_level=True)
