"""What user data carries: the bootstrap script without its comments, the agent without its
docstrings, both still the same programs."""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from nat.design import monitoring
from nat.design.userdata import (
    AGENT_PATH,
    BOOTSTRAP_SCRIPT_PATH,
    EC2_USER_DATA_LIMIT,
    HANDOVER_SECTION,
    UserDataContents,
    UserDataError,
    agent_script,
    bootstrap_script,
    compress_user_data,
    encode_user_data,
    heredoc,
    parse_user_data,
    release_of,
    render_user_data,
    strip_shell_comments,
)
from nat.inputs.settings import MonitoringSettings
from nat.inputs.tuning import TuningOverrides
from nat.instance.agent import MetricsSettings, Settings


def test_only_whole_line_comments_go() -> None:
    source = BOOTSTRAP_SCRIPT_PATH.read_text().splitlines()
    shipped = bootstrap_script().splitlines()
    assert shipped[0] == source[0] == "#!/bin/bash"
    # the shipped lines are the source's, in order; every line left out is a comment
    remaining = iter(shipped)
    expected: str | None = next(remaining)
    dropped = []
    for line in source:
        if line == expected:
            expected = next(remaining, None)
        else:
            dropped.append(line)
    assert expected is None, "a shipped line is not in the source, or out of order"
    assert dropped and all(line.lstrip().startswith("#") for line in dropped)
    # the sysctl file's own comment (inside a heredoc) is part of the file it writes
    assert any(line.startswith("# Written by nat-bootstrap.sh") for line in shipped)
    assert subprocess.run(["bash", "-n"], input=bootstrap_script(), text=True).returncode == 0


def test_heredoc_bodies_are_kept_verbatim() -> None:
    script = ("#!/bin/bash\n# a comment\ncat >f <<EOF\n# kept: part of the file\n  # kept\nEOF\n"
              "cat >g <<'END_OF_IT'\n# kept too\nEND_OF_IT\n    # gone\necho done # stays\n"
              "read -r -a x <<<\"$y\"\n# gone\n")
    assert strip_shell_comments(script) == (
        "#!/bin/bash\ncat >f <<EOF\n# kept: part of the file\n  # kept\nEOF\n"
        "cat >g <<'END_OF_IT'\n# kept too\nEND_OF_IT\necho done # stays\n"
        "read -r -a x <<<\"$y\"\n")


def test_the_shipped_agent_is_the_same_program() -> None:
    """Same classes, functions and calls, minus docstrings and annotations; the names at
    module level (what log lines, agent.json and the tests name) unchanged."""
    def skeleton(tree: ast.AST) -> list[str]:
        return sorted(type(node).__name__ + ":" + getattr(node, "name", "")
                      for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Call, ast.If,
                                           ast.For, ast.While, ast.Try, ast.Assert)))
    def module_names(tree: ast.Module) -> set[str]:
        return {node.name for node in tree.body
                if isinstance(node, (ast.FunctionDef, ast.ClassDef))} | {
            target.id for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}

    text = AGENT_PATH.read_text()
    # the handover code (conntrackd, address moves) only where it runs
    for handover, source_text in ((True, text), (False, HANDOVER_SECTION.sub("", text))):
        shipped, source = ast.parse(agent_script(handover)), ast.parse(source_text)
        assert skeleton(shipped) == skeleton(source)
        assert '"""' not in agent_script(handover)
        assert module_names(shipped) == module_names(source)
    assert "Handover" in module_names(ast.parse(agent_script(True)))
    assert "Handover" not in module_names(ast.parse(agent_script()))


CLOUD_INIT_READS = """
import base64, json, sys, tempfile
from cloudinit import helpers, user_data
blob = base64.b64decode(sys.stdin.read())
with tempfile.TemporaryDirectory() as cloud_dir:
    paths = helpers.Paths({"cloud_dir": cloud_dir})
    message = user_data.UserDataProcessor(paths).process(blob)
parts = [part for part in message.walk() if not part.is_multipart()]
print(json.dumps([[part.get_content_type(), part.get_payload(decode=True).decode()]
                  for part in parts]))
"""


def system_python_with_cloud_init() -> str | None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python and subprocess.run([python, "-c", "import cloudinit"],
                                 capture_output=True).returncode == 0:
        return python
    if os.environ.get("CI"):
        raise RuntimeError("CI must check user data with cloud-init: apt-get install cloud-init")
    return None


@pytest.mark.parametrize("metrics", [False, True])
def test_cloud_init_reads_the_user_data_as_one_shell_script(metrics: bool) -> None:
    """Debian's cloud-init (its own user-data processor, as on the instance) unpacks the gzip
    and finds one part: a shell script, our text."""
    python = system_python_with_cloud_init()
    if python is None:
        pytest.skip("cloud-init is not installed (apt-get install cloud-init)")
    agent = Settings("us-east-1", metrics=monitoring.agent_settings(
        MonitoringSettings(), "p/s/nat")) if metrics else None
    text = render_user_data([IPv4Network("10.0.0.0/16")], TuningOverrides(), agent)
    result = subprocess.run([python, "-c", CLOUD_INIT_READS], input=encode_user_data(text),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["text/x-shellscript", text]]


def test_the_packed_user_data_depends_on_the_text_alone() -> None:
    """gzip with mtime=0: the same script gives the same bytes at every `pulumi up`, or every
    NAT would be replaced each time."""
    text = render_user_data([IPv4Network("10.0.0.0/16")], TuningOverrides(), None)
    first = encode_user_data(text)
    time.sleep(1.1)
    assert encode_user_data(text) == first
    assert gzip.decompress(base64.b64decode(first)).decode() == text
    assert base64.b64decode(first)[4:8] == b"\0\0\0\0"  # the gzip header's mtime


def test_a_marker_inside_a_file_is_refused() -> None:
    with pytest.raises(UserDataError, match="contains the heredoc marker END"):
        heredoc("/etc/x", "a\nEND\nb", "END", "0644")
    assert heredoc("/etc/x", "a\n END \n", "X_END", "0600") == \
        "cat >/etc/x <<'X_END'\na\n END\nX_END\nchmod 0600 /etc/x\n"


def test_the_shipped_agent_runs_by_its_own_first_line(tmp_path: Path) -> None:
    agent = tmp_path / "nat-agent"
    agent.write_text(agent_script())
    agent.chmod(0o755)
    shown = subprocess.run([str(agent), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: nat-agent")


def test_release_is_a_fingerprint_of_what_a_launch_template_launches() -> None:
    base = release_of("#!/bin/bash\n", "ami-0123456789abcdef0", "t4g.nano", None)
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    # the first 16 hex digits of SHA-256 over the four, in order, no key as ""
    material = json.dumps(["#!/bin/bash\n", "ami-0123456789abcdef0", "t4g.nano", ""])
    assert base == hashlib.sha256(material.encode()).hexdigest()[:16]
    assert release_of("#!/bin/bash\n", "ami-0123456789abcdef0", "t4g.nano", "") == base
    changed = {release_of("#!/bin/sh\n", "ami-0123456789abcdef0", "t4g.nano", None),
               release_of("#!/bin/bash\n", "ami-0123456789abcdef1", "t4g.nano", None),
               release_of("#!/bin/bash\n", "ami-0123456789abcdef0", "t4g.micro", None),
               release_of("#!/bin/bash\n", "ami-0123456789abcdef0", "t4g.nano", "ops")}
    assert len(changed) == 4 and base not in changed


def test_comment_stripping_reads_every_line_after_the_shebang() -> None:
    script = "#!/bin/bash\nset -e\n# gone\ncat >f <<eof\n# kept: a lowercase marker\neof\n"
    assert strip_shell_comments(script) == \
        "#!/bin/bash\nset -e\ncat >f <<eof\n# kept: a lowercase marker\neof\n"


# hex digits: gzip packs them to a little over half, byte by byte as the text grows
HEX_TEXT = "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(1200))


def packed_size(size: int) -> int:
    return len(gzip.compress(HEX_TEXT[:size].encode(), compresslevel=9, mtime=0))


def test_user_data_up_to_ec2s_limit_and_not_a_byte_more() -> None:
    low, high = 0, len(HEX_TEXT)  # the shortest text that packs to the limit, by bisection
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if packed_size(middle) < EC2_USER_DATA_LIMIT else \
            (low, middle)
    at_limit = next(n for n in range(low, low + 64) if packed_size(n) == EC2_USER_DATA_LIMIT)
    assert len(compress_user_data(HEX_TEXT[:at_limit])) == EC2_USER_DATA_LIMIT
    over = next(n for n in range(at_limit, at_limit + 64)
                if packed_size(n) == EC2_USER_DATA_LIMIT + 1)
    with pytest.raises(UserDataError) as refused:
        compress_user_data(HEX_TEXT[:over])
    assert str(refused.value) == \
        f"user data is {EC2_USER_DATA_LIMIT + 1} bytes compressed, over EC2's 16384"


def test_agent_settings_are_written_as_the_agent_reads_them() -> None:
    # the user data is part of the launch template's fingerprint: the same settings must
    # always give the same text (sorted keys, only what the agent is told), and read back
    # as the same settings
    metrics = MetricsSettings(namespace="N", group="p/s/n", detailed=False, publish_every=300)
    cidrs = [IPv4Network("10.0.0.0/16")]
    text = render_user_data(cidrs, TuningOverrides.from_values({"max_entries": 65536}),
                            Settings("us-east-1", metrics=metrics))
    assert '\n{"metrics": {"detailed": false, "group": "p/s/n", "namespace": "N", ' \
        '"publish_every": 300.0, "sample_every": 60.0}, "region": "us-east-1"}\n' in text
    back = parse_user_data(text)
    assert back == UserDataContents((cidrs[0],), ("NAT_CONNTRACK_MAX=65536",),
                                    Settings("us-east-1", metrics=metrics))
    ha = Settings("us-east-1", nats={"a": {"eni": "eni-1", "address": "10.0.0.5"}},
                  route_tables={"rtb-1": "a"}, targets=["t:1"], failback_after=60,
                  release="r", route_refresh=5)
    assert ha.to_document() == {
        "region": "us-east-1", "nats": {"a": {"eni": "eni-1", "address": "10.0.0.5"}},
        "route_tables": {"rtb-1": "a"}, "targets": ["t:1"], "failback_after": 60.0,
        "status_port": 7654, "release": "r", "route_refresh": 5}
    assert parse_user_data(render_user_data(cidrs, TuningOverrides(), ha)).agent == ha
    assert parse_user_data(render_user_data(cidrs, TuningOverrides())).agent is None
    with pytest.raises(UserDataError, match="not user data of nat-instance-vpc"):
        parse_user_data("#!/bin/bash\necho hi\n")


def test_what_user_data_says_is_read_from_its_own_places() -> None:
    cidrs = [IPv4Network("10.0.0.0/16")]
    text = render_user_data(cidrs, TuningOverrides.from_values({"max_entries": 65536}))
    # a marker met again later (in the bootstrap script's text, say) changes nothing
    assert parse_user_data(text + "<<'NAT_TUNING_END'\nX=1\nNAT_TUNING_END\n").tuning == (
        "NAT_CONNTRACK_MAX=65536",)
    for broken in (text.replace("NAT_TUNING_END", "OTHER_END"),
                   text.replace("NAT_VPC_CIDRS=", "OTHER=")):
        with pytest.raises(UserDataError) as raised:
            parse_user_data(broken)
        assert str(raised.value) == ("not user data of nat-instance-vpc (no NAT_VPC_CIDRS or "
                                     "tuning)")


class _ParsingFinalizer:
    """Cyclic garbage whose finalizer parses Python, as asyncio's "Future exception was never
    retrieved" log does when it formats a traceback (Python 3.11 parses the failing line)."""

    def __init__(self, left: list[int]) -> None:
        self.itself = self
        self.left = left

    def __del__(self) -> None:
        ast.parse("x = (1 + 2) * 3")
        if self.left[0] > 0:  # the next one, for the next collection
            self.left[0] -= 1
            _ParsingFinalizer(self.left)


def test_the_agent_is_minified_while_finalizers_that_parse_are_collected() -> None:
    import gc

    from nat.design.userdata import minify_agent
    thresholds = gc.get_threshold()
    left = [10_000]
    gc.set_threshold(5)  # a collection every few allocations, inside the AST's construction
    try:
        _ParsingFinalizer(left)
        minified = minify_agent(AGENT_PATH.read_text())
    finally:
        gc.set_threshold(*thresholds)
        left[0] = 0
        gc.collect()
    assert "def main(" in minified and gc.isenabled()
