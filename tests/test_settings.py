"""nat/inputs/settings.py: the components' arguments as any language passes them, checked directly.

Each refusal is asserted whole: the field as the package schema spells it, the value, why and
the fix, and that nothing else is reported with it. (Stack config reaches the same checks
through nat/inputs/config.py: tests/test_config.py.)
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any

import pytest

from nat.inputs import validation
from nat.inputs.settings import (
    NatLayerSettings,
    NatOptions,
    VpcSettings,
    Wiring,
    nat_instance_vpc_settings,
    nat_instances_settings,
)
from nat.inputs.validation import ArgumentsError

A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
SUBNET_A, SUBNET_B = "subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"
TABLE_A, TABLE_B = "rtb-0aaaaaaaaaaaaaaaa", "rtb-0bbbbbbbbbbbbbbbb"
EXISTING: dict[str, Any] = {
    "vpc_id": "vpc-0123456789abcdef0", "vpc_cidr_blocks": ["10.0.0.0/16"],
    "availability_zones": [A, B], "public_subnet_ids": {A: SUBNET_A, B: SUBNET_B},
    "private_route_table_ids": {A: [TABLE_A], B: [TABLE_B]}}


def nets(*cidrs: str) -> tuple[IPv4Network, ...]:
    return tuple(IPv4Network(c) for c in cidrs)


def vpc_problems(args: Any) -> list[str]:
    with pytest.raises(ArgumentsError) as refused:
        nat_instance_vpc_settings("v", args)
    assert str(refused.value).startswith('invalid arguments for NatInstanceVpc "v"')
    return refused.value.problems


def layer_problems(args: Any) -> list[str]:
    with pytest.raises(ArgumentsError) as refused:
        nat_instances_settings("n", args)
    assert str(refused.value).startswith('invalid arguments for NatInstances "n"')
    return refused.value.problems


def test_each_caller_is_told_fields_in_its_own_spelling() -> None:
    """The schema's camelCase by default (the provider's callers); a Python caller's keys
    when its label says so, in every message, nested groups and cross-field ones too."""
    args = {**EXISTING, "availability_zones": ["us-east-1a", "us-east-1c"],
            "instance": "t4g.nano", "access": {"ssh_cidr": "0.0.0.0/0"}}
    with pytest.raises(ArgumentsError) as camel:
        nat_instances_settings("n", args)
    with pytest.raises(ArgumentsError) as python:
        nat_instances_settings("n", args, validation.python_spelling)
    assert camel.value.fields == python.value.fields  # the same problems
    joined = "\n".join(python.value.problems)
    assert "public_subnet_ids = " in joined and "is not one of availability_zones" in joined
    assert 'instance = "t4g.nano": not an object. Fix: give an object with fields like ' \
        "instance_type" in joined
    assert "set access.allow_ssh_from_anywhere to true" in joined
    assert not re.search(r"[a-z][A-Z]", joined.replace("Fix", "")), joined
    camel_joined = "\n".join(camel.value.problems)
    assert "publicSubnetIds = " in camel_joined and "instanceType" in camel_joined
    with pytest.raises(ArgumentsError) as vpc:
        nat_instance_vpc_settings("v", {"availability_zones": ["us-east-1a"], "vpcCidr": "x"},
                                  label=validation.python_spelling)
    assert vpc.value.problems == [
        'vpcCidr = "x": unknown field. Fix: did you mean vpc_cidr? Remove it']


@pytest.mark.parametrize("args", [["availability_zones"], "availability_zones", None])
def test_arguments_that_are_not_an_object(args: Any) -> None:
    message = "args: not an object. Fix: pass the arguments as an object"
    with pytest.raises(ArgumentsError) as vpc:
        nat_instance_vpc_settings("v", args)
    assert str(vpc.value) == f'invalid arguments for NatInstanceVpc "v":\n  - {message}'
    with pytest.raises(ArgumentsError) as layer:
        nat_instances_settings("n", args)
    assert str(layer.value) == f'invalid arguments for NatInstances "n":\n  - {message}'


# --- NatInstanceVpc ------------------------------------------------------------------------------
def test_vpc_defaults() -> None:
    assert nat_instance_vpc_settings("v", {"availability_zones": [A, B]}) == VpcSettings(
        (A, B), IPv4Network("10.0.0.0/16"), nets("10.0.0.0/20", "10.0.16.0/20"),
        nets("10.0.128.0/20", "10.0.144.0/20"), NatOptions())


def test_six_azs_is_the_most() -> None:
    zones = [f"us-east-1{letter}" for letter in "abcdef"]
    assert len(nat_instance_vpc_settings("v", {"availability_zones": zones})
               .public_subnet_cidrs) == 6
    assert vpc_problems({"availability_zones": [*zones, "us-east-1g"]}) == [
        'availabilityZones = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", '
        '"us-east-1e", "us-east-1f", "us-east-1g"]: 7 AZs; at most 6. Fix: list at most 6']


def test_missing_azs_and_subnets_judged_as_for_one_az() -> None:
    assert vpc_problems({"public_subnet_cidrs": ["10.0.0.0/24", "10.0.1.0/24"]}) == [
        'availabilityZones: missing. Fix: list the AZs, e.g. ["us-east-1a", "us-east-1b"]',
        'publicSubnetCidrs = ["10.0.0.0/24", "10.0.1.0/24"]: 2 subnets for 1 AZ. Fix: give '
        "exactly one CIDR per AZ (1), or leave it out to derive them"]


def test_subnet_count_must_match_the_azs() -> None:
    assert vpc_problems({"availability_zones": [A, B], "public_subnet_cidrs": ["10.0.0.0/24"],
                         "private_subnet_cidrs": ["10.0.2.0/24", "10.0.3.0/24"]}) == [
        'publicSubnetCidrs = ["10.0.0.0/24"]: 1 subnet for 2 AZs. Fix: give exactly one CIDR '
        "per AZ (2), or leave it out to derive them"]


@pytest.mark.parametrize("field", ["public_subnet_cidrs", "private_subnet_cidrs"])
def test_subnets_that_are_not_a_list(field: str) -> None:
    name = "publicSubnetCidrs" if field.startswith("public") else "privateSubnetCidrs"
    assert vpc_problems({"availability_zones": [A], field: "10.0.0.0/24"}) == [
        f'{name} = "10.0.0.0/24": not a list of strings. Fix: give a list, e.g. ["a", "b"]']


@pytest.mark.parametrize("vpc_cidr, problem", [
    (16, "vpcCidr = 16: not a string. Fix: give a string"),
    ("  ", 'vpcCidr = "": empty value. Fix: give a value, or leave the field out'),
    ("10.0.0.0/33", 'vpcCidr = "10.0.0.0/33": not an IPv4 CIDR. Fix: write it like '
                    "10.0.0.0/16"),
])
def test_bad_vpc_cidr_is_the_only_problem_even_with_explicit_subnets(vpc_cidr: object,
                                                                     problem: str) -> None:
    assert vpc_problems({"availability_zones": [A], "vpc_cidr": vpc_cidr,
                         "public_subnet_cidrs": ["10.0.0.0/24"],
                         "private_subnet_cidrs": ["10.0.1.0/24"]}) == [problem]


@pytest.mark.parametrize("given, missing", [
    ({}, "publicSubnetCidrs and privateSubnetCidrs"),
    ({"public_subnet_cidrs": ["10.0.0.0/28"]}, "privateSubnetCidrs"),
    ({"private_subnet_cidrs": ["10.0.0.16/28"]}, "publicSubnetCidrs"),
])
def test_a_vpc_too_small_to_derive_subnets(given: dict[str, Any], missing: str) -> None:
    assert vpc_problems({"availability_zones": [A], "vpc_cidr": "10.0.0.0/25", **given}) == [
        'vpcCidr = "10.0.0.0/25": too small to split into subnets of /28 or larger. Fix: use a '
        f"VPC of /24 or larger, or set {missing}"]


def test_smallest_vpcs_that_work() -> None:
    derived = nat_instance_vpc_settings("v", {"availability_zones": [A], "vpc_cidr": "10.0.0.0/24"})
    assert (derived.public_subnet_cidrs, derived.private_subnet_cidrs) == (
        nets("10.0.0.0/28"), nets("10.0.0.128/28"))
    given = nat_instance_vpc_settings("v", {
        "availability_zones": [A], "vpc_cidr": "10.0.0.0/27",
        "public_subnet_cidrs": ["10.0.0.0/28"], "private_subnet_cidrs": ["10.0.0.16/28"]})
    assert (given.vpc_cidr, given.public_subnet_cidrs, given.private_subnet_cidrs) == (
        IPv4Network("10.0.0.0/27"), nets("10.0.0.0/28"), nets("10.0.0.16/28"))


@pytest.mark.parametrize("given, public, private", [
    ({"public_subnet_cidrs": ["10.0.200.0/24"]}, ["10.0.200.0/24"], ["10.0.128.0/20"]),
    ({"private_subnet_cidrs": ["10.0.200.0/24"]}, ["10.0.0.0/20"], ["10.0.200.0/24"]),
])
def test_one_list_given_the_other_derived(given: dict[str, Any], public: list[str],
                                          private: list[str]) -> None:
    settings = nat_instance_vpc_settings("v", {"availability_zones": [A], **given})
    assert settings.public_subnet_cidrs == nets(*public)
    assert settings.private_subnet_cidrs == nets(*private)


@pytest.mark.parametrize("given, problem", [
    # the bad list is reported alone: no derived list is checked against the good one
    ({"public_subnet_cidrs": ["x"], "private_subnet_cidrs": ["10.0.0.0/24"]},
     'publicSubnetCidrs = "x": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16'),
    ({"private_subnet_cidrs": ["x"], "public_subnet_cidrs": ["10.0.128.0/24"]},
     'privateSubnetCidrs = "x": not an IPv4 CIDR. Fix: write it like 10.0.0.0/16'),
    ({"public_subnet_cidrs": ["10.1.0.0/24"]},
     'publicSubnetCidrs = "10.1.0.0/24": outside the VPC (10.0.0.0/16). Fix: use subnets inside '
     "vpcCidr"),
    ({"public_subnet_cidrs": ["10.0.128.0/24"]},
     'publicSubnetCidrs = "10.0.128.0/24": overlaps privateSubnetCidrs 10.0.128.0/20. Fix: give '
     "every subnet its own range"),
])
def test_subnet_problems_name_their_list(given: dict[str, Any], problem: str) -> None:
    assert vpc_problems({"availability_zones": [A], **given}) == [problem]


def test_vpc_unknown_field_and_bad_options_are_reported_together() -> None:
    assert vpc_problems({"availability_zones": [A], "vpc_cidrs": ["10.0.0.0/16"],
                         "single_nat": "yes"}) == [
        'vpcCidrs = ["10.0.0.0/16"]: unknown field. Fix: did you mean vpcCidr? Remove it',
        'singleNat = "yes": not a boolean. Fix: use true or false']


def test_vpc_bad_zones_are_named() -> None:
    assert vpc_problems({"availability_zones": "us-east-1a"}) == [
        'availabilityZones = "us-east-1a": not a list of strings. Fix: give a list, e.g. '
        '["a", "b"]']


# --- options both components share ---------------------------------------------------------------
@pytest.mark.parametrize("options, problem", [
    ({"instance": 5}, "instance = 5: not an object. Fix: give an object with fields like "
                      "instanceType, or leave it out"),
    ({"access": []}, "access = []: not an object. Fix: give an object with fields like sshCidr, "
                     "or leave it out"),
    ({"instance": {"conntrack": 1}}, "instance.conntrack = 1: not an object. Fix: give an object "
                                     "with fields like maxEntries, or leave it out"),
    ({"instance": {"conntrack": {"max_entries": 4095}}},
     "instance.conntrack.maxEntries = 4095: out of range 4096..4194304. Fix: use an integer from "
     "4096 to 4194304"),
    ({"instance": {"instance_tpye": "t4g.nano"}},
     'instance.instanceTpye = "t4g.nano": unknown field. Fix: did you mean instance.instanceType? '
     "Remove it"),
    ({"high_availability": 1}, "highAvailability = 1: not an object. Fix: give an object with "
                               "fields like enabled, or leave it out"),
    ({"high_availability": {"enabled": "yes"}},
     'highAvailability.enabled = "yes": not a boolean. Fix: use true or false'),
    ({"monitoring": 1}, "monitoring = 1: not an object. Fix: give an object with fields like "
                        "enabled, or leave it out"),
    ({"monitoring": {"alarms": "no"}}, 'monitoring.alarms = "no": not a boolean. Fix: use true or '
                                       "false"),
    # a bad switch is reported alone: the settings it governs are judged as if it were on
    ({"monitoring": {"enabled": "x", "dashboard": True}},
     'monitoring.enabled = "x": not a boolean. Fix: use true or false'),
    ({"monitoring": {"publish_interval_seconds": "60"}},
     'monitoring.publishIntervalSeconds = "60": not a whole number. Fix: use an integer from 60 '
     "to 900"),
    ({"monitoring": {"enabled": False, "detailed_metrics": True}},
     "monitoring.detailedMetrics = true: has no effect while monitoring.enabled is false. Fix: "
     "remove it, or turn monitoring.enabled on"),
    ({"monitoring": {"enabled": False, "alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:t"}},
     'monitoring.alarmTopicArn = "arn:aws:sns:us-east-1:123456789012:t": has no effect while '
     "monitoring.enabled is false. Fix: remove it, or turn monitoring.enabled on"),
    ({"tags": ["team"]}, 'tags = ["team"]: not a map of strings. Fix: give {"key": "value", ...}'),
    ({"tags": {"team": 1}}, 'tags = {"team": 1}: not a map of strings. Fix: give {"key": '
                            '"value", ...}'),
    ({"high_availability": {"enabled": True}, "instance": {"use_elastic_ip": False}},
     "instance.useElasticIp = false: high availability keeps each AZ's public address on a "
     "network interface that outlives its instances, so it needs Elastic IPs. Fix: leave it "
     "true, or turn highAvailability.enabled off"),
    ({"high_availability": {"failback_after_seconds": 9}},
     "highAvailability.failbackAfterSeconds = 9: out of range 10..3600. Fix: use an integer "
     "from 10 to 3600"),
    ({"monitoring": {"publish_interval_seconds": 90}},
     "monitoring.publishIntervalSeconds = 90: not a multiple of 60. Fix: use a "
     "multiple of 60 from 60 to 900"),
    ({"monitoring": {"enabled": False, "dashboard": True}},
     "monitoring.dashboard = true: has no effect while monitoring.enabled is false. Fix: remove "
     "it, or turn monitoring.enabled on"),
    ({"monitoring": {"alarms": False, "create_alarm_topic": True}},
     "monitoring.createAlarmTopic = true: has no effect while monitoring.alarms is false. Fix: "
     "remove it, or turn monitoring.alarms on"),
])
def test_each_bad_option_is_named_alone(options: dict[str, Any], problem: str) -> None:
    assert vpc_problems({"availability_zones": [A], **options}) == [problem]
    assert layer_problems({**EXISTING, **options}) == [problem]


def test_options_reach_the_settings() -> None:
    options = {"single_nat": True, "tags": {"team": "net"},
               "instance": {"instance_type": "c7gn.medium", "key_name": "ops",
                            "ami_id": "ami-0123456789abcdef0", "enable_ssm": False,
                            "conntrack": {"max_entries": 4194304}},
               "access": {"ssh_cidr": "203.0.113.0/24", "enable_test_rules": True},
               "high_availability": {"enabled": True, "failback_after_seconds": 3600.0,
                                     "health_check_targets": ["example.com:80"]},
               "monitoring": {"detailed_metrics": True, "publish_interval_seconds": 900}}
    settings = nat_instance_vpc_settings("v", {"availability_zones": [A, B], **options})
    assert nat_instances_settings("n", {**EXISTING, **options}).options == settings.options
    chosen = settings.options
    assert chosen.single_nat and chosen.tags == {"team": "net"}
    assert (chosen.instance.instance_type, chosen.instance.key_name, chosen.instance.ami_id,
            chosen.instance.enable_ssm, chosen.instance.use_elastic_ip) == (
        "c7gn.medium", "ops", "ami-0123456789abcdef0", False, True)
    assert chosen.instance.tuning.values == {"max_entries": 4194304}
    assert (chosen.access.ssh_cidr, chosen.access.enable_test_rules) == (
        IPv4Network("203.0.113.0/24"), True)
    assert (chosen.high_availability.enabled, chosen.high_availability.failback_after_seconds,
            chosen.high_availability.health_check_targets) == (True, 3600, ("example.com:80",))
    assert (chosen.monitoring.detailed_metrics,
            chosen.monitoring.publish_interval_seconds) == (True, 900)


# --- NatInstances --------------------------------------------------------------------------------
def test_existing_vpc_defaults() -> None:
    settings = nat_instances_settings("n", EXISTING)
    assert settings == NatLayerSettings((A, B), nets("10.0.0.0/16"), nets("10.0.0.0/16"),
                                        NatOptions(), Wiring(
                                            EXISTING["vpc_id"], EXISTING["public_subnet_ids"],
                                            {zone: tuple(tables) for zone, tables in
                                             EXISTING["private_route_table_ids"].items()}))
    assert settings.nat_zones == (A, B)
    assert (settings.nat_zone_for(A), settings.nat_zone_for(B)) == (A, B)


def test_elastic_ips_can_be_turned_off_without_high_availability() -> None:
    settings = nat_instances_settings("n", {**EXISTING, "instance": {"use_elastic_ip": False}})
    assert settings.options.instance.use_elastic_ip is False


def test_private_cidr_blocks_narrow_the_sources() -> None:
    settings = nat_instances_settings("n", {**EXISTING, "vpc_cidr_blocks": ["10.0.0.0/16",
                                                                           "100.64.0.0/16"],
                                            "private_cidr_blocks": ["100.64.1.0/24"]})
    assert settings.vpc_cidrs == nets("10.0.0.0/16", "100.64.0.0/16")
    assert settings.private_cidrs == nets("100.64.1.0/24")


def test_single_nat_needs_a_public_subnet_in_the_first_az_only() -> None:
    settings = nat_instances_settings("n", {**EXISTING, "single_nat": True,
                                            "public_subnet_ids": {A: SUBNET_A}})
    assert settings.nat_zones == (A,) and settings.nat_zone_for(B) == A
    assert layer_problems({**EXISTING, "public_subnet_ids": {A: SUBNET_A}}) == [
        'publicSubnetIds = ["us-east-1a"]: no entry for us-east-1b. Fix: give one for each of '
        "us-east-1a, us-east-1b (the AZs must agree)"]


class Eventual:
    """Stands for an Output: an id known only at deploy time."""


@pytest.mark.parametrize("change, problems", [
    ({"vpc_id": None}, ["vpcId: missing. Fix: give the VPC's id"]),
    ({"vpc_id": SUBNET_A}, [f'vpcId = "{SUBNET_A}": not a vpc- id. Fix: give the id of a VPC, '
                            "like vpc-0123456789abcdef0"]),
    ({"vpc_cidr_blocks": None}, ['vpcCidrBlocks: missing. Fix: list the VPC\'s IPv4 CIDRs, e.g. '
                                 '["10.0.0.0/16"]']),
    ({"vpc_cidr_blocks": []}, ["vpcCidrBlocks = []: empty list. Fix: list at least one CIDR"]),
    ({"private_cidr_blocks": []}, ["privateCidrBlocks = []: empty list. Fix: list at least one "
                                   "CIDR"]),
    ({"vpc_cidr_blocks": ["10.0.0.0/16", "10.0.0.0/20"]},
     ['vpcCidrBlocks = "10.0.0.0/16": overlaps vpcCidrBlocks 10.0.0.0/20. Fix: give every subnet '
      "its own range"]),
    ({"vpc_cidr_blocks": ["10.0.0.0/8"]},
     ['vpcCidrBlocks = "10.0.0.0/8": prefix /8 is outside /16../28 that AWS accepts. Fix: use '
      "a prefix from /16 to /28"]),
    ({"private_cidr_blocks": ["10.1.0.0/24"]},
     ['privateCidrBlocks = "10.1.0.0/24": outside the VPC (10.0.0.0/16). Fix: use subnets inside '
      "vpcCidrBlocks"]),
    ({"availability_zones": None},
     ['availabilityZones: missing. Fix: list the AZs, e.g. ["us-east-1a", "us-east-1b"]']),
    ({"public_subnet_ids": None},
     ["publicSubnetIds: missing. Fix: map each of us-east-1a, us-east-1b to ids"]),
    ({"public_subnet_ids": [SUBNET_A, SUBNET_B]},
     [f'publicSubnetIds = ["{SUBNET_A}", "{SUBNET_B}"]: not a map of AZ → value, known before '
      'deployment. Fix: give a plain map like {"us-east-1a": ...} (its values may be outputs)']),
    ({"public_subnet_ids": {A: SUBNET_A, B: TABLE_B}},
     [f'publicSubnetIds.us-east-1b = "{TABLE_B}": not a subnet- id. Fix: give the id of a public '
      "subnet, like subnet-0123456789abcdef0"]),
    ({"public_subnet_ids": {A: SUBNET_A, C: SUBNET_B}},
     ['publicSubnetIds = ["us-east-1a", "us-east-1c"]: \'us-east-1c\' is not one of '
      "availabilityZones. Fix: key the map by us-east-1a, us-east-1b",
      'publicSubnetIds = ["us-east-1a", "us-east-1c"]: no entry for us-east-1b. Fix: give one '
      "for each of us-east-1a, us-east-1b (the AZs must agree)"]),
    ({"vpc_cidr": "10.0.0.0/16"},
     ['vpcCidr = "10.0.0.0/16": unknown field. Fix: did you mean vpcId or vpcCidrBlocks? Remove '
      "it"]),
    ({"availability_zones": [A, B, C], "public_subnet_ids": {A: SUBNET_A},
      "private_route_table_ids": {A: [TABLE_A], B: [TABLE_B], C: ["rtb-0cccccccccccccccc"]}},
     ['publicSubnetIds = ["us-east-1a"]: no entry for us-east-1b, us-east-1c. Fix: give one for '
      "each of us-east-1a, us-east-1b, us-east-1c (the AZs must agree)"]),
    ({"private_route_table_ids": {A: [TABLE_A]}},
     ['privateRouteTableIds = ["us-east-1a"]: no entry for us-east-1b. Fix: give one for each of '
      "us-east-1a, us-east-1b (the AZs must agree)"]),
    ({"private_route_table_ids": {A: TABLE_A, B: []}},
     [f'privateRouteTableIds.us-east-1a = "{TABLE_A}": not a non-empty list of route table ids. '
      "Fix: list the route tables of us-east-1a's private subnets",
      "privateRouteTableIds.us-east-1b = []: not a non-empty list of route table ids. Fix: list "
      "the route tables of us-east-1b's private subnets"]),
    ({"private_route_table_ids": {A: [TABLE_A], B: [SUBNET_B]}},
     [f'privateRouteTableIds.us-east-1b = "{SUBNET_B}": not a rtb- id. Fix: give the id of a '
      "route table, like rtb-0123456789abcdef0"]),
    ({"private_route_table_ids": {A: [TABLE_A, TABLE_A], B: [TABLE_B]}},
     [f'privateRouteTableIds.us-east-1a = "{TABLE_A}": route table given twice (also under '
      "us-east-1a). Fix: give each route table once, under the AZ of its subnets"]),
    # bad AZs: the AZ-keyed maps cannot be judged, so they are not
    ({"availability_zones": ["us-east-1"], "public_subnet_ids": None},
     ['availabilityZones = ["us-east-1"]: \'us-east-1\' is not an AZ name. Fix: use names like '
      "us-east-1a"]),
])
def test_each_bad_argument_of_nat_instances(change: dict[str, Any], problems: list[str]) -> None:
    assert layer_problems({**EXISTING, **change}) == problems


def test_a_route_table_id_given_twice_is_found_by_its_text() -> None:
    again = "".join(["rtb-", TABLE_A.removeprefix("rtb-")])  # equal text, another object
    assert again is not TABLE_A
    assert layer_problems({**EXISTING, "private_route_table_ids": {A: [TABLE_A], B: [again]}}) \
        == [f'privateRouteTableIds.us-east-1b = "{TABLE_A}": route table given twice (also under '
            "us-east-1a). Fix: give each route table once, under the AZ of its subnets"]


def test_the_same_output_given_twice_is_refused_and_distinct_outputs_are_not() -> None:
    table = Eventual()
    assert layer_problems({**EXISTING, "private_route_table_ids": {A: [table], B: [table]}}) == [
        'privateRouteTableIds.us-east-1b = "<output>": route table given twice (also under '
        "us-east-1a). Fix: give each route table once, under the AZ of its subnets"]
    settings = nat_instances_settings("n", {**EXISTING, "vpc_id": Eventual(),
                                            "public_subnet_ids": {A: Eventual(), B: Eventual()},
                                            "private_route_table_ids": {A: [Eventual()],
                                                                        B: [Eventual()]}})
    assert settings.availability_zones == (A, B)


def test_options_with_other_tags() -> None:
    tagged = NatOptions(single_nat=True).with_tags({"owner": "me"})
    assert tagged == NatOptions(single_nat=True, tags={"owner": "me"})


def test_targets_given_are_kept_as_a_tuple() -> None:
    settings = nat_instances_settings("n", {**EXISTING, "high_availability": {
        "enabled": True, "health_check_targets": ["example.com:443"]}})
    assert settings.options.high_availability.health_check_targets == ("example.com:443",)


def test_a_string_option_given_another_type() -> None:
    with pytest.raises(ArgumentsError) as raised:
        nat_instances_settings("n", {**EXISTING, "access": {"ssh_cidr": 24}})
    assert raised.value.problems == [
        "access.sshCidr = 24: not a string. Fix: give a string"]
