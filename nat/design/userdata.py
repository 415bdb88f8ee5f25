"""User data for a NAT instance: the package's bootstrap script, embedded verbatim.

Pure logic. The data-path tests run the same file (`BOOTSTRAP_SCRIPT_PATH`) in network
namespaces, so what is tested is what boots.
"""

from __future__ import annotations

import base64
import gc
import gzip
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import python_minifier

from nat.inputs.tuning import TuningOverrides
from nat.instance.agent import Settings

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"  # what runs on the NAT
BOOTSTRAP_SCRIPT_PATH = INSTANCE_DIR / "nat-bootstrap.sh"
AGENT_PATH = INSTANCE_DIR / "agent.py"
LOADER_PATH = INSTANCE_DIR / "loader.py"
AGENT_OBJECT_PATH = "/etc/nat-instance/agent-source.json"
EC2_USER_DATA_LIMIT = 16384  # bytes, before base64
_SCRIPT_END = "NAT_BOOTSTRAP_SCRIPT_END"
_AGENT_SETTINGS_END = "NAT_AGENT_SETTINGS_END"
AGENT_SETTINGS_PATH = "/etc/nat-instance/agent.json"


class UserDataError(ValueError):
    pass


def strip_shell_comments(text: str) -> str:
    """A bash script without its whole-line comments (heredoc bodies kept verbatim): what
    user data carries, so the script and the agent fit EC2's 16 KB together."""
    lines = text.splitlines()
    kept, marker = lines[:1], None  # the shebang stays
    for line in lines[1:]:
        if marker is not None:
            kept.append(line)
            if line.strip() == marker:
                marker = None
            continue
        heredoc_start = re.search(r"<<-?\s*'?([A-Za-z_][A-Za-z0-9_]*)'?\s*$", line)
        if heredoc_start:
            marker = heredoc_start.group(1)
        if not line.lstrip().startswith("#"):
            kept.append(line)
    return "\n".join(kept) + "\n"


def bootstrap_script() -> str:
    """nat-bootstrap.sh as user data carries it (and the data-path tests run it)."""
    return strip_shell_comments(BOOTSTRAP_SCRIPT_PATH.read_text())


HANDOVER_SECTION = re.compile(r"^# HANDOVER-BEGIN.*?^# HANDOVER-END\n", re.M | re.S)


def agent_script(handover: bool = False) -> str:
    """The agent as user data carries it: nat/instance/agent.py minified (python-minifier:
    no comments, docstrings or annotations, local names shortened; module-level names, and
    so every name a log line or a test reads, kept), so that it fits EC2's 16 KB of user
    data beside the bootstrap script. The HA test bed runs this text, taken from the
    rendered user data."""
    source = AGENT_PATH.read_text()
    if not handover:  # keepConnections' code (conntrackd, address moves) only where it runs
        source = HANDOVER_SECTION.sub("", source)
    return _minified(source)


def _minified(source: str) -> str:
    with _MINIFY_LOCK:  # one minification per text and process (the agent takes ~0.7 s)
        if source not in _MINIFIED:
            _MINIFIED[source] = minify_agent(source)
        return _MINIFIED[source]


_MINIFIED: dict[str, str] = {}
_MINIFY_LOCK = threading.Lock()


def minify_agent(source: str) -> str:
    """`source` minified, with the header user data shows.

    The garbage collector is held off meanwhile: CPython 3.11's ast.parse fails with
    "AST constructor recursion depth mismatch" (gh-106905) when a finalizer run by a
    collection inside it parses too, e.g. asyncio logging a failed future's traceback.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        minified = python_minifier.minify(
            source, remove_annotations=True, remove_literal_statements=True,
            rename_locals=True, rename_globals=False, hoist_literals=False,
            remove_asserts=False, remove_debug=False)
    finally:
        if collecting:
            gc.enable()
    return "#!/usr/bin/env python3\n# nat-agent (nat-instance-vpc): see nat/instance/agent.py\n" + \
        minified + "\n"


def heredoc(path: str, text: str, marker: str, mode: str) -> str:
    """Shell lines writing `text` to `path` verbatim (quoted heredoc: nothing expands)."""
    if any(line.strip() == marker for line in text.splitlines()):
        raise UserDataError(f"the text for {path} contains the heredoc marker {marker}")
    return (f"cat >{path} <<'{marker}'\n{text.rstrip()}\n{marker}\n"
            f"chmod {mode} {path}\n")


@dataclass(frozen=True)
class AgentObject:
    """Where the agent is fetched from when user data carries the loader instead (with
    keepConnections the agent does not fit beside the bootstrap script): an S3 object, and
    the agent's SHA-256 the loader checks it against."""

    bucket: str
    key: str
    region: str
    sha256: str

    def to_document(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "region": self.region,
                "sha256": self.sha256}


def agent_object_key(text: str) -> tuple[str, str]:
    """(S3 key, SHA-256) of an agent text: a new agent is a new object, never an overwrite."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"nat-agent/{digest[:16]}.py", digest


def loader_script() -> str:
    """nat/instance/loader.py minified, as user data carries it."""
    return _minified(LOADER_PATH.read_text()).replace(
        "# nat-agent (nat-instance-vpc): see nat/instance/agent.py",
        "# nat-agent loader (nat-instance-vpc): see nat/instance/loader.py")


def render_user_data(vpc_cidrs: Sequence[IPv4Network], tuning: TuningOverrides,
                     agent_settings: Settings | None = None,
                     agent_object: AgentObject | None = None) -> str:
    """A bash user-data script that installs nat-bootstrap.sh and runs `install`.

    The settings go to /etc/nat-instance so the boot unit re-applies the same ones. With
    `agent_settings` (high availability) it also installs the agent and its settings, which
    `install` starts once the NAT rules are in place; with `agent_object`, the loader that
    fetches the agent from there instead of the agent.
    """
    tuning_lines = "".join(line + "\n" for line in tuning.environment_lines())
    cidrs = " ".join(str(c) for c in vpc_cidrs)
    program = "" if agent_settings is None else heredoc(
        "/usr/local/sbin/nat-agent", agent_script(agent_settings.handover), "NAT_AGENT_END",
        "0755") if agent_object is None else (
        heredoc(AGENT_OBJECT_PATH, json.dumps(agent_object.to_document(), sort_keys=True),
                "NAT_AGENT_OBJECT_END", "0644") +
        heredoc("/usr/local/sbin/nat-agent", loader_script(), "NAT_AGENT_END", "0755"))
    agent = "" if agent_settings is None else (
        heredoc(AGENT_SETTINGS_PATH, json.dumps(agent_settings.to_document(), sort_keys=True),
                _AGENT_SETTINGS_END, "0644") + program)
    return (
        "#!/bin/bash\n"
        "# nat-instance-vpc: install the NAT bootstrap script and run it (see its header).\n"
        "set -euo pipefail\n"
        "install -d -m 0755 /etc/nat-instance /usr/local/sbin\n"
        f"echo 'NAT_VPC_CIDRS=\"{cidrs}\"' >/etc/nat-instance/nat.env\n"
        "cat >/etc/nat-instance/tuning.env <<'NAT_TUNING_END'\n"
        f"{tuning_lines}"
        "NAT_TUNING_END\n"
        f"{agent}"
        f"{heredoc('/usr/local/sbin/nat-bootstrap.sh', bootstrap_script(), _SCRIPT_END, '0755')}"
        "exec /usr/local/sbin/nat-bootstrap.sh install\n"
    )


@dataclass(frozen=True)
class UserDataContents:
    """What `render_user_data` put into a user-data script, read back."""

    vpc_cidrs: tuple[IPv4Network, ...]
    tuning: tuple[str, ...]  # NAME=value lines of tuning.env
    agent: Settings | None


def _between(text: str, start: str, end: str) -> str | None:
    """What follows the first `start` up to the next `end`; None without `start`."""
    _, found, after = text.partition(start)
    return after.partition(end)[0] if found else None


def parse_user_data(user_data: str) -> UserDataContents:
    """The inverse of `render_user_data` (the plan and the tests read what a NAT is told).

    Raises UserDataError for a text that render_user_data did not write."""
    cidrs = _between(user_data, "echo 'NAT_VPC_CIDRS=\"", "\"'")
    tuning = _between(user_data, "<<'NAT_TUNING_END'\n", "NAT_TUNING_END\n")
    if cidrs is None or tuning is None:
        raise UserDataError("not user data of nat-instance-vpc (no NAT_VPC_CIDRS or tuning)")
    agent = _between(user_data, f"cat >{AGENT_SETTINGS_PATH} <<'{_AGENT_SETTINGS_END}'\n",
                     f"\n{_AGENT_SETTINGS_END}\n")
    return UserDataContents(tuple(IPv4Network(c) for c in cidrs.split()),
                            tuple(tuning.splitlines()),
                            None if agent is None else Settings.from_document(json.loads(agent)))


def release_of(user_data: str, image_id: str, instance_type: str, key_name: str | None) -> str:
    """A fingerprint of what a launch template launches (user data without its release,
    AMI, type, key): the agents roll out a new one AZ by AZ when their group's differs."""
    material = json.dumps([user_data, image_id, instance_type, key_name or ""])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def compress_user_data(user_data: str) -> bytes:
    """gzip, which cloud-init unpacks: the script, comments and all, in a quarter of 16 KB.

    mtime=0 makes the bytes depend on the text alone: a new timestamp at every `pulumi up`
    would otherwise replace every NAT. boto3's run_instances takes these bytes (it base64s
    them itself).
    """
    packed = gzip.compress(user_data.encode(), compresslevel=9, mtime=0)
    if len(packed) > EC2_USER_DATA_LIMIT:
        raise UserDataError(f"user data is {len(packed)} bytes compressed, over EC2's "
                            f"{EC2_USER_DATA_LIMIT}")
    return packed


def encode_user_data(user_data: str) -> str:
    """Compressed, then base64, as Pulumi's `user_data_base64` takes it."""
    return base64.b64encode(compress_user_data(user_data)).decode()


def decode_user_data(encoded: str) -> str:
    return gzip.decompress(base64.b64decode(encoded)).decode()
