"""The agent's loader (nat/instance/loader.py): user data carries it instead of the agent when
the agent does not fit (keepConnections). It must sign its S3 GET as AWS does (checked
against botocore's signer), run only the agent whose SHA-256 user data names, keep it, and
fail in a way systemd retries, with a line that says why."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nat.instance import loader

AGENT = b"print('the agent')\n"


def test_the_signature_is_aws_s3_sigv4(monkeypatch: Any) -> None:
    now = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.UTC)
    url = "https://nat-agent-abc.s3.eu-west-1.amazonaws.com/nat-agent/0123abcd.py"
    keys = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    ours = loader.signed_headers(url, "eu-west-1", keys, now)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials(*keys), "s3", "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-security-token"] == "session-token"
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]


def test_the_object_url_is_regional_or_the_endpoint_given(monkeypatch: Any) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert loader.object_url("b", "nat-agent/x.py", "cn-north-1") == \
        "https://b.s3.cn-north-1.amazonaws.com.cn/nat-agent/x.py"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://10.0.0.1:5000/")
    assert loader.object_url("b", "nat-agent/x.py", "us-east-1") == \
        "http://10.0.0.1:5000/b/nat-agent/x.py"


@pytest.fixture
def s3() -> Iterator[dict[str, Any]]:
    """An endpoint serving one object (and counting requests)."""
    served: dict[str, Any] = {"body": AGENT, "requests": 0, "status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["requests"] += 1
            served["authorization"] = self.headers.get("Authorization", "")
            self.send_response(served["status"])
            self.send_header("Content-Length", str(len(served["body"])))
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield served
    server.shutdown()


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: Any, s3: dict[str, Any]) -> dict[str, Any]:
    source = tmp_path / "agent-source.json"
    source.write_text(json.dumps({"bucket": "b", "key": "nat-agent/x.py",
                                  "region": "us-east-1",
                                  "sha256": hashlib.sha256(AGENT).hexdigest()}))
    monkeypatch.setattr(loader, "SOURCE", str(source))
    monkeypatch.setattr(loader, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    ran: dict[str, Any] = {}
    monkeypatch.setattr(os, "execv", lambda program, argv: ran.update(argv=argv))
    return {"ran": ran, "state": tmp_path / "state"}


def test_it_fetches_checks_keeps_and_runs_the_agent(instance: dict[str, Any],
                                                    s3: dict[str, Any]) -> None:
    assert loader.main(["run"]) == 0
    [kept] = instance["state"].iterdir()
    assert kept.read_bytes() == AGENT and instance["ran"]["argv"][1:] == [str(kept), "run"]
    assert s3["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert loader.main(["probe-helper"]) == 0  # the kept copy: no second download
    assert s3["requests"] == 1 and instance["ran"]["argv"][-1] == "probe-helper"


def test_an_object_that_is_not_the_named_agent_is_not_run(instance: dict[str, Any],
                                                          s3: dict[str, Any],
                                                          capsys: Any) -> None:
    s3["body"] = b"print('someone else')\n"
    assert loader.main(["run"]) == 1
    assert "is not the agent this launch template names" in capsys.readouterr().out
    assert not instance["ran"] and not list(instance["state"].glob("*.py"))


def test_a_failed_download_exits_1_for_systemd_to_retry(instance: dict[str, Any],
                                                       s3: dict[str, Any],
                                                       capsys: Any) -> None:
    s3["status"] = 403
    assert loader.main(["run"]) == 1
    assert "FAILED to fetch the agent from s3://b/nat-agent/x.py: HTTP Error 403" in \
        capsys.readouterr().out
    assert not instance["ran"]
