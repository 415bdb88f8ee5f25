"""Checks shared by every way in: stack config, and the components' arguments from any language.

Pure logic. Each check names the field it found wrong through `Problems`, which knows how the
caller spells that field (`nat-instance-vpc:sshCidr` in stack config, `access.sshCidr` in a
component's arguments), so one check gives each caller a message in its own terms. Problems
are collected, not raised one by one: a bad stack or call is reported whole, then refused
before anything is registered.
"""

from __future__ import annotations

import ipaddress
import json
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from ipaddress import IPv4Network
from typing import Any

from nat.inputs.instance_types import (
    botocore_version,
    close_instance_types,
    instance_type_problem,
    is_announced,
    known_instance_types,
)

# AWS accepts VPC and subnet CIDR blocks from /16 to /28.
AWS_MIN_PREFIX = 16
AWS_MAX_PREFIX = 28
# An SSH source wider than this is "the internet" for our purposes.
WIDEST_SAFE_SSH_PREFIX = 8
AMI_ID_PATTERN = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
AZ_NAME_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
KEY_NAME_PATTERN = re.compile(r"^[\x20-\x7e]{1,255}$")
# The shape of the ids a caller passes: prefix, then 8 or 17 hex digits.
ID_PATTERN = "^{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})$"


class InputWarning(UserWarning):
    """A value accepted that may still be wrong (AWS decides): shown, never refused."""


class ArgumentsError(ValueError):
    """Every problem found in one stack's config or one component's arguments.

    `fields` holds, for each problem, the field it is about (`access.ssh_cidr`), for callers
    that report problems per property (the multi-language provider).
    """

    def __init__(self, heading: str, problems: Sequence[str],
                 fields: Sequence[str] | None = None):
        self.heading = heading
        self.problems = list(problems)
        self.fields = list(fields) if fields is not None else [""] * len(self.problems)
        count = f" ({len(self.problems)} problems)" if len(self.problems) > 1 else ""
        super().__init__(f"{heading}{count}:\n" + "\n".join(f"  - {p}" for p in self.problems))


def camel_case(field: str) -> str:
    """`access.ssh_cidr` → `access.sshCidr`: how the package schema spells a field."""
    head, *rest = field.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def snake_case(field: str) -> str:
    """`instanceType` → `instance_type`: how a Python caller spells a schema field."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field).lower()


def python_spelling(field: str) -> str:
    """A field as a Python caller writes it: the args' own key, `access.ssh_cidr`."""
    return field


# How the caller of a component spells its fields: Python programs write the TypedDict keys
# (snake_case); the multi-language provider sets camelCase (the schema's) while it builds a
# component for a TypeScript, Go, C# or YAML program.
CALLER_SPELLING: ContextVar[Callable[[str], str]] = ContextVar(
    "caller_spelling", default=python_spelling)


class Problems:
    """Collects problems; `label(field)` gives the caller's own name for a field id."""

    def __init__(self, heading: str, label: Callable[[str], str]):
        self.heading = heading
        self.label = label
        self.found: list[str] = []
        self.fields: list[str] = []

    def fail(self, field: str, value: object, why: str, fix: str) -> None:
        self.found.append(f"{self.label(field)} = {shown(value)}: {why}. Fix: {fix}")
        self.fields.append(field)

    def fail_field(self, field: str, why: str, fix: str) -> None:
        """A problem with a field as a whole (missing, or a mismatch between fields)."""
        self.found.append(f"{self.label(field)}: {why}. Fix: {fix}")
        self.fields.append(field)

    def error(self) -> ArgumentsError:
        return ArgumentsError(self.heading, self.found, self.fields)

    def raise_if_any(self) -> None:
        if self.found:
            raise self.error()


def shown(value: object) -> str:
    """A value as the user wrote it: JSON for plain data, a placeholder for anything else."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return f"<{type(value).__name__}>"


# --- plain values --------------------------------------------------------------------------------
def is_known(value: object) -> bool:
    """True for a plain value; False for an Output or other eventual value we cannot check now."""
    return isinstance(value, (str, int, float, bool, list, tuple, dict)) or value is None


def text(problems: Problems, field: str, value: object) -> str | None:
    """A non-empty string, stripped; None (and a problem) otherwise."""
    if not isinstance(value, str):
        problems.fail(field, value, "not a string", "give a string")
        return None
    value = value.strip()
    if not value:
        problems.fail(field, value, "empty value", "give a value, or leave the field out")
        return None
    return value


def boolean(problems: Problems, field: str, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    problems.fail(field, value, "not a boolean", "use true or false")
    return None


def integer(problems: Problems, field: str, value: object, low: int, high: int) -> int | None:
    """A whole number in low..high. Numbers from other languages arrive as floats (24.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not value.is_integer()):
        problems.fail(field, value, "not a whole number", f"use an integer from {low} to {high}")
        return None
    number = int(value)
    if not low <= number <= high:
        problems.fail(field, value, f"out of range {low}..{high}",
                      f"use an integer from {low} to {high}")
        return None
    return number


def string_list(problems: Problems, field: str, value: object) -> list[str] | None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(i, str) for i in value):
        problems.fail(field, value, "not a list of strings", 'give a list, e.g. ["a", "b"]')
        return None
    return [item.strip() for item in value]


def network(problems: Problems, field: str, value: str, low: int,
            high: int) -> IPv4Network | None:
    """An IPv4 CIDR written as its network address with a prefix length in low..high."""
    try:
        parsed = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        problems.fail(field, value, "not an IPv4 CIDR", "write it like 10.0.0.0/16")
        return None
    if "/" not in value:
        problems.fail(field, value, "no prefix length", f"write it with one, e.g. {parsed}")
        return None
    if str(parsed.network_address) != value.split("/")[0]:
        problems.fail(field, value, "host bits are set", f"use the network address: {parsed}")
        return None
    if not low <= parsed.prefixlen <= high:
        problems.fail(field, value, f"prefix /{parsed.prefixlen} is outside /{low}../{high}"
                      " that AWS accepts", f"use a prefix from /{low} to /{high}")
        return None
    return parsed


def networks(problems: Problems, field: str, value: object, low: int,
             high: int) -> list[IPv4Network] | None:
    """A list of CIDRs; None (with a problem for each bad one) if any is bad."""
    items = string_list(problems, field, value)
    if items is None:
        return None
    parsed = [network(problems, field, item, low, high) for item in items]
    if any(n is None for n in parsed):
        return None
    return [n for n in parsed if n is not None]


HOSTNAME_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)"
                              r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", re.I)


def endpoints(problems: Problems, field: str, value: object) -> list[str] | None:
    """host:port endpoints (a DNS name or an IPv4 address, a port 1-65535), 1 to 8 of them."""
    items = string_list(problems, field, value)
    if items is None:
        return None
    if not 1 <= len(items) <= 8:
        problems.fail(field, items, f"{len(items)} endpoints", "list 1 to 8 host:port endpoints")
        return None
    good = []
    for item in items:
        host, colon, port = item.rpartition(":")
        if not colon or not HOSTNAME_PATTERN.match(host) or not port.isdigit() or \
                not 1 <= int(port) <= 65535:
            problems.fail(field, item, "not host:port", "write it like checkip.amazonaws.com:443")
            continue
        good.append(item)
    return good if len(good) == len(items) else None


def allocation_ids(problems: Problems, field: str, value: object) -> list[str] | None:
    """Elastic IP allocation ids (eipalloc-…), each once."""
    items = string_list(problems, field, value)
    if items is None:
        return None
    good = []
    for item in items:
        if not re.match(ID_PATTERN.format(prefix="eipalloc"), item):
            problems.fail(field, item, "not an Elastic IP allocation id",
                          "give allocation ids like eipalloc-0123456789abcdef0 (`aws ec2 "
                          "describe-addresses` lists them)")
        elif item in good:
            problems.fail(field, item, "given twice", "give each Elastic IP once")
        else:
            good.append(item)
    return good if len(good) == len(items) else None


def resource_id(problems: Problems, field: str, value: object, prefix: str,
                example: str) -> None:
    """An id the caller gives as a plain string must have its kind's shape (vpc-, subnet-…).

    Eventual values (Outputs of resources made in the same program) are checked by AWS.
    """
    if not is_known(value):
        return
    if not isinstance(value, str) or not re.match(ID_PATTERN.format(prefix=prefix), value):
        problems.fail(field, value, f"not a {prefix}- id",
                      f"give the id of a {example}, like {prefix}-0123456789abcdef0")


def overlaps(problems: Problems, labelled: Sequence[tuple[str, IPv4Network]]) -> None:
    """Each CIDR must have its own range."""
    for index, (field, subnet) in enumerate(labelled):
        for other_field, other in labelled[index + 1:]:
            if subnet.overlaps(other):
                problems.fail(field, str(subnet), f"overlaps {problems.label(other_field)} "
                              f"{other}", "give every subnet its own range")


def inside(problems: Problems, labelled: Iterable[tuple[str, IPv4Network]],
           containers: Sequence[IPv4Network], container_field: str) -> None:
    for field, subnet in labelled:
        if not any(subnet.subnet_of(c) for c in containers):
            shown_containers = ", ".join(str(c) for c in containers)
            problems.fail(field, str(subnet), f"outside the VPC ({shown_containers})",
                          f"use subnets inside {problems.label(container_field)}")


# --- domain values -------------------------------------------------------------------------------
def availability_zones(problems: Problems, field: str, value: object,
                       region: str | None = None) -> list[str] | None:
    zones = string_list(problems, field, value)
    if zones is None:
        return None
    if not zones:
        problems.fail(field, zones, "no AZ listed", "list at least one AZ, e.g. [us-east-1a]")
        return None
    bad = [z for z in zones if not AZ_NAME_PATTERN.match(z)]
    if bad:
        problems.fail(field, zones, f"{bad[0]!r} is not an AZ name", "use names like us-east-1a")
        return None
    if region and any(not z.startswith(region) for z in zones):
        problems.fail(field, zones, f"not all in region {region}",
                      f"use AZs of {region} or change aws:region")
        return None
    if len(set(zones)) != len(zones):
        problems.fail(field, zones, "an AZ is listed twice", "list each once")
        return None
    return zones


def instance_type(problems: Problems, field: str, value: object) -> str | None:
    name = text(problems, field, value)
    if name is None:
        return None
    why = instance_type_problem(name)
    if why is None:
        if not is_announced(name):
            close = close_instance_types(name)
            hint = f" If it is a typo: did you mean {' or '.join(close)}?" if close else ""
            warnings.warn(InputWarning(
                f"{problems.label(field)} = {shown(name)}: not a type botocore "
                f"{botocore_version()} knows; AWS decides when the NAT is launched.{hint} "
                "If it is new, `pip install -U botocore` has it checked here"), stacklevel=2)
        return name
    # a typo gets the nearest names; a real type refused for what it is gets none
    close = [] if name in known_instance_types() else close_instance_types(name)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    problems.fail(field, name, why, f"{hint}use an EC2 type such as t4g.nano, t4g.micro, "
                  "c7gn.medium or c8gn.medium")
    return None


def ssh_cidr(problems: Problems, field: str, value: object,
             allow_anywhere: bool, allow_field: str) -> IPv4Network | None:
    cidr_text = text(problems, field, value)
    if cidr_text is None:
        return None
    cidr = network(problems, field, cidr_text, 0, 32)
    if cidr is not None and cidr.prefixlen < WIDEST_SAFE_SSH_PREFIX and not allow_anywhere:
        problems.fail(field, cidr_text, "opens SSH to (nearly) the whole internet",
                      "use your network's public range, e.g. 198.51.100.0/24, or set "
                      f"{problems.label(allow_field)} to true if you really mean it")
        return None
    return cidr


def key_name(problems: Problems, field: str, value: object) -> str | None:
    name = text(problems, field, value)
    if name is not None and not KEY_NAME_PATTERN.match(name):
        problems.fail(field, name, "not a valid key pair name",
                      "use the name of an existing EC2 key pair (printable ASCII, 1-255 chars)")
        return None
    return name


def ami_id(problems: Problems, field: str, value: object) -> str | None:
    image = text(problems, field, value)
    if image is not None and not AMI_ID_PATTERN.match(image):
        problems.fail(field, image, "not shaped like an AMI id",
                      "use ami- followed by 8 or 17 hex digits, e.g. ami-0123456789abcdef0, or "
                      "leave it out to use the latest Amazon Linux 2023")
        return None
    return image


def unknown_fields(problems: Problems, given: dict[str, Any], known: Iterable[str],
                   prefix: str = "") -> None:
    """Fields a caller passed that the component does not have (a typo, usually)."""
    import difflib
    names = sorted(known)
    for key in sorted(set(given) - set(names)):
        close = difflib.get_close_matches(key, names, n=2)
        if snake_case(key) in names and problems.label(prefix + snake_case(key)) != \
                problems.label(prefix + key):
            close = [snake_case(key)]  # the schema's spelling, from Python
        hint = "did you mean " + " or ".join(problems.label(prefix + c) for c in close) + \
            "?" if close else (
            "known fields: " + ", ".join(problems.label(n) for n in names) + ".")
        problems.fail(prefix + key, given[key], "unknown field", f"{hint} Remove it")


def metrics_namespace(problems: Problems, field: str, value: object) -> str | None:
    """A CloudWatch namespace of our own: 1-255 of [0-9A-Za-z.-_/#:], not AWS's."""
    name = text(problems, field, value)
    if name is None:
        return None
    if not re.match(r"^[0-9A-Za-z.\-_/#:]{1,255}$", name):
        problems.fail(field, name, "not a CloudWatch namespace", "use 1 to 255 letters, digits "
                      "and . - _ / # :, e.g. NatInstance")
        return None
    if name.startswith("AWS/"):
        problems.fail(field, name, "AWS/ namespaces are AWS's own", "use another, e.g. "
                      "NatInstance")
        return None
    return name


SNS_TOPIC_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


def sns_topic_arn(problems: Problems, field: str, value: object) -> str | None:
    arn = text(problems, field, value)
    if arn is not None and not SNS_TOPIC_ARN_PATTERN.match(arn):
        problems.fail(field, arn, "not an SNS topic ARN", "give one like "
                      "arn:aws:sns:us-east-1:123456789012:nat-alarms")
        return None
    return arn

