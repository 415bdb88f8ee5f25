"""Shared helpers: run the real program under Pulumi's mocks with a given stack config."""

from __future__ import annotations

from typing import Any

import pytest

from nat.offline import Graph, run_program

NS = "nat-instance-vpc"
COMPONENT = "nat:index:NatInstanceVpc"


def config(region: str = "us-east-1", **keys: Any) -> dict[str, Any]:
    """{"aws:region": ..., "nat-instance-vpc:<key>": value} from keyword arguments."""
    return {"aws:region": region, **{f"{NS}:{k}": v for k, v in keys.items()}}


@pytest.fixture
def run() -> Any:
    def _run(stack: str = "test", region: str = "us-east-1", **keys: Any) -> Graph:
        return run_program(config(region, **keys), stack=stack)
    return _run
