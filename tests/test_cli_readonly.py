"""The read-only commands as a user runs them: a subprocess, pointed at moto_server with
AWS_ENDPOINT_URL, whose recorder lists every request. verify and status only read."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.moto_deployment import REGION, deploy

ROOT = Path(__file__).parents[1]
READ_ONLY = ("Describe", "Get", "List")


@pytest.fixture
def moto_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recording = tmp_path / "recording.jsonl"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p",
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ENABLE_RECORDING": "true",
             "MOTO_RECORDER_FILEPATH": str(recording)})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint, recording
    finally:
        server.kill()
        server.wait()


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,  # type: ignore[call-overload]
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def actions(recording: Path) -> list[str]:
    """The API actions the recorder saw (Query protocol: the Action form field)."""
    found = []
    for line in recording.read_text().splitlines():
        entry = json.loads(line)
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        query = urllib.parse.urlsplit(entry["url"]).query
        fields = urllib.parse.parse_qs(body) | urllib.parse.parse_qs(query)
        target = entry["headers"].get("X-Amz-Target", "")
        found.append(fields["Action"][0] if "Action" in fields else target.split(".")[-1] or
                     f"{entry['method']} {urllib.parse.urlsplit(entry['url']).path}")
    return found


def run_command(endpoint: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("AWS_")}
    environment.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                       AWS_SECRET_ACCESS_KEY="testing", AWS_CONFIG_FILE="/dev/null",
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return subprocess.run([sys.executable, "-m", "natctl", *arguments, "--region", REGION],
                          capture_output=True, text=True, cwd=ROOT, env=environment,
                          timeout=120)


def test_verify_and_status_only_read(moto_server: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, recording = moto_server
    ec2 = client(endpoint, "ec2")
    outputs = deploy(ec2)
    # a fault or two, so the checks that look further run too
    ec2.delete_route(RouteTableId=outputs["private_route_table_ids"][f"{REGION}b"],
                     DestinationCidrBlock="0.0.0.0/0")
    outputs["monitoring"] = {"namespace": "NatInstance", "group": "p/s/nat",
                             "detailed_metrics": True, "instance_type": "t4g.nano",
                             "alarm_names": {f"{REGION}a": ["nat-drops"]}}
    outputs["connection_table_sizes"] = {zone: 131072 for zone in outputs["availability_zones"]}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoint}/moto-api/recorder/reset-recording", method="POST"))

    verified = run_command(endpoint, "verify", str(path))
    assert verified.returncode == 1, verified.stderr  # the deleted route
    assert "has no 0.0.0.0/0 route" in verified.stdout
    status = run_command(endpoint, "status", str(path), "--json")
    assert status.returncode == 1, status.stderr  # nothing published: silent
    assert json.loads(status.stdout)["zones"][f"{REGION}a"]["limits"][0].startswith("silent")

    called = actions(recording)
    assert "DescribeRouteTables" in called and "GetMetricData" in called
    assert "DescribeAlarms" in called
    writes = [action for action in called if not action.startswith(READ_ONLY)]
    assert writes == []
