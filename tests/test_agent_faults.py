"""The agent under faults of the things it talks to: every failure of a call is one failed
step, logged once, never an exit."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nat.instance import agent
from nat.instance.agent import Aws, AwsError, Credentials, FailureLog

ANSWER = (b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRouteTablesResponse '
          b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><routeTableSet/>'
          b'</DescribeRouteTablesResponse>')


class FaultyApi(http.server.BaseHTTPRequestHandler):
    """Answers every call in the way `mode` says."""

    mode = "ok"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "reset":
            self.connection.close()
            return
        body = {"ok": ANSWER, "garbage": b"<not xml", "truncated": ANSWER,
                "throttled": b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                             b"<Message>slow down</Message></Error></Errors></Response>"
                }[self.mode]
        self.send_response(503 if self.mode == "throttled" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # a proxy or a reset mid-answer: 30 bytes of a longer body, then the end
        self.wfile.write(body[:30] if self.mode == "truncated" else body)
        self.wfile.flush()
        if self.mode == "truncated":
            self.connection.close()

    def log_message(self, *_: Any) -> None:
        pass


class StaticCredentials(Credentials):
    def __init__(self) -> None:
        pass

    def get(self) -> tuple[str, str, str | None]:  # type: ignore[override]
        return "AKIDEXAMPLE", "secret", None


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FaultyApi]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FaultyApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield FaultyApi
    server.shutdown()
    FaultyApi.mode = "ok"


@pytest.mark.parametrize(("mode", "code", "words"), [
    ("truncated", "RequestFailed", "IncompleteRead"),
    ("garbage", "RequestFailed", "ParseError"),
    ("reset", "RequestFailed", "DescribeRouteTables"),
    ("throttled", "RequestLimitExceeded", "slow down"),
])
def test_every_way_a_call_fails_is_an_aws_error(api: type[FaultyApi], mode: str, code: str,
                                                words: str) -> None:
    aws = Aws("us-east-1", StaticCredentials(), timeout=2)
    assert aws.route_targets(["rtb-1"]) == {}  # the same server answers when it works
    api.mode = mode
    with pytest.raises(AwsError) as raised:
        aws.route_targets(["rtb-1"])
    assert raised.value.code == code and words in str(raised.value)


def test_a_failure_is_logged_once_and_its_end_said(capsys: pytest.CaptureFixture[str]) -> None:
    failures = FailureLog("a step")
    for _ in range(12):
        failures.failed(AwsError("RequestFailed", "DescribeRouteTables: IncompleteRead"))
    failures.failed(OSError("timed out"))
    failures.succeeded()
    failures.succeeded()
    assert capsys.readouterr().out.splitlines() == [
        "nat-agent: a step failed, trying again: AwsError: RequestFailed: "
        "DescribeRouteTables: IncompleteRead",
        "nat-agent: a step: the same failure 11 more time(s)",
        "nat-agent: a step failed, trying again: OSError: timed out",
        "nat-agent: a step works again"]


def test_the_probe_helper_ends_quietly_when_the_agent_is_gone() -> None:
    """The agent hands its instance back and stops reading: the helper's next answer meets a
    closed pipe. It ends with no traceback."""
    helper = subprocess.Popen([sys.executable, agent.__file__, "probe-helper"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert helper.stdout is not None and helper.stdin is not None
    assert helper.stdout.readline().strip() == "ready"
    helper.stdout.close()  # the agent is gone
    helper.stdin.write("connect 127.0.0.1 9 0.2\nnonsense\n")
    helper.stdin.close()
    assert helper.wait(timeout=10) == 0
    assert helper.stderr is not None and helper.stderr.read() == ""
