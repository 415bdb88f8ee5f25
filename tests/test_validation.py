"""nat/inputs/validation.py: each shared check, called directly, with the exact problem it reports.

The label function wraps a field in <> so a test also sees which name a check gave the field.
Stack config and component arguments are tested through these checks in test_config.py and
test_settings.py; here every branch of every check, including the edges of each range.
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from nat.inputs import validation
from nat.inputs.validation import ArgumentsError, Problems

ROOT = Path(__file__).resolve().parent.parent


def run(check: Callable[..., Any], *args: Any) -> tuple[Any, list[str]]:
    problems = Problems("heading", lambda field: f"<{field}>")
    result = check(problems, "f", *args)
    assert len(problems.fields) == len(problems.found)
    return result, problems.found


def refused(check: Callable[..., Any], *args: Any) -> list[str]:
    result, found = run(check, *args)
    assert result is None, result
    return found


def accepted(check: Callable[..., Any], *args: Any) -> Any:
    result, found = run(check, *args)
    assert found == []
    return result


def test_text() -> None:
    assert accepted(validation.text, "  a b ") == "a b"
    assert refused(validation.text, 5) == ["<f> = 5: not a string. Fix: give a string"]
    assert refused(validation.text, " \t") == [
        '<f> = "": empty value. Fix: give a value, or leave the field out']


def test_boolean() -> None:
    assert accepted(validation.boolean, True) is True
    assert accepted(validation.boolean, False) is False
    assert refused(validation.boolean, "true") == [
        '<f> = "true": not a boolean. Fix: use true or false']
    assert refused(validation.boolean, 1) == ["<f> = 1: not a boolean. Fix: use true or false"]


@pytest.mark.parametrize("value, number", [(1, 1), (10, 10), (4.0, 4), (7, 7)])
def test_integer_accepted(value: object, number: int) -> None:
    assert accepted(validation.integer, value, 1, 10) == number


@pytest.mark.parametrize("value, shown", [(True, "true"), ("3", '"3"'), (2.5, "2.5"),
                                          (None, "null"), ([3], "[3]")])
def test_integer_not_whole(value: object, shown: str) -> None:
    assert refused(validation.integer, value, 1, 10) == [
        f"<f> = {shown}: not a whole number. Fix: use an integer from 1 to 10"]


@pytest.mark.parametrize("value, shown", [(0, "0"), (11, "11"), (11.0, "11.0"), (-1, "-1")])
def test_integer_out_of_range(value: object, shown: str) -> None:
    assert refused(validation.integer, value, 1, 10) == [
        f"<f> = {shown}: out of range 1..10. Fix: use an integer from 1 to 10"]


def test_string_list() -> None:
    assert accepted(validation.string_list, [" a ", "b"]) == ["a", "b"]
    assert accepted(validation.string_list, ("a",)) == ["a"]
    assert accepted(validation.string_list, []) == []
    message = 'Fix: give a list, e.g. ["a", "b"]'
    assert refused(validation.string_list, "a") == [f'<f> = "a": not a list of strings. {message}']
    assert refused(validation.string_list, ["a", 1]) == [
        f'<f> = ["a", 1]: not a list of strings. {message}']


@pytest.mark.parametrize("value, low, high", [
    ("10.0.0.0/16", 16, 28), ("10.0.0.0/28", 16, 28), ("0.0.0.0/0", 0, 32),
    ("10.0.0.1/32", 0, 32), ("10.1.0.0/20", 16, 28)])
def test_network_accepted(value: str, low: int, high: int) -> None:
    assert accepted(validation.network, value, low, high) == IPv4Network(value)


@pytest.mark.parametrize("value, message", [
    ("ten", '<f> = "ten": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16'),
    ("10.0.0.0/33", '<f> = "10.0.0.0/33": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16'),
    ("10.0.0.0", '<f> = "10.0.0.0": no prefix length. Fix: write it with one, e.g. '
                 "10.0.0.0/32"),
    ("10.0.0.1/16", '<f> = "10.0.0.1/16": host bits are set. Fix: use the network address: '
                    "10.0.0.0/16"),
    ("10.0.0.0/15", '<f> = "10.0.0.0/15": prefix /15 is outside /16../28 that AWS accepts. '
                    "Fix: use a prefix from /16 to /28"),
    ("10.0.0.0/29", '<f> = "10.0.0.0/29": prefix /29 is outside /16../28 that AWS accepts. '
                    "Fix: use a prefix from /16 to /28"),
])
def test_network_refused(value: str, message: str) -> None:
    assert refused(validation.network, value, 16, 28) == [message]


def test_networks() -> None:
    assert accepted(validation.networks, ["10.0.0.0/24", "10.0.1.0/24"], 0, 32) == [
        IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24")]
    assert accepted(validation.networks, [], 0, 32) == []
    assert refused(validation.networks, "10.0.0.0/24", 0, 32) == [
        '<f> = "10.0.0.0/24": not a list of strings. Fix: give a list, e.g. ["a", "b"]']
    # every bad one is named, not only the first
    assert refused(validation.networks, ["10.0.0.0/24", "x", "10.0.0.0/8"], 16, 28) == [
        '<f> = "x": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16',
        '<f> = "10.0.0.0/8": prefix /8 is outside /16../28 that AWS accepts. Fix: use a '
        "prefix from /16 to /28"]


def test_endpoints_accepted() -> None:
    assert accepted(validation.endpoints, ["a.example.com:1"]) == ["a.example.com:1"]
    eight = [f"h{i}.example:65535" for i in range(8)]
    assert accepted(validation.endpoints, eight) == eight
    assert accepted(validation.endpoints, [" 192.0.2.1:443 "]) == ["192.0.2.1:443"]


@pytest.mark.parametrize("value, message", [
    ([], "<f> = []: 0 endpoints. Fix: list 1 to 8 host:port endpoints"),
    ([f"h{i}:1" for i in range(9)], "<f> = [" + ", ".join(f'"h{i}:1"' for i in range(9)) +
     "]: 9 endpoints. Fix: list 1 to 8 host:port endpoints"),
    ("h:1", '<f> = "h:1": not a list of strings. Fix: give a list, e.g. ["a", "b"]'),
])
def test_endpoints_count(value: object, message: str) -> None:
    assert refused(validation.endpoints, value) == [message]


def test_every_bad_endpoint_is_named() -> None:
    assert refused(validation.endpoints, ["a:0", "good.example:443", "b"]) == [
        '<f> = "a:0": not host:port. Fix: write it like checkip.amazonaws.com:443',
        '<f> = "b": not host:port. Fix: write it like checkip.amazonaws.com:443']


@pytest.mark.parametrize("item", ["host", "host:", "host:0", "host:65536", "host:4a3",
                                  ":443", "bad_host:443", "-host:443", "host:-1"])
def test_endpoint_shape(item: str) -> None:
    assert refused(validation.endpoints, ["good.example:443", item]) == [
        f'<f> = "{item}": not host:port. Fix: write it like checkip.amazonaws.com:443']


class Eventual:
    """Stands for an Output: a value known only at deploy time."""


@pytest.mark.parametrize("value", ["vpc-12345678", "vpc-0123456789abcdef0", Eventual()])
def test_resource_id_accepted(value: object) -> None:
    assert run(validation.resource_id, value, "vpc", "VPC") == (None, [])


@pytest.mark.parametrize("value, shown", [
    ("vpc-1234567", '"vpc-1234567"'), ("vpc-123456789", '"vpc-123456789"'),
    ("vpc-1234567g", '"vpc-1234567g"'), ("subnet-12345678", '"subnet-12345678"'),
    ("VPC-12345678", '"VPC-12345678"'), ("vpc-12345678 ", '"vpc-12345678 "'),
    (12345678, "12345678"), (None, "null")])
def test_resource_id_refused(value: object, shown: str) -> None:
    assert run(validation.resource_id, value, "vpc", "VPC") == (None, [
        f"<f> = {shown}: not a vpc- id. Fix: give the id of a VPC, like vpc-0123456789abcdef0"])


def test_is_known() -> None:
    known: tuple[object, ...] = ("a", 1, 1.5, True, [], (), {}, None)
    for value in known:
        assert validation.is_known(value)
    assert not validation.is_known(Eventual())


def test_overlaps_names_each_pair_once() -> None:
    problems = Problems("heading", lambda field: f"<{field}>")
    validation.overlaps(problems, [("a", IPv4Network("10.0.0.0/24")),
                                   ("b", IPv4Network("10.0.1.0/24")),
                                   ("c", IPv4Network("10.0.0.0/25")),
                                   ("d", IPv4Network("10.0.1.128/25"))])
    assert problems.found == [
        '<a> = "10.0.0.0/24": overlaps <c> 10.0.0.0/25. Fix: give every subnet its own range',
        '<b> = "10.0.1.0/24": overlaps <d> 10.0.1.128/25. Fix: give every subnet its own range']
    assert problems.fields == ["a", "b"]


def test_inside_any_of_several_containers() -> None:
    problems = Problems("heading", lambda field: f"<{field}>")
    containers = [IPv4Network("10.0.0.0/16"), IPv4Network("10.1.0.0/16")]
    validation.inside(problems, [("a", IPv4Network("10.1.2.0/24")),
                                 ("b", IPv4Network("10.0.0.0/16")),
                                 ("c", IPv4Network("10.2.0.0/24")),
                                 ("d", IPv4Network("10.0.0.0/15"))], containers, "vpc")
    assert problems.found == [
        '<c> = "10.2.0.0/24": outside the VPC (10.0.0.0/16, 10.1.0.0/16). Fix: use subnets '
        "inside <vpc>",
        '<d> = "10.0.0.0/15": outside the VPC (10.0.0.0/16, 10.1.0.0/16). Fix: use subnets '
        "inside <vpc>"]


def test_availability_zones() -> None:
    zones = ["us-east-1a", "us-gov-west-1b", "ap-southeast-2c"]
    assert accepted(validation.availability_zones, zones) == zones
    assert accepted(validation.availability_zones, ["eu-west-1a", "eu-west-1b"],
                    "eu-west-1") == ["eu-west-1a", "eu-west-1b"]
    assert refused(validation.availability_zones, "us-east-1a") == [
        '<f> = "us-east-1a": not a list of strings. Fix: give a list, e.g. ["a", "b"]']
    assert refused(validation.availability_zones, []) == [
        "<f> = []: no AZ listed. Fix: list at least one AZ, e.g. [us-east-1a]"]
    assert refused(validation.availability_zones, ["us-east-1a", "us-east-1"]) == [
        '<f> = ["us-east-1a", "us-east-1"]: \'us-east-1\' is not an AZ name. Fix: use names '
        "like us-east-1a"]
    assert refused(validation.availability_zones, ["US-EAST-1A"]) == [
        '<f> = ["US-EAST-1A"]: \'US-EAST-1A\' is not an AZ name. Fix: use names like us-east-1a']
    assert refused(validation.availability_zones, ["eu-west-1a", "us-east-1a"], "eu-west-1") == [
        '<f> = ["eu-west-1a", "us-east-1a"]: not all in region eu-west-1. Fix: use AZs of '
        "eu-west-1 or change aws:region"]
    assert refused(validation.availability_zones, ["eu-west-1a", "eu-west-1a"]) == [
        '<f> = ["eu-west-1a", "eu-west-1a"]: an AZ is listed twice. Fix: list each once']


def test_instance_type() -> None:
    assert accepted(validation.instance_type, " c7gn.medium ") == "c7gn.medium"
    assert refused(validation.instance_type, "t4g.nanoo") == [
        '<f> = "t4g.nanoo": not an EC2 instance type AWS has announced (botocore\'s list). Fix: '
        "did you mean t4g.nano or t3.nano or t2.nano? use an EC2 type such as t4g.nano, "
        "t4g.micro, c7gn.medium or c8gn.medium"]
    # a real type refused for what it is: no "did you mean"
    assert refused(validation.instance_type, "mac2.metal") == [
        '<f> = "mac2.metal": Mac instances need dedicated hosts and macOS, not Amazon Linux. '
        "Fix: use an EC2 type such as t4g.nano, t4g.micro, c7gn.medium or c8gn.medium"]
    assert refused(validation.instance_type, 3) == ["<f> = 3: not a string. Fix: give a string"]


def test_a_well_formed_type_botocore_does_not_know_is_a_warning_not_a_refusal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An older botocore than the type (the wheel's floor, or a type announced yesterday):
    AWS decides at deploy time; a typo in the size is still refused."""
    from nat.inputs import instance_types
    older = frozenset(t for t in instance_types.known_instance_types()
                      if not t.startswith("c8gn."))
    monkeypatch.setattr(instance_types, "known_instance_types", lambda: older)
    with pytest.warns(validation.InputWarning) as said:
        assert accepted(validation.instance_type, "c8gn.medium") == "c8gn.medium"
    [warning] = [str(w.message) for w in said]
    close = instance_types.close_instance_types("c8gn.medium")  # from this botocore's list
    assert len(close) == 3
    assert warning == (
        f'<f> = "c8gn.medium": not a type botocore {instance_types.botocore_version()} knows; '
        f"AWS decides when the NAT is launched. If it is a typo: did you mean {close[0]} or "
        f"{close[1]} or {close[2]}? If it is new, `pip install -U botocore` has it checked here")
    # nothing alike: no "did you mean"
    monkeypatch.setattr(instance_types, "close_instance_types", lambda name: [])
    monkeypatch.setattr(validation, "close_instance_types", lambda name: [])
    with pytest.warns(validation.InputWarning) as alone:
        accepted(validation.instance_type, "c8gn.medium")
    assert str(alone[0].message).endswith(
        "AWS decides when the NAT is launched. If it is new, `pip install -U botocore` has it "
        "checked here")
    for typo in ("c8gn.mediun", "c8gn", "c8gn.", "8gn.medium"):
        assert refused(validation.instance_type, typo)[0].startswith(
            f'<f> = "{typo}": not an EC2 instance type AWS has announced'), typo
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known type warns nothing
        assert accepted(validation.instance_type, "t4g.nano") == "t4g.nano"


def test_the_wheels_botocore_floor_knows_todays_types() -> None:
    """The floor (pyproject) is a botocore that lists c8gn (1.40, mid-2025): checked here by
    its version, since the installed botocore is newer."""
    floor = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"] if d.startswith("botocore"))
    assert floor == "botocore>=1.40"


def test_ssh_cidr() -> None:
    assert accepted(validation.ssh_cidr, "203.0.113.0/24", False, "anywhere") == \
        IPv4Network("203.0.113.0/24")
    assert accepted(validation.ssh_cidr, "10.0.0.0/8", False, "anywhere") == \
        IPv4Network("10.0.0.0/8")
    assert accepted(validation.ssh_cidr, "0.0.0.0/0", True, "anywhere") == \
        IPv4Network("0.0.0.0/0")
    assert refused(validation.ssh_cidr, "10.0.0.0/7", False, "anywhere") == [
        '<f> = "10.0.0.0/7": opens SSH to (nearly) the whole internet. Fix: use your '
        "network's public range, e.g. 198.51.100.0/24, or set <anywhere> to true if you "
        "really mean it"]
    assert refused(validation.ssh_cidr, "10.0.0.0/33", True, "anywhere") == [
        '<f> = "10.0.0.0/33": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16']
    assert refused(validation.ssh_cidr, ["10.0.0.0/8"], False, "anywhere") == [
        '<f> = ["10.0.0.0/8"]: not a string. Fix: give a string']


def test_key_name() -> None:
    assert accepted(validation.key_name, " my key ") == "my key"
    assert accepted(validation.key_name, "k" * 255) == "k" * 255
    message = ": not a valid key pair name. Fix: use the name of an existing EC2 key pair " \
        "(printable ASCII, 1-255 chars)"
    assert refused(validation.key_name, "k" * 256) == [f'<f> = "{"k" * 256}"{message}']
    assert refused(validation.key_name, "clé") == [f'<f> = "cl\\u00e9"{message}']
    assert refused(validation.key_name, "") == [
        '<f> = "": empty value. Fix: give a value, or leave the field out']


def test_ami_id_and_topic_arn_must_be_strings() -> None:
    for check in (validation.ami_id, validation.sns_topic_arn, validation.key_name):
        assert refused(check, 7) == ["<f> = 7: not a string. Fix: give a string"]


def test_ami_id() -> None:
    assert accepted(validation.ami_id, "ami-12345678") == "ami-12345678"
    assert accepted(validation.ami_id, "ami-0123456789abcdef0") == "ami-0123456789abcdef0"
    for bad in ("ami-1234567", "AMI-12345678", "ami-0123456789abcdef", "ami-1234567x"):
        assert refused(validation.ami_id, bad) == [
            f'<f> = "{bad}": not shaped like an AMI id. Fix: use ami- followed by 8 or 17 hex '
            "digits, e.g. ami-0123456789abcdef0, or leave it out to use the latest Amazon "
            "Linux 2023"]


def test_unknown_fields() -> None:
    problems = Problems("heading", validation.camel_case)
    validation.unknown_fields(problems, {"ssh_cidr": 1, "ssh_cdir": 2, "zzz": 3, "enable_test": 4},
                              ["ssh_cidr", "enable_ssm", "enable_test_rules"], "access.")
    assert problems.found == [
        "access.enableTest = 4: unknown field. Fix: did you mean access.enableTestRules or "
        "access.enableSsm? Remove it",
        "access.sshCdir = 2: unknown field. Fix: did you mean access.sshCidr? Remove it",
        "access.zzz = 3: unknown field. Fix: known fields: enableSsm, enableTestRules, "
        "sshCidr. Remove it"]
    assert problems.fields == ["access.enable_test", "access.ssh_cdir", "access.zzz"]


def test_unknown_fields_in_a_python_callers_spelling() -> None:
    """A Python caller is told its own keys; the schema's camelCase written in Python is
    pointed at the Python key."""
    problems = Problems("heading", validation.python_spelling)
    validation.unknown_fields(problems, {"sshCidr": 1, "ssh_cdir": 2, "zzz": 3},
                              ["ssh_cidr", "enable_ssm"], "access.")
    assert problems.found == [
        "access.sshCidr = 1: unknown field. Fix: did you mean access.ssh_cidr? Remove it",
        "access.ssh_cdir = 2: unknown field. Fix: did you mean access.ssh_cidr? Remove it",
        "access.zzz = 3: unknown field. Fix: known fields: enable_ssm, ssh_cidr. Remove it"]
    assert validation.CALLER_SPELLING.get() is validation.python_spelling  # the default
    # the schema's spelling of a field names that one field, however many look alike; a
    # camelCase key that is no field's gets the list, as any other
    for label, expected in (
            (validation.python_spelling, [
                "access.fooBar = 2: unknown field. Fix: known fields: enable_ssm, ssh_cidr, "
                "ssh_cidrs. Remove it",
                "access.sshCidr = 1: unknown field. Fix: did you mean access.ssh_cidr? Remove it"]),
            (validation.camel_case, [  # a camelCase caller: its own key, nothing to redirect
                "access.fooBar = 2: unknown field. Fix: known fields: enableSsm, sshCidr, "
                "sshCidrs. Remove it",
                "access.sshCidr = 1: unknown field. Fix: did you mean access.sshCidr or "
                "access.sshCidrs? Remove it"])):
        alike = Problems("heading", label)
        validation.unknown_fields(alike, {"sshCidr": 1, "fooBar": 2},
                                  ["ssh_cidr", "ssh_cidrs", "enable_ssm"], "access.")
        assert alike.found == expected
    assert validation.snake_case("allowSshFromAnywhere") == "allow_ssh_from_anywhere"
    assert validation.snake_case("instance.maxEntries") == "instance.max_entries"
    assert validation.snake_case("vpc") == "vpc"
    assert validation.python_spelling("access.ssh_cidr") == "access.ssh_cidr"


def test_unknown_field_hints_at_most_two_names() -> None:
    problems = Problems("heading", validation.camel_case)
    validation.unknown_fields(problems, {"alarm": 1}, ["alarms", "alarm_x", "alarm_yy"])
    assert problems.found == [
        "alarm = 1: unknown field. Fix: did you mean alarms or alarmX? Remove it"]


def test_metrics_namespace() -> None:
    assert accepted(validation.metrics_namespace, "Nat/Prod-1_a.b#c:d") == "Nat/Prod-1_a.b#c:d"
    assert accepted(validation.metrics_namespace, "n" * 255) == "n" * 255
    not_namespace = ": not a CloudWatch namespace. Fix: use 1 to 255 letters, digits and . - _ " \
        "/ # :, e.g. NatInstance"
    assert refused(validation.metrics_namespace, "n" * 256) == [
        f'<f> = "{"n" * 256}"{not_namespace}']
    assert refused(validation.metrics_namespace, "my nat") == [f'<f> = "my nat"{not_namespace}']
    assert refused(validation.metrics_namespace, "AWS/NATGateway") == [
        '<f> = "AWS/NATGateway": AWS/ namespaces are AWS\'s own. Fix: use another, e.g. '
        "NatInstance"]
    assert accepted(validation.metrics_namespace, "AWSish") == "AWSish"
    assert refused(validation.metrics_namespace, 1) == ["<f> = 1: not a string. Fix: give a string"]


@pytest.mark.parametrize("arn", ["arn:aws:sns:us-east-1:123456789012:nat-alarms",
                                 "arn:aws-us-gov:sns:us-gov-west-1:123456789012:a_b",
                                 "arn:aws:sns:eu-west-1:123456789012:t.fifo"])
def test_sns_topic_arn_accepted(arn: str) -> None:
    assert accepted(validation.sns_topic_arn, arn) == arn


@pytest.mark.parametrize("arn", ["arn:aws:sns:us-east-1:12345678901:t",
                                 "arn:aws:sqs:us-east-1:123456789012:t",
                                 "arn:aws:sns:us-east-1:123456789012:",
                                 "arn:aws:sns:us-east-1:123456789012:a.b"])
def test_sns_topic_arn_refused(arn: str) -> None:
    assert refused(validation.sns_topic_arn, arn) == [
        f'<f> = "{arn}": not an SNS topic ARN. Fix: give one like '
        "arn:aws:sns:us-east-1:123456789012:nat-alarms"]


def test_shown() -> None:
    assert validation.shown({"a": [1, None]}) == '{"a": [1, null]}'
    assert validation.shown(Eventual()) == "<Eventual>"
    assert validation.shown({1, 2}) == "<set>"


def test_camel_case() -> None:
    assert validation.camel_case("access.ssh_cidr") == "access.sshCidr"
    assert validation.camel_case("allow_ssh_from_anywhere") == "allowSshFromAnywhere"
    assert validation.camel_case("vpc") == "vpc"
    assert validation.camel_case("high_availability.failback_after_seconds") == \
        "highAvailability.failbackAfterSeconds"


def test_problems_and_the_error() -> None:
    problems = Problems("bad stack", lambda field: field.upper())
    problems.raise_if_any()  # nothing found: nothing raised
    problems.fail_field("a", "missing", "give it")
    with pytest.raises(ArgumentsError) as one:
        problems.raise_if_any()
    assert str(one.value) == "bad stack:\n  - A: missing. Fix: give it"
    problems.fail("b", [1], "why", "fix")
    error = problems.error()
    assert str(error) == "bad stack (2 problems):\n  - A: missing. Fix: give it\n" \
        "  - B = [1]: why. Fix: fix"
    assert (error.heading, error.problems, error.fields) == (
        "bad stack", ["A: missing. Fix: give it", "B = [1]: why. Fix: fix"], ["a", "b"])
    assert ArgumentsError("h", ["x", "y"]).fields == ["", ""]
