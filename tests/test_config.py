"""Direct tests of the pure config, CIDR, rules and user-data functions."""

from __future__ import annotations

import base64
from ipaddress import IPv4Network

import pytest

from nat.ami import al2023_ssm_parameter
from nat.config import (
    ConfigError,
    derive_subnet_cidrs,
    instance_architecture,
    parse_settings,
)
from nat.program import choose_availability_zones, stack_region
from nat.rules import expand_rules
from nat.tuning import TuningOverrides
from nat.userdata import (
    EC2_USER_DATA_LIMIT,
    decode_user_data,
    encode_user_data,
    render_user_data,
)


def problems(raw: dict[str, str], region: str | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_settings(raw, region=region)
    return raised.value.problems


def test_defaults() -> None:
    settings = parse_settings({})
    assert settings.az_count == 2
    assert settings.vpc_cidr == IPv4Network("10.0.0.0/16")
    assert [str(c) for c in settings.public_subnet_cidrs] == ["10.0.0.0/20", "10.0.16.0/20"]
    assert [str(c) for c in settings.private_subnet_cidrs] == ["10.0.128.0/20", "10.0.144.0/20"]
    assert settings.nat_instance_type == "t4g.nano" and settings.architecture == "arm64"
    assert settings.ssh_cidr is None and settings.key_name is None and settings.ami_id is None
    assert settings.use_elastic_ip and settings.enable_ssm
    assert not settings.enable_test_rules and not settings.single_nat
    assert settings.nat_count == 2


def test_unset_sentinels_from_pulumi_yaml_defaults_mean_not_set() -> None:
    settings = parse_settings({"sshCidr": "", "amiId": "", "keyName": "", "publicSubnetCidrs": "[]",
                               "availabilityZones": "[]", "conntrackMax": "0"})
    assert settings.ssh_cidr is None and settings.ami_id is None and settings.key_name is None
    assert settings.availability_zones is None
    assert settings.tuning.values == {}


def test_empty_value_for_a_key_with_a_default_is_an_error() -> None:
    assert problems({"vpcCidr": ""}) == [
        'nat-instance-vpc:vpcCidr = "": empty value. Fix: set a value or remove it: '
        "`pulumi config rm vpcCidr`"]


@pytest.mark.parametrize(("vpc", "count", "public", "private"), [
    ("10.0.0.0/16", 1, ["10.0.0.0/20"], ["10.0.128.0/20"]),
    ("172.16.0.0/20", 3, ["172.16.0.0/24", "172.16.1.0/24", "172.16.2.0/24"],
     ["172.16.8.0/24", "172.16.9.0/24", "172.16.10.0/24"]),
    ("192.168.10.0/24", 2, ["192.168.10.0/28", "192.168.10.16/28"],
     ["192.168.10.128/28", "192.168.10.144/28"]),
])
def test_derive_subnet_cidrs(vpc: str, count: int, public: list[str], private: list[str]) -> None:
    derived_public, derived_private = derive_subnet_cidrs(IPv4Network(vpc), count)
    assert [str(c) for c in derived_public] == public
    assert [str(c) for c in derived_private] == private


def test_lists_accept_json_and_comma_separated() -> None:
    a = parse_settings({"azCount": "2", "publicSubnetCidrs": '["10.0.0.0/24", "10.0.1.0/24"]'})
    b = parse_settings({"azCount": "2", "publicSubnetCidrs": "10.0.0.0/24, 10.0.1.0/24"})
    assert a.public_subnet_cidrs == b.public_subnet_cidrs
    assert [str(c) for c in a.private_subnet_cidrs] == ["10.0.128.0/20", "10.0.144.0/20"]


@pytest.mark.parametrize(("instance_type", "architecture"), [
    ("t4g.nano", "arm64"), ("c7gn.16xlarge", "arm64"), ("m6g.metal", "arm64"),
    ("t3.micro", "x86_64"), ("t3a.small", "x86_64"), ("c6in.xlarge", "x86_64"),
    ("t4g", None), ("t4g.tiny", None), ("z1d.large", None), ("", None), ("T4G.NANO", None)])
def test_instance_architecture(instance_type: str, architecture: str | None) -> None:
    assert instance_architecture(instance_type) == architecture


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"vpcCidr": "10.0.0.0"}, 'vpcCidr = "10.0.0.0": no prefix length'),
    ({"vpcCidr": "10.0.0.1/16"}, "host bits are set. Fix: use the network address: 10.0.0.0/16"),
    ({"vpcCidr": "10.0.0.0/8"}, "prefix /8 is outside /16../28"),
    ({"vpcCidr": "banana"}, 'vpcCidr = "banana": not an IPv4 CIDR'),
    ({"vpcCidr": "10.0.0.0/25"}, "too small to split into subnets of /28 or larger. Fix: use a "
                                 "VPC of /24 or larger, or set publicSubnetCidrs and "
                                 "privateSubnetCidrs"),
    ({"azCount": "0"}, 'azCount = "0": out of range 1..6'),
    ({"azCount": "two"}, 'azCount = "two": not a whole number'),
    ({"azCount": "1", "privateSubnetCidrs": "10.1.0.0/24"}, "outside the VPC 10.0.0.0/16"),
    ({"azCount": "2", "publicSubnetCidrs": "10.0.0.0/24,10.0.0.128/25"},
     "overlaps publicSubnetCidrs 10.0.0.128/25"),
    ({"azCount": "1", "publicSubnetCidrs": "10.0.128.0/24"},
     "overlaps privateSubnetCidrs 10.0.128.0/20"),
    ({"azCount": "1", "publicSubnetCidrs": "10.0.0.0/29"}, "prefix /29 is outside /16../28"),
    ({"azCount": "3", "privateSubnetCidrs": "10.0.128.0/20"}, "1 subnets for azCount 3"),
    ({"publicSubnetCidrs": "[1, 2]"}, "not a list of strings"),
    ({"publicSubnetCidrs": "[10.0.0.0/24"}, "not a valid list"),
    ({"sshCidr": "0.0.0.0/0"}, "opens SSH to (nearly) the whole internet. Fix: use your "
                               "network's public range"),
    ({"sshCidr": "0.0.0.0/4"}, "opens SSH to (nearly) the whole internet"),
    ({"sshCidr": "198.51.100.7/24"}, "host bits are set"),
    ({"natInstanceType": "t4g-nano"}, "not a known instance type. Fix: use family.size"),
    ({"amiId": "ami-123"}, 'amiId = "ami-123": not shaped like an AMI id'),
    ({"amiId": "ami-0123456789ABCDEF0"}, "not shaped like an AMI id"),
    ({"keyName": "ключ"}, "not a valid key pair name"),
    ({"enableTestRules": "yes"}, 'enableTestRules = "yes": not a boolean. Fix: use true or false'),
    ({"availabilityZones": "us-east-1a,us-east-1a"}, "an AZ is listed twice"),
    ({"azCount": "1", "availabilityZones": "us-east-1a,us-east-1b"},
     "2 AZs listed but azCount is 1"),
    ({"availabilityZones": "east"}, "'east' is not an AZ name"),
    ({"conntrackMax": "100"}, 'conntrackMax = "100": out of range 4096..4194304'),
    ({"conntrackTcpTimeWaitTimeout": "600"}, "out of range 1..120"),
    ({"sshcidr": "198.51.100.0/24"}, "unknown key. Fix: did you mean sshCidr?"),
])
def test_each_bad_value_is_named_with_its_fix(raw: dict[str, str], fragment: str) -> None:
    found = problems(raw)
    assert any(fragment in p for p in found), found
    assert all(p.startswith("nat-instance-vpc:") and "Fix:" in p for p in found)


def test_az_names_must_match_the_region() -> None:
    assert any("not all in region eu-west-1" in p for p in problems(
        {"azCount": "1", "availabilityZones": "us-east-1a"}, region="eu-west-1"))


def test_all_problems_are_reported_at_once() -> None:
    found = problems({"vpcCidr": "10.0.0.0/33", "natInstanceType": "nope", "amiId": "x"})
    assert len(found) == 3
    with pytest.raises(ConfigError, match=r"invalid stack configuration \(3 problems\)"):
        parse_settings({"vpcCidr": "10.0.0.0/33", "natInstanceType": "nope", "amiId": "x"})


def test_ssh_from_anywhere_needs_the_explicit_switch() -> None:
    settings = parse_settings({"sshCidr": "0.0.0.0/0", "allowSshFromAnywhere": "true"})
    assert settings.ssh_cidr == IPv4Network("0.0.0.0/0")


def test_choose_availability_zones() -> None:
    settings = parse_settings({"azCount": "2"})
    assert choose_availability_zones(settings, "us-east-1",
                                     ["us-east-1c", "us-east-1a", "us-east-1b"]) == \
        ("us-east-1a", "us-east-1b")
    with pytest.raises(ConfigError, match="region us-east-1 has only 1 available AZs"):
        choose_availability_zones(settings, "us-east-1", ["us-east-1a"])


def test_stack_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert stack_region({"region": "eu-west-1"}) == "eu-west-1"
    with pytest.raises(ConfigError, match="pulumi config set aws:region"):
        stack_region({"region": None})
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert stack_region({"region": None}) == "ap-south-1"


def test_expand_rules_multiplies_rows_by_peer_cidrs() -> None:
    private = [IPv4Network("10.0.128.0/20"), IPv4Network("10.0.144.0/20")]
    rules = expand_rules(private, IPv4Network("198.51.100.0/24"), include_test_rules=True)
    assert len(rules) == 2 * 2 + 1 + 2 + 2 + 1 + 2  # http/https, ssh, out, icmp in, icmp out, ssh
    assert len({r.slug for r in rules}) == len(rules)
    assert {r.cidr for r in rules if r.from_port == 22 and r.direction == "inbound"} == \
        {"198.51.100.0/24"}


def test_ssm_parameter_names() -> None:
    assert al2023_ssm_parameter("arm64").endswith("al2023-ami-kernel-default-arm64")
    assert al2023_ssm_parameter("x86_64").endswith("al2023-ami-kernel-default-x86_64")
    with pytest.raises(ValueError, match="unknown architecture"):
        al2023_ssm_parameter("sparc")


def test_user_data_is_well_under_the_ec2_limit() -> None:
    user_data = render_user_data(IPv4Network("10.0.0.0/16"), TuningOverrides.from_values(
        {"conntrackMax": 262144, "conntrackTcpTimeWaitTimeout": 15}))
    assert "NAT_CONNTRACK_MAX=262144\nNAT_TCP_TIME_WAIT_TIMEOUT=15\n" in user_data
    encoded = encode_user_data(user_data)
    assert len(base64.b64decode(encoded)) < EC2_USER_DATA_LIMIT // 3
    assert decode_user_data(encoded) == user_data
    # the same text gives the same bytes, or every `pulumi up` would replace the NATs
    assert encode_user_data(user_data) == encoded
    assert base64.b64decode(encoded)[:2] == b"\x1f\x8b"  # gzip, which cloud-init unpacks
