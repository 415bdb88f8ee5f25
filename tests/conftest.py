"""Shared helpers: run the real program under Pulumi's mocks with a given stack config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from natctl.offline import Graph, run_program

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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 session on moto's emulated AWS, with no real credentials or profile in reach."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")
