"""What user data carries: the bootstrap script without its comments, the agent without its
docstrings, both still the same programs."""

from __future__ import annotations

import ast
import base64
import gzip
import json
import os
import shutil
import subprocess
import time
from ipaddress import IPv4Network

import pytest

from nat import monitoring
from nat.tuning import TuningOverrides
from nat.userdata import (
    AGENT_PATH,
    BOOTSTRAP_SCRIPT_PATH,
    UserDataError,
    agent_script,
    bootstrap_script,
    encode_user_data,
    heredoc,
    render_user_data,
    strip_shell_comments,
)


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
    """Same statements, minus docstrings and function annotations."""
    def skeleton(tree: ast.AST) -> list[str]:
        return sorted(type(node).__name__ + ":" + getattr(node, "name", "")
                      for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign,
                                           ast.Call, ast.If, ast.For, ast.While, ast.Try)))
    assert skeleton(ast.parse(agent_script())) == skeleton(ast.parse(AGENT_PATH.read_text()))
    assert '"""' not in agent_script()


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
    agent = {"region": "us-east-1", "metrics": monitoring.agent_settings(
        "NatInstance", "p/s/nat", False, 300)} if metrics else None
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
