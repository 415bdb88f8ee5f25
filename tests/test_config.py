"""Stack config → NatInstanceVpc's arguments, and the checks both share (pure functions)."""

from __future__ import annotations

import base64
import gzip
from ipaddress import IPv4Network
from typing import Any

import pytest

from nat.design.ami import al2023_ssm_parameter
from nat.design.rules import expand_rules
from nat.design.userdata import (
    EC2_USER_DATA_LIMIT,
    decode_user_data,
    encode_user_data,
    render_user_data,
)
from nat.inputs.config import StackSettings, config_namespace_values, parse_stack_config
from nat.inputs.instance_types import architecture_by_name, is_burstable, known_instance_types
from nat.inputs.settings import (
    AccessSettings,
    InstanceSettings,
    MonitoringSettings,
    NatOptions,
    derive_subnet_cidrs,
)
from nat.inputs.tuning import TuningOverrides
from nat.inputs.validation import ArgumentsError, camel_case, shown
from nat.program import choose_availability_zones, stack_region

A, B = "us-east-1a", "us-east-1b"


def problems(raw: dict[str, str], region: str | None = None) -> list[str]:
    with pytest.raises(ArgumentsError) as raised:
        parse_stack_config(raw, region=region)
    return raised.value.problems


def settings_of(raw: dict[str, str]) -> Any:
    stack = parse_stack_config(raw)
    zones = stack.availability_zones or tuple(f"us-east-1{c}" for c in "abcdef"[:stack.az_count])
    return stack.vpc_settings(zones)


def test_defaults() -> None:
    stack = parse_stack_config({})
    assert stack == StackSettings(
        az_count=2, availability_zones=None, vpc_cidr=IPv4Network("10.0.0.0/16"),
        public_subnet_cidrs=(IPv4Network("10.0.0.0/20"), IPv4Network("10.0.16.0/20")),
        private_subnet_cidrs=(IPv4Network("10.0.128.0/20"), IPv4Network("10.0.144.0/20")),
        options=NatOptions())
    settings = settings_of({})
    assert settings.vpc_cidr == IPv4Network("10.0.0.0/16")
    assert [str(c) for c in settings.public_subnet_cidrs] == ["10.0.0.0/20", "10.0.16.0/20"]
    assert [str(c) for c in settings.private_subnet_cidrs] == ["10.0.128.0/20", "10.0.144.0/20"]
    options = settings.options
    assert options.instance.instance_type == "t4g.nano"
    assert options.instance.architecture == "arm64"
    assert options.access.ssh_cidr is None and options.instance.key_name is None
    assert options.instance.ami_id is None
    assert options.instance.use_elastic_ip and options.instance.enable_ssm
    assert not options.access.enable_test_rules and not options.single_nat
    assert settings.nat_layer.nat_zones == (A, B)


def test_each_key_reaches_its_argument() -> None:
    stack = parse_stack_config({
        "azCount": "1", "availabilityZones": '["us-east-1c"]', "vpcCidr": "10.1.0.0/16",
        "publicSubnetCidrs": "10.1.0.0/24", "privateSubnetCidrs": "10.1.128.0/24",
        "natInstanceType": "c8gn.medium", "sshCidr": "198.51.100.0/24",
        "allowSshFromAnywhere": "false", "keyName": "ops", "amiId": "ami-0123456789abcdef0",
        "enableTestRules": "true", "singleNat": "true", "useElasticIp": "false",
        "enableSsm": "false", "conntrackMax": "262144",
        "conntrackTcpEstablishedTimeout": "3600", "conntrackTcpTimeWaitTimeout": "15"})
    assert stack.az_count == 1 and stack.availability_zones == ("us-east-1c",)
    assert (stack.vpc_cidr, stack.public_subnet_cidrs, stack.private_subnet_cidrs) == (
        IPv4Network("10.1.0.0/16"), (IPv4Network("10.1.0.0/24"),),
        (IPv4Network("10.1.128.0/24"),))
    assert stack.options == NatOptions(
        single_nat=True,
        instance=InstanceSettings(
            instance_type="c8gn.medium", key_name="ops", ami_id="ami-0123456789abcdef0",
            use_elastic_ip=False, enable_ssm=False,
            tuning=TuningOverrides.from_values({"max_entries": 262144,
                                                "tcp_established_timeout": 3600,
                                                "tcp_time_wait_timeout": 15})),
        access=AccessSettings(ssh_cidr=IPv4Network("198.51.100.0/24"), enable_test_rules=True))


def test_unset_sentinels_from_pulumi_yaml_defaults_mean_not_set() -> None:
    stack = parse_stack_config({"sshCidr": "", "amiId": "", "keyName": "",
                                "publicSubnetCidrs": "[]", "availabilityZones": "[ ]",
                                "conntrackMax": "0"})
    assert stack.options == NatOptions() and stack.availability_zones is None
    assert stack.public_subnet_cidrs == (IPv4Network("10.0.0.0/20"), IPv4Network("10.0.16.0/20"))


def test_whitespace_only_values() -> None:
    # a key with a "not set" default: whitespace is an empty value, named as such
    assert problems({"sshCidr": "   "}) == [
        'nat-instance-vpc:sshCidr = "": empty value. Fix: set a value or remove it: '
        "`pulumi config rm sshCidr`"]
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


@pytest.mark.parametrize(("raw", "public", "private"), [
    # the edges the docs allow: a /24 VPC with derived /28 subnets, six AZs
    ({"vpcCidr": "10.9.0.0/24", "azCount": "6"},
     [f"10.9.0.{16 * i}/28" for i in range(6)], [f"10.9.0.{128 + 16 * i}/28" for i in range(6)]),
    # a /28 VPC, the smallest AWS takes, with explicit /28 subnets is refused only for overlap
    ({"vpcCidr": "10.9.0.0/16", "azCount": "1", "publicSubnetCidrs": "10.9.0.0/28",
      "privateSubnetCidrs": "10.9.0.16/28"}, ["10.9.0.0/28"], ["10.9.0.16/28"]),
    ({"vpcCidr": "10.9.0.0/16", "azCount": "1", "publicSubnetCidrs": "10.9.0.0/16"},
     None, None),
])
def test_range_edges_that_are_valid(raw: dict[str, str], public: list[str] | None,
                                    private: list[str] | None) -> None:
    if public is None:
        assert any("overlaps" in p for p in problems(raw))
        return
    settings = settings_of(raw)
    assert [str(c) for c in settings.public_subnet_cidrs] == public
    assert [str(c) for c in settings.private_subnet_cidrs] == private


def test_a_28_vpc_needs_explicit_subnets() -> None:
    assert problems({"vpcCidr": "10.9.0.0/28", "azCount": "1"}) == [
        'nat-instance-vpc:vpcCidr = "10.9.0.0/28": too small to split into subnets of /28 or '
        "larger. Fix: use a VPC of /24 or larger, or set nat-instance-vpc:publicSubnetCidrs and "
        "nat-instance-vpc:privateSubnetCidrs"]


def test_lists_accept_json_and_comma_separated() -> None:
    a = settings_of({"azCount": "2", "publicSubnetCidrs": '["10.0.0.0/24", "10.0.1.0/24"]'})
    b = settings_of({"azCount": "2", "publicSubnetCidrs": "10.0.0.0/24, 10.0.1.0/24"})
    assert a.public_subnet_cidrs == b.public_subnet_cidrs
    assert [str(c) for c in a.private_subnet_cidrs] == ["10.0.128.0/20", "10.0.144.0/20"]


@pytest.mark.parametrize(("instance_type", "architecture"), [
    ("t4g.nano", "arm64"), ("c7gn.16xlarge", "arm64"), ("m6g.metal", "arm64"),
    ("c8gn.medium", "arm64"), ("x2gd.medium", "arm64"), ("a1.large", "arm64"),
    ("im4gn.large", "arm64"), ("is4gen.medium", "arm64"),
    ("t3.micro", "x86_64"), ("t3a.small", "x86_64"), ("c6in.xlarge", "x86_64"),
    ("m8i.large", "x86_64"), ("c8i.large", "x86_64"), ("m5zn.large", "x86_64"),
    ("m7i-flex.large", "x86_64"), ("g4dn.xlarge", "x86_64"),
    ("mac-m4.metal", None), ("", None)])
def test_architecture_by_name(instance_type: str, architecture: str | None) -> None:
    assert architecture_by_name(instance_type) == architecture


def test_every_known_type_has_an_architecture_but_macs() -> None:
    types = known_instance_types()
    assert len(types) > 1000
    assert {"c8gn.medium", "m8i.large", "c8i.large", "x2gd.medium", "m5zn.large"} <= types
    unreadable = {t for t in types if architecture_by_name(t) is None}
    assert unreadable and all(t.startswith("mac") for t in unreadable)


def test_burstable_types() -> None:
    assert is_burstable("t4g.nano") and is_burstable("t3a.micro") and is_burstable("t2.micro")
    assert not is_burstable("c7gn.medium") and not is_burstable("m8i.large")


@pytest.mark.parametrize("instance_type", ["c8gn.medium", "m8i.large", "c8i.large",
                                           "x2gd.medium", "m5zn.large", "t4g.micro"])
def test_real_instance_types_are_accepted(instance_type: str) -> None:
    assert settings_of({"natInstanceType": instance_type}).options.instance.instance_type == \
        instance_type


# monitoring and high availability keys: each bad value alone, named with its fix
MONITORING_AND_HA_BAD_VALUES: list[tuple[dict[str, str], str]] = [
    ({"metricsNamespace": "AWS/NATGateway"},
     'nat-instance-vpc:metricsNamespace = "AWS/NATGateway": AWS/ namespaces are AWS\'s own. '
     "Fix: use another, e.g. NatInstance"),
    ({"metricsNamespace": "nat instances"},
     'nat-instance-vpc:metricsNamespace = "nat instances": not a CloudWatch namespace. Fix: use '
     "1 to 255 letters, digits and . - _ / # :, e.g. NatInstance"),
    ({"alarmTopicArn": "platform-alarms"},
     'nat-instance-vpc:alarmTopicArn = "platform-alarms": not an SNS topic ARN. Fix: give one '
     "like arn:aws:sns:us-east-1:123456789012:nat-alarms"),
    ({"metricsPublishIntervalSeconds": "90"},
     "nat-instance-vpc:metricsPublishIntervalSeconds = 90: not a multiple of 60. Fix: "
     "use a multiple of 60 from 60 to 900"),
    ({"monitoring": "false", "monitoringDashboard": "true"},
     "nat-instance-vpc:monitoringDashboard = true: has no effect while nat-instance-vpc:"
     "monitoring is false. Fix: remove it, or turn nat-instance-vpc:monitoring on"),
    ({"monitoringAlarms": "false", "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:a"},
     'nat-instance-vpc:alarmTopicArn = "arn:aws:sns:us-east-1:123456789012:a": has no effect '
     "while nat-instance-vpc:monitoringAlarms is false. Fix: remove it, or turn "
     "nat-instance-vpc:monitoringAlarms on"),
    ({"alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:a", "createAlarmTopic": "true"},
     "nat-instance-vpc:createAlarmTopic = true: a topic is also given in "
     "nat-instance-vpc:alarmTopicArn. Fix: use one or the other"),
    ({"failbackAfterSeconds": "5"},
     "nat-instance-vpc:failbackAfterSeconds = 5: out of range 10..3600. Fix: use an integer "
     "from 10 to 3600"),
    ({"highAvailability": "true", "useElasticIp": "false"},
     "nat-instance-vpc:useElasticIp = false: high availability keeps each AZ's public address "
     "on a network interface that outlives its instances, so it needs Elastic IPs. Fix: leave "
     "it true, or turn nat-instance-vpc:highAvailability off"),
    ({"healthCheckTargets": "checkip.amazonaws.com"},
     'nat-instance-vpc:healthCheckTargets = "checkip.amazonaws.com": not host:port. Fix: write '
     "it like checkip.amazonaws.com:443"),
]


@pytest.mark.parametrize(("raw", "message"), [
    ({'vpcCidr': '10.0.0.0'},
     'nat-instance-vpc:vpcCidr = "10.0.0.0": no prefix length. Fix: write it with one,'
     ' e.g. 10.0.0.0/32'),
    ({'vpcCidr': '10.0.0.1/16'},
     'nat-instance-vpc:vpcCidr = "10.0.0.1/16": host bits are set. Fix: use the '
     'network address: 10.0.0.0/16'),
    ({'vpcCidr': '10.0.0.0/8'},
     'nat-instance-vpc:vpcCidr = "10.0.0.0/8": prefix /8 is outside /16../28 that AWS '
     'accepts. Fix: use a prefix from /16 to /28'),
    ({'vpcCidr': 'banana'},
     'nat-instance-vpc:vpcCidr = "banana": not an IPv4 CIDR. Fix: write it like '
     '10.0.0.0/16'),
    ({'vpcCidr': '10.0.0.0/25'},
     'nat-instance-vpc:vpcCidr = "10.0.0.0/25": too small to split into subnets of /28'
     ' or larger. Fix: use a VPC of /24 or larger, or set '
     'nat-instance-vpc:publicSubnetCidrs and nat-instance-vpc:privateSubnetCidrs'),
    ({'azCount': '0'},
     'nat-instance-vpc:azCount = "0": out of range 1..6. Fix: use an integer from 1 to'
     ' 6'),
    ({'azCount': '7'},
     'nat-instance-vpc:azCount = "7": out of range 1..6. Fix: use an integer from 1 to'
     ' 6'),
    ({'azCount': 'two'},
     'nat-instance-vpc:azCount = "two": not a whole number. Fix: use an integer'),
    ({'azCount': '1', 'privateSubnetCidrs': '10.1.0.0/24'},
     'nat-instance-vpc:privateSubnetCidrs = "10.1.0.0/24": outside the VPC '
     '(10.0.0.0/16). Fix: use subnets inside nat-instance-vpc:vpcCidr'),
    ({'azCount': '2', 'publicSubnetCidrs': '10.0.0.0/24,10.0.0.128/25'},
     'nat-instance-vpc:publicSubnetCidrs = "10.0.0.0/24": overlaps '
     'nat-instance-vpc:publicSubnetCidrs 10.0.0.128/25. Fix: give every subnet its own'
     ' range'),
    ({'azCount': '1', 'publicSubnetCidrs': '10.0.128.0/24'},
     'nat-instance-vpc:publicSubnetCidrs = "10.0.128.0/24": overlaps '
     'nat-instance-vpc:privateSubnetCidrs 10.0.128.0/20. Fix: give every subnet its '
     'own range'),
    ({'azCount': '1', 'publicSubnetCidrs': '10.0.0.0/29'},
     'nat-instance-vpc:publicSubnetCidrs = "10.0.0.0/29": prefix /29 is outside '
     '/16../28 that AWS accepts. Fix: use a prefix from /16 to /28'),
    ({'azCount': '3', 'privateSubnetCidrs': '10.0.128.0/20'},
     'nat-instance-vpc:privateSubnetCidrs = ["10.0.128.0/20"]: 1 subnet for 3 AZs. '
     'Fix: give exactly one CIDR per AZ (3), or leave it out to derive them'),
    ({'publicSubnetCidrs': '[1, 2]'},
     'nat-instance-vpc:publicSubnetCidrs = "[1, 2]": not a list of strings. Fix: use a'
     ' YAML list or "a,b"'),
    ({'publicSubnetCidrs': '[10.0.0.0/24'},
     'nat-instance-vpc:publicSubnetCidrs = "[10.0.0.0/24": not a valid list. Fix: use '
     'a YAML list or "a,b"'),
    ({'sshCidr': '0.0.0.0/0'},
     'nat-instance-vpc:sshCidr = "0.0.0.0/0": opens SSH to (nearly) the whole '
     "internet. Fix: use your network's public range, e.g. 198.51.100.0/24, or set "
     'nat-instance-vpc:allowSshFromAnywhere to true if you really mean it'),
    ({'sshCidr': '0.0.0.0/7'},
     'nat-instance-vpc:sshCidr = "0.0.0.0/7": opens SSH to (nearly) the whole '
     "internet. Fix: use your network's public range, e.g. 198.51.100.0/24, or set "
     'nat-instance-vpc:allowSshFromAnywhere to true if you really mean it'),
    ({'sshCidr': '198.51.100.7/24'},
     'nat-instance-vpc:sshCidr = "198.51.100.7/24": host bits are set. Fix: use the '
     'network address: 198.51.100.0/24'),
    ({'sshCidr': 'office'},
     'nat-instance-vpc:sshCidr = "office": not an IPv4 CIDR. Fix: write it like '
     '10.0.0.0/16'),
    ({'natInstanceType': 't4g-nano'},
     'nat-instance-vpc:natInstanceType = "t4g-nano": not an EC2 instance type AWS has '
     "announced (botocore's list). Fix: did you mean t4g.nano or t3.nano or t2.nano? "
     'use an EC2 type such as t4g.nano, t4g.micro, c7gn.medium or c8gn.medium'),
    ({'natInstanceType': 'x9.huge'},
     'nat-instance-vpc:natInstanceType = "x9.huge": not an EC2 instance type AWS has '
     "announced (botocore's list). Fix: use an EC2 type such as t4g.nano, t4g.micro, "
     'c7gn.medium or c8gn.medium'),
    ({'natInstanceType': 'mac2.metal'},
     'nat-instance-vpc:natInstanceType = "mac2.metal": Mac instances need dedicated '
     'hosts and macOS, not Amazon Linux. Fix: use an EC2 type such as t4g.nano, '
     't4g.micro, c7gn.medium or c8gn.medium'),
    ({'amiId': 'ami-123'},
     'nat-instance-vpc:amiId = "ami-123": not shaped like an AMI id. Fix: use ami- '
     'followed by 8 or 17 hex digits, e.g. ami-0123456789abcdef0, or leave it out to '
     'use the latest Amazon Linux 2023'),
    ({'amiId': 'ami-0123456789ABCDEF0'},
     'nat-instance-vpc:amiId = "ami-0123456789ABCDEF0": not shaped like an AMI id. '
     'Fix: use ami- followed by 8 or 17 hex digits, e.g. ami-0123456789abcdef0, or '
     'leave it out to use the latest Amazon Linux 2023'),
    ({'keyName': 'ключ'},
     'nat-instance-vpc:keyName = "\\u043a\\u043b\\u044e\\u0447": not a valid key pair '
     'name. Fix: use the name of an existing EC2 key pair (printable ASCII, 1-255 '
     'chars)'),
    ({'enableTestRules': 'yes'},
     'nat-instance-vpc:enableTestRules = "yes": not a boolean. Fix: use true or false'),
    ({'availabilityZones': 'us-east-1a,us-east-1a'},
     'nat-instance-vpc:availabilityZones = ["us-east-1a", "us-east-1a"]: an AZ is '
     'listed twice. Fix: list each once'),
    ({'azCount': '1', 'availabilityZones': 'us-east-1a,us-east-1b'},
     'nat-instance-vpc:availabilityZones = ["us-east-1a", "us-east-1b"]: 2 AZs listed '
     'but azCount is 1. Fix: list exactly 1 AZ or set azCount to 2'),
    ({'availabilityZones': 'east'},
     'nat-instance-vpc:availabilityZones = ["east"]: \'east\' is not an AZ name. Fix: '
     'use names like us-east-1a'),
    ({'conntrackMax': '100'},
     'nat-instance-vpc:conntrackMax = 100: out of range 4096..4194304. Fix: use an '
     'integer from 4096 to 4194304'),
    ({'conntrackMax': 'lots'},
     'nat-instance-vpc:conntrackMax = "lots": not a whole number. Fix: use an integer'),
    ({'conntrackTcpTimeWaitTimeout': '600'},
     'nat-instance-vpc:conntrackTcpTimeWaitTimeout = 600: out of range 1..120. Fix: '
     'use an integer from 1 to 120'),
    ({'conntrackTcpEstablishedTimeout': '299'},
     'nat-instance-vpc:conntrackTcpEstablishedTimeout = 299: out of range 300..432000.'
     ' Fix: use an integer from 300 to 432000'),
    ({'sshcidr': '198.51.100.0/24'},
     'nat-instance-vpc:sshcidr = "198.51.100.0/24": unknown key. Fix: did you mean '
     'sshCidr? Remove it with `pulumi config rm sshcidr`'),
    ({'flavour': 'vanilla'},
     'nat-instance-vpc:flavour = "vanilla": unknown key. Fix: known keys: '
     'alarmTopicArn, allowSshFromAnywhere, amiId, availabilityZones, azCount, '
     'conntrackMax, conntrackTcpEstablishedTimeout, conntrackTcpTimeWaitTimeout, '
     'createAlarmTopic, detailedMetrics, elasticIpAllocationIds, enableSsm, enableTestRules, '
     'failbackAfterSeconds, healthCheckTargets, highAvailability, keepConnections, keyName, '
     'metricsNamespace, metricsPublishIntervalSeconds, monitoring, monitoringAlarms, '
     'monitoringDashboard, natInstanceType, privateSubnetCidrs, publicAddressesPerNat, '
     'publicSubnetCidrs, singleNat, sshCidr, useElasticIp, vpcCidr. Remove it with '
     '`pulumi config rm flavour`'),
    *MONITORING_AND_HA_BAD_VALUES,
])
def test_each_bad_value_is_named_with_its_fix(raw: dict[str, str], message: str) -> None:
    assert problems(raw) == [message]  # the key, the value, why, and the fix: exactly


@pytest.mark.parametrize(("raw", "value"), [
    ({"azCount": "6"}, 6), ({"azCount": "1"}, 1),
    ({"conntrackMax": "4194304"}, 4194304), ({"conntrackMax": "4096"}, 4096),
    ({"conntrackTcpTimeWaitTimeout": "120"}, 120), ({"conntrackTcpTimeWaitTimeout": "1"}, 1),
    ({"conntrackTcpEstablishedTimeout": "432000"}, 432000),
    ({"conntrackTcpEstablishedTimeout": "300"}, 300),
])
def test_the_ends_of_every_range_are_valid(raw: dict[str, str], value: int) -> None:
    stack = parse_stack_config(raw)
    if "azCount" in raw:
        assert stack.az_count == value
    else:
        assert list(stack.options.instance.tuning.values.values()) == [value]
        assert list(settings_of(raw).options.instance.tuning.values.values()) == [value]


def test_ssh_cidr_edges() -> None:
    # /8 is the widest range accepted without the switch; /7 needs it
    assert str(settings_of({"sshCidr": "10.0.0.0/8"}).options.access.ssh_cidr) == "10.0.0.0/8"
    assert problems({"sshCidr": "10.0.0.0/7"})
    anywhere = settings_of({"sshCidr": "0.0.0.0/0", "allowSshFromAnywhere": "true"})
    assert anywhere.options.access.ssh_cidr == IPv4Network("0.0.0.0/0")


def test_invalid_vpc_cidr_with_explicit_subnets_names_only_the_vpc() -> None:
    found = problems({"vpcCidr": "10.0.0.0/33", "azCount": "1",
                      "publicSubnetCidrs": "10.0.0.0/24", "privateSubnetCidrs": "10.0.1.0/24"})
    assert found == ['nat-instance-vpc:vpcCidr = "10.0.0.0/33": not an IPv4 CIDR. Fix: write it '
                     "like 10.0.0.0/16"]


def test_az_names_must_match_the_region() -> None:
    assert problems({"azCount": "1", "availabilityZones": "us-east-1a"}, region="eu-west-1") == [
        'nat-instance-vpc:availabilityZones = ["us-east-1a"]: not all in region eu-west-1. Fix: '
        "use AZs of eu-west-1 or change aws:region"]


def test_all_problems_are_reported_at_once() -> None:
    raw = {"vpcCidr": "10.0.0.0/33", "natInstanceType": "nope", "amiId": "x"}
    assert len(problems(raw)) == 3
    with pytest.raises(ArgumentsError, match=r"invalid stack configuration \(3 problems\):\n"
                                             r"  - nat-instance-vpc:"):
        parse_stack_config(raw)
    with pytest.raises(ArgumentsError, match=r"^invalid stack configuration:\n  - "):
        parse_stack_config({"amiId": "x"})


def test_choose_availability_zones() -> None:
    stack = parse_stack_config({"azCount": "2"})
    assert choose_availability_zones(stack, "us-east-1",
                                     ["us-east-1c", "us-east-1a", "us-east-1b"]) == (A, B)
    with pytest.raises(ArgumentsError, match="region us-east-1 has only 1 available AZs"):
        choose_availability_zones(stack, "us-east-1", ["us-east-1a"])
    pinned = parse_stack_config({"azCount": "1", "availabilityZones": "us-east-1z"})
    with pytest.raises(ArgumentsError, match=r"availabilityZones: us-east-1z is not an available "
                                             r"AZ of us-east-1\. Fix: use some of us-east-1a"):
        choose_availability_zones(pinned, "us-east-1", ["us-east-1a"])


def test_stack_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert stack_region({"region": "eu-west-1"}) == "eu-west-1"
    with pytest.raises(ArgumentsError, match="pulumi config set aws:region"):
        stack_region({"region": None})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert stack_region({"region": None}) == "sa-east-1"
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


def test_user_data_is_well_under_the_ec2_limit_and_deterministic() -> None:
    user_data = render_user_data([IPv4Network("10.0.0.0/16"), IPv4Network("100.64.0.0/16")],
                                 TuningOverrides.from_values({"tcp_time_wait_timeout": 15,
                                                              "max_entries": 262144}))
    assert "NAT_CONNTRACK_MAX=262144\nNAT_TCP_TIME_WAIT_TIMEOUT=15\n" in user_data
    assert "echo 'NAT_VPC_CIDRS=\"10.0.0.0/16 100.64.0.0/16\"' >/etc/nat-instance/nat.env" \
        in user_data
    encoded = encode_user_data(user_data)
    packed = base64.b64decode(encoded)
    assert len(packed) < EC2_USER_DATA_LIMIT // 3
    assert decode_user_data(encoded) == user_data
    # the same text gives the same bytes, or every `pulumi up` would replace the NATs:
    # gzip's header carries no timestamp
    assert encode_user_data(user_data) == encoded
    assert packed[:2] == b"\x1f\x8b" and packed[4:8] == b"\0\0\0\0"
    assert gzip.decompress(packed).decode() == user_data


def test_an_error_counts_its_problems_and_names_their_fields() -> None:
    one = ArgumentsError("bad", ["a"])
    assert str(one) == "bad:\n  - a" and one.fields == [""]
    two = ArgumentsError("bad", ["a", "b"], ["x", "y"])
    assert str(two) == "bad (2 problems):\n  - a\n  - b" and two.fields == ["x", "y"]
    assert ArgumentsError("bad", ["a", "b"]).fields == ["", ""]


def test_fields_are_named_as_the_schema_spells_them() -> None:
    assert camel_case("instance.conntrack.max_entries") == "instance.conntrack.maxEntries"
    assert camel_case("high_availability.failback_after_seconds") == \
        "highAvailability.failbackAfterSeconds"
    assert shown({"a": 1}) == '{"a": 1}' and shown(object()) == "<object>"


def test_valid_monitoring_settings_reach_the_arguments() -> None:
    settings = settings_of({"monitoring": "true", "metricsNamespace": "Platform/Nat",
                            "detailedMetrics": "true", "metricsPublishIntervalSeconds": "900",
                            "monitoringDashboard": "true", "createAlarmTopic": "true"}).options
    assert settings.monitoring == MonitoringSettings(True, "Platform/Nat", True, 900, True,
                                                     True, None, True)
    assert settings_of({"metricsPublishIntervalSeconds": "60"}).options.monitoring \
        .publish_interval_seconds == 60
    off = settings_of({"monitoring": "false", "monitoringAlarms": "true"}).options.monitoring
    assert not off.enabled and off.alarms  # the default "on" of alarms is no error
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:nat.fifo"
    assert settings_of({"alarmTopicArn": topic}).options.monitoring.alarm_topic_arn == topic


def test_unset_sentinels_as_typed_yaml_values() -> None:
    # Pulumi.yaml's typed defaults can arrive as numbers and lists, not strings
    typed: dict[str, Any] = {"conntrackMax": 0, "publicSubnetCidrs": [],
                             "conntrackTcpTimeWaitTimeout": " 0 "}
    stack = parse_stack_config(typed)
    assert stack.options == NatOptions()


def test_typed_yaml_values_are_read_as_their_text() -> None:
    typed: dict[str, Any] = {"azCount": 1, "singleNat": True,
                             "availabilityZones": ["us-east-1c"], "conntrackMax": 65536}
    stack = parse_stack_config(typed)
    assert (stack.az_count, stack.availability_zones) == (1, ("us-east-1c",))
    assert stack.options == NatOptions(single_nat=True, instance=InstanceSettings(
        tuning=TuningOverrides.from_values({"max_entries": 65536})))


def test_a_zero_is_a_value_for_a_string_key() -> None:
    assert parse_stack_config({"keyName": "0"}).options == NatOptions(
        instance=InstanceSettings(key_name="0"))


def test_every_bad_key_is_reported_not_only_the_first() -> None:
    assert problems({"azCount": " ", "keyName": "bad\x01"}) == [
        'nat-instance-vpc:azCount = "": empty value. Fix: set a value or remove it: '
        "`pulumi config rm azCount`",
        'nat-instance-vpc:keyName = "bad\\u0001": not a valid key pair name. Fix: use the name '
        "of an existing EC2 key pair (printable ASCII, 1-255 chars)"]
    assert problems({"azCount": "x", "sshCidr": "bad"}) == [
        'nat-instance-vpc:azCount = "x": not a whole number. Fix: use an integer',
        'nat-instance-vpc:sshCidr = "bad": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16']


@pytest.mark.parametrize(("az_count", "zones", "fix"), [
    ("1", "us-east-1a,us-east-1b", "list exactly 1 AZ or set azCount to 2"),
    ("3", "us-east-1a,us-east-1b", "list exactly 3 AZs or set azCount to 2"),
])
def test_az_list_and_count_disagree(az_count: str, zones: str, fix: str) -> None:
    assert problems({"azCount": az_count, "availabilityZones": zones}) == [
        'nat-instance-vpc:availabilityZones = ["us-east-1a", "us-east-1b"]: 2 AZs listed but '
        f"azCount is {az_count}. Fix: {fix}"]


def test_config_namespace_values_keeps_this_projects_keys_as_text() -> None:
    all_config: dict[str, object] = {
        "nat-instance-vpc:azCount": 3, "nat-instance-vpc:keyName": None,
        "nat-instance-vpc:sshCidr": "198.51.100.0/24",
        "nat-instance-vpc:availabilityZones": ["us-east-1a"], "aws:region": "us-east-1",
        "other:nat-instance-vpc:azCount": "1"}
    assert config_namespace_values(all_config) == {
        "azCount": "3", "keyName": None, "sshCidr": "198.51.100.0/24",
        "availabilityZones": '["us-east-1a"]'}
