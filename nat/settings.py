"""The components' arguments, checked and given their defaults: pure logic, no Pulumi resources.

`nat_instances_settings` and `nat_instance_vpc_settings` take the args dicts as any caller
passes them (a Python program, or another language through the provider, where numbers arrive
as floats) and return frozen settings, or raise `ArgumentsError` naming every bad field. The
stack-config reader (nat/config.py) runs the same field checks with its own key names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from nat import validation
from nat.instance_types import architecture_by_name
from nat.monitoring import DEFAULT_NAMESPACE, PUBLISH_INTERVAL
from nat.tuning import TUNING_KEYS, TuningOverrides
from nat.validation import AWS_MAX_PREFIX, AWS_MIN_PREFIX, Problems

DEFAULT_INSTANCE_TYPE = "t4g.nano"
DEFAULT_VPC_CIDR = "10.0.0.0/16"
# Derived subnets are the VPC prefix + 4: room for 8 public and 8 private subnets.
DERIVED_SUBNET_BITS = 4
MAX_AZ_COUNT = 6  # the largest AWS region (us-east-1) has 6 AZs

INSTANCE_FIELDS = ("instance_type", "ami_id", "key_name", "use_elastic_ip", "enable_ssm",
                   "conntrack")
ACCESS_FIELDS = ("ssh_cidr", "allow_ssh_from_anywhere", "enable_test_rules")
HA_FIELDS = ("enabled", "health_check_targets", "failback_after_seconds")
MONITORING_FIELDS = ("enabled", "namespace", "detailed_metrics", "publish_interval_seconds",
                     "alarms", "dashboard", "alarm_topic_arn", "create_alarm_topic")
OPTION_FIELDS = ("single_nat", "instance", "access", "high_availability", "monitoring", "tags")
DEFAULT_HEALTH_CHECK_TARGETS = ("checkip.amazonaws.com:443", "aws.amazon.com:443")
FAILBACK_AFTER = (10, 3600, 60)  # seconds: minimum, maximum, default
NAT_INSTANCES_FIELDS = ("vpc_id", "vpc_cidr_blocks", "availability_zones", "public_subnet_ids",
                        "private_route_table_ids", "private_cidr_blocks", *OPTION_FIELDS)
NAT_INSTANCE_VPC_FIELDS = ("availability_zones", "vpc_cidr", "public_subnet_cidrs",
                           "private_subnet_cidrs", *OPTION_FIELDS)


@dataclass(frozen=True)
class InstanceSettings:
    instance_type: str = DEFAULT_INSTANCE_TYPE
    ami_id: str | None = None
    key_name: str | None = None
    use_elastic_ip: bool = True
    enable_ssm: bool = True
    tuning: TuningOverrides = field(default_factory=TuningOverrides)

    @property
    def architecture(self) -> str:
        """By AWS's naming rule; the component asks AWS at deploy time."""
        return architecture_by_name(self.instance_type) or "x86_64"


@dataclass(frozen=True)
class AccessSettings:
    ssh_cidr: IPv4Network | None = None
    enable_test_rules: bool = False


@dataclass(frozen=True)
class HighAvailabilitySettings:
    enabled: bool = False
    health_check_targets: tuple[str, ...] = DEFAULT_HEALTH_CHECK_TARGETS
    failback_after: int = FAILBACK_AFTER[2]


@dataclass(frozen=True)
class MonitoringSettings:
    enabled: bool = True
    namespace: str = DEFAULT_NAMESPACE
    detailed_metrics: bool = False
    publish_interval: int = PUBLISH_INTERVAL[2]
    alarms: bool = True
    dashboard: bool = False
    alarm_topic_arn: str | None = None
    create_alarm_topic: bool = False


@dataclass(frozen=True)
class NatOptions:
    """What NatInstances and NatInstanceVpc share: everything about the NATs but the wiring."""

    single_nat: bool = False
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    high_availability: HighAvailabilitySettings = field(
        default_factory=HighAvailabilitySettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NatLayerSettings:
    availability_zones: tuple[str, ...]
    vpc_cidrs: tuple[IPv4Network, ...]
    private_cidrs: tuple[IPv4Network, ...]
    options: NatOptions

    @property
    def nat_zones(self) -> tuple[str, ...]:
        return self.availability_zones[:1] if self.options.single_nat else \
            self.availability_zones

    def nat_zone_for(self, zone: str) -> str:
        """The AZ whose NAT serves `zone`'s private route tables."""
        return zone if zone in self.nat_zones else self.nat_zones[0]


@dataclass(frozen=True)
class VpcSettings:
    availability_zones: tuple[str, ...]
    vpc_cidr: IPv4Network
    public_subnet_cidrs: tuple[IPv4Network, ...]
    private_subnet_cidrs: tuple[IPv4Network, ...]
    options: NatOptions

    @property
    def nat_layer(self) -> NatLayerSettings:
        """The guide's NAT layer: the VPC's one CIDR, the private subnets as its sources."""
        return NatLayerSettings(self.availability_zones, (self.vpc_cidr,),
                                self.private_subnet_cidrs, self.options)


def component_problems(component: str, name: str) -> Problems:
    """Problems named the way the package schema spells fields (camelCase, dotted)."""
    return Problems(f'invalid arguments for {component} "{name}"', validation.camel_case)


# --- options shared by both components -----------------------------------------------------------
def group(problems: Problems, container: Mapping[str, Any], path: str,
          fields: Sequence[str]) -> dict[str, Any]:
    """A nested args object (instance, access…): absent is empty; anything but a dict is wrong."""
    value = container.get(path.rsplit(".", 1)[-1])
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.fail(path, value, "not an object", f"give an object with fields like "
                      f"{validation.camel_case(fields[0])}, or leave it out")
        return {}
    validation.unknown_fields(problems, value, fields, prefix=f"{path}.")
    return value


def read_options(problems: Problems, args: Mapping[str, Any]) -> NatOptions:
    instance = group(problems, args, "instance", INSTANCE_FIELDS)
    access = group(problems, args, "access", ACCESS_FIELDS)

    def optional(values: Mapping[str, Any], path: str, read: Any, *extra: Any) -> Any:
        key = path.rsplit(".", 1)[-1]
        return None if values.get(key) is None else read(problems, path, values[key], *extra)

    instance_type = optional(instance, "instance.instance_type", validation.instance_type)
    conntrack = group(problems, instance, "instance.conntrack", [k.field for k in TUNING_KEYS])
    tuning_values = {}
    for key in TUNING_KEYS:
        if conntrack.get(key.field) is not None:
            number = validation.integer(problems, f"instance.conntrack.{key.field}",
                                        conntrack[key.field], key.minimum, key.maximum)
            if number is not None:
                tuning_values[key.field] = number

    allow_anywhere = optional(access, "access.allow_ssh_from_anywhere", validation.boolean)
    ssh_cidr = optional(access, "access.ssh_cidr", validation.ssh_cidr, bool(allow_anywhere),
                        "access.allow_ssh_from_anywhere")
    tags = args.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in tags.items()):
        problems.fail("tags", tags, "not a map of strings", 'give {"key": "value", ...}')
        tags = {}

    single_nat = optional(args, "single_nat", validation.boolean)
    use_elastic_ip = optional(instance, "instance.use_elastic_ip", validation.boolean)
    high_availability = read_high_availability(problems, args, use_elastic_ip)
    enable_ssm = optional(instance, "instance.enable_ssm", validation.boolean)
    test_rules = optional(access, "access.enable_test_rules", validation.boolean)
    return NatOptions(
        single_nat=bool(single_nat),
        instance=InstanceSettings(
            instance_type=instance_type or DEFAULT_INSTANCE_TYPE,
            ami_id=optional(instance, "instance.ami_id", validation.ami_id),
            key_name=optional(instance, "instance.key_name", validation.key_name),
            use_elastic_ip=True if use_elastic_ip is None else use_elastic_ip,
            enable_ssm=True if enable_ssm is None else enable_ssm,
            tuning=TuningOverrides.from_values(tuning_values)),
        access=AccessSettings(ssh_cidr=ssh_cidr, enable_test_rules=bool(test_rules)),
        high_availability=high_availability,
        monitoring=read_monitoring(problems, args),
        tags=dict(tags))


def read_high_availability(problems: Problems, args: Mapping[str, Any],
                           use_elastic_ip: bool | None) -> HighAvailabilitySettings:
    given = group(problems, args, "high_availability", HA_FIELDS)
    enabled = given.get("enabled") is not None and \
        validation.boolean(problems, "high_availability.enabled", given["enabled"]) is True
    targets: tuple[str, ...] = DEFAULT_HEALTH_CHECK_TARGETS
    if given.get("health_check_targets") is not None:
        listed = validation.endpoints(problems, "high_availability.health_check_targets",
                                      given["health_check_targets"])
        targets = tuple(listed) if listed else targets
    failback = FAILBACK_AFTER[2]
    if given.get("failback_after_seconds") is not None:
        failback = validation.integer(problems, "high_availability.failback_after_seconds",
                                      given["failback_after_seconds"], *FAILBACK_AFTER[:2]) \
            or failback
    if enabled and use_elastic_ip is False:
        problems.fail("instance.use_elastic_ip", False, "high availability keeps each AZ's "
                      "public address on a network interface that outlives its instances, so "
                      "it needs Elastic IPs", "leave it true, or turn "
                      f"{problems.label('high_availability.enabled')} off")
    return HighAvailabilitySettings(enabled, targets, failback)


def read_monitoring(problems: Problems, args: Mapping[str, Any]) -> MonitoringSettings:
    given = group(problems, args, "monitoring", MONITORING_FIELDS)

    def flag(key: str, default: bool) -> bool:
        if given.get(key) is None:
            return default
        value = validation.boolean(problems, f"monitoring.{key}", given[key])
        return default if value is None else value

    enabled, alarms = flag("enabled", True), flag("alarms", True)
    detailed, dashboard = flag("detailed_metrics", False), flag("dashboard", False)
    create_topic = flag("create_alarm_topic", False)
    namespace = DEFAULT_NAMESPACE if given.get("namespace") is None else \
        validation.metrics_namespace(problems, "monitoring.namespace", given["namespace"]) \
        or DEFAULT_NAMESPACE
    topic = None if given.get("alarm_topic_arn") is None else \
        validation.sns_topic_arn(problems, "monitoring.alarm_topic_arn", given["alarm_topic_arn"])
    interval = PUBLISH_INTERVAL[2]
    if given.get("publish_interval_seconds") is not None:
        where = "monitoring.publish_interval_seconds"
        number = validation.integer(problems, where, given["publish_interval_seconds"],
                                    *PUBLISH_INTERVAL[:2])
        if number is not None and number % 60:
            problems.fail(where, number, "not a whole number of minutes",
                          f"use a multiple of 60 from {PUBLISH_INTERVAL[0]} to "
                          f"{PUBLISH_INTERVAL[1]}")
        elif number is not None:
            interval = number
    # a setting that would do nothing is refused, not ignored
    alarm_switch = "enabled" if not enabled else "alarms"
    needs = [("detailed_metrics", detailed, "enabled", enabled),
             ("dashboard", dashboard, "enabled", enabled),
             ("alarm_topic_arn", topic is not None, alarm_switch, alarms and enabled),
             ("create_alarm_topic", create_topic, alarm_switch, alarms and enabled)]
    for key, used, switch, on in needs:
        if used and not on:
            problems.fail(f"monitoring.{key}", given.get(key), "has no effect while "
                          f"{problems.label('monitoring.' + switch)} is false", "remove it, or "
                          f"turn {problems.label('monitoring.' + switch)} on")
    if topic is not None and create_topic:
        problems.fail("monitoring.create_alarm_topic", True, "a topic is also given in "
                      f"{problems.label('monitoring.alarm_topic_arn')}", "use one or the other")
    return MonitoringSettings(enabled, namespace, detailed, interval, alarms, dashboard, topic,
                              create_topic)


# --- the guide's VPC -----------------------------------------------------------------------------
def derive_subnet_cidrs(vpc_cidr: IPv4Network, az_count: int) -> tuple[
        tuple[IPv4Network, ...], tuple[IPv4Network, ...]]:
    """Public subnets from the start of the VPC, private ones from its second half."""
    blocks = list(vpc_cidr.subnets(prefixlen_diff=DERIVED_SUBNET_BITS))
    half = len(blocks) // 2
    return tuple(blocks[:az_count]), tuple(blocks[half:half + az_count])


def read_vpc_layout(problems: Problems, vpc_value: object, public_value: object,
                    private_value: object, zone_count: int
                    ) -> tuple[IPv4Network, tuple[IPv4Network, ...],
                               tuple[IPv4Network, ...]] | None:
    """The VPC CIDR and one public and one private subnet per AZ, given or derived."""
    vpc_text = validation.text(problems, "vpc_cidr", vpc_value) if vpc_value is not None \
        else DEFAULT_VPC_CIDR
    vpc = validation.network(problems, "vpc_cidr", vpc_text, AWS_MIN_PREFIX, AWS_MAX_PREFIX) \
        if vpc_text is not None else None

    def subnets(field_name: str, value: object) -> list[IPv4Network] | None:
        if value is None:
            return None
        items = validation.string_list(problems, field_name, value)
        if items is None:
            return None
        if len(items) != zone_count:
            problems.fail(field_name, items, f"{len(items)} subnet"
                          f"{'' if len(items) == 1 else 's'} for {zone_count} AZ"
                          f"{'' if zone_count == 1 else 's'}",
                          f"give exactly one CIDR per AZ ({zone_count}), or leave it out to "
                          "derive them")
            return None
        return validation.networks(problems, field_name, items, AWS_MIN_PREFIX, AWS_MAX_PREFIX)

    public = subnets("public_subnet_cidrs", public_value)
    private = subnets("private_subnet_cidrs", private_value)
    if vpc is None:
        return None
    if (public_value is None or private_value is None) and \
            vpc.prefixlen > AWS_MAX_PREFIX - DERIVED_SUBNET_BITS:
        missing = " and ".join(problems.label(k) for k, v in (
            ("public_subnet_cidrs", public_value), ("private_subnet_cidrs", private_value))
            if v is None)
        problems.fail("vpc_cidr", str(vpc), f"too small to split into subnets of "
                      f"/{AWS_MAX_PREFIX} or larger", f"use a VPC of "
                      f"/{AWS_MAX_PREFIX - DERIVED_SUBNET_BITS} or larger, or set {missing}")
        return None
    derived_public, derived_private = derive_subnet_cidrs(vpc, zone_count)
    public_final = tuple(public) if public_value is not None and public is not None else (
        derived_public if public_value is None else None)
    private_final = tuple(private) if private_value is not None and private is not None else (
        derived_private if private_value is None else None)
    if public_final is None or private_final is None:
        return None
    labelled = [("public_subnet_cidrs", s) for s in public_final] + \
               [("private_subnet_cidrs", s) for s in private_final]
    before = len(problems.found)
    validation.inside(problems, labelled, [vpc], "vpc_cidr")
    validation.overlaps(problems, labelled)
    if len(problems.found) != before:
        return None
    return vpc, public_final, private_final


def nat_instance_vpc_settings(name: str, args: Mapping[str, Any],
                              problems: Problems | None = None) -> VpcSettings:
    """NatInstanceVpc's arguments, checked; ArgumentsError names every bad field."""
    problems = problems or component_problems("NatInstanceVpc", name)
    if not isinstance(args, Mapping):
        problems.fail_field("args", "not an object", "pass the arguments as an object")
        problems.raise_if_any()
    validation.unknown_fields(problems, dict(args), NAT_INSTANCE_VPC_FIELDS)
    zones = availability_zones_field(problems, args)
    layout = read_vpc_layout(problems, args.get("vpc_cidr"), args.get("public_subnet_cidrs"),
                             args.get("private_subnet_cidrs"), len(zones or ()) or 1)
    options = read_options(problems, args)
    problems.raise_if_any()
    assert zones is not None and layout is not None
    vpc, public, private = layout
    return VpcSettings(tuple(zones), vpc, public, private, options)


def availability_zones_field(problems: Problems, args: Mapping[str, Any]) -> list[str] | None:
    if args.get("availability_zones") is None:
        problems.fail_field("availability_zones", "missing",
                            'list the AZs, e.g. ["us-east-1a", "us-east-1b"]')
        return None
    zones = validation.availability_zones(problems, "availability_zones",
                                          args["availability_zones"])
    if zones is not None and len(zones) > MAX_AZ_COUNT:
        problems.fail("availability_zones", zones, f"{len(zones)} AZs; at most {MAX_AZ_COUNT}",
                      f"list at most {MAX_AZ_COUNT}")
        return None
    return zones


# --- NAT instances for an existing VPC -----------------------------------------------------------
def nat_instances_settings(name: str, args: Mapping[str, Any]) -> NatLayerSettings:
    """NatInstances' arguments, checked; ArgumentsError names every bad field.

    Ids given as plain strings must have their kind's shape; ids that are outputs of other
    resources are known only at deploy time (the component checks plain subnet ids with AWS).
    """
    problems = component_problems("NatInstances", name)
    if not isinstance(args, Mapping):
        problems.fail_field("args", "not an object", "pass the arguments as an object")
        problems.raise_if_any()
    validation.unknown_fields(problems, dict(args), NAT_INSTANCES_FIELDS)
    if args.get("vpc_id") is None:
        problems.fail_field("vpc_id", "missing", "give the VPC's id")
    else:
        validation.resource_id(problems, "vpc_id", args["vpc_id"], "vpc", "VPC")

    vpc_cidrs = cidr_blocks(problems, args, "vpc_cidr_blocks", required=True)
    private_cidrs = cidr_blocks(problems, args, "private_cidr_blocks", required=False)
    if vpc_cidrs and private_cidrs:
        validation.inside(problems, [("private_cidr_blocks", c) for c in private_cidrs],
                          vpc_cidrs, "vpc_cidr_blocks")
    zones = availability_zones_field(problems, args)
    options = read_options(problems, args)
    if zones is not None:
        nat_zones = zones[:1] if options.single_nat else zones
        public_subnets(problems, args.get("public_subnet_ids"), zones, nat_zones)
        route_tables(problems, args.get("private_route_table_ids"), zones)
    problems.raise_if_any()
    assert vpc_cidrs is not None and zones is not None
    return NatLayerSettings(tuple(zones), tuple(vpc_cidrs), tuple(private_cidrs or vpc_cidrs),
                            options)


def cidr_blocks(problems: Problems, args: Mapping[str, Any], field_name: str,
                required: bool) -> list[IPv4Network] | None:
    value = args.get(field_name)
    if value is None:
        if required:
            problems.fail_field(field_name, "missing",
                                'list the VPC\'s IPv4 CIDRs, e.g. ["10.0.0.0/16"]')
        return None
    blocks = validation.networks(problems, field_name, value, AWS_MIN_PREFIX, AWS_MAX_PREFIX)
    if blocks is None:
        return None
    if not blocks:
        problems.fail(field_name, value, "empty list", "list at least one CIDR")
        return None
    validation.overlaps(problems, [(field_name, b) for b in blocks])
    return blocks


def keyed_by_zone(problems: Problems, field_name: str, value: object, zones: Sequence[str],
                  required: Sequence[str]) -> dict[str, Any] | None:
    """A plain map keyed by AZ: every required AZ present, no key outside the AZ list."""
    if value is None:
        problems.fail_field(field_name, "missing", f"map each of {', '.join(required)} to ids")
        return None
    if not isinstance(value, dict):
        problems.fail(field_name, value, "not a map of AZ → value, known before deployment",
                      f'give a plain map like {{"{zones[0]}": ...}} (its values may be outputs)')
        return None
    strangers = [k for k in value if k not in zones]
    missing = [z for z in required if z not in value]
    if strangers:
        problems.fail(field_name, sorted(value), f"{strangers[0]!r} is not one of "
                      "availabilityZones", f"key the map by {', '.join(zones)}")
    if missing:
        problems.fail(field_name, sorted(value), f"no entry for {', '.join(missing)}",
                      f"give one for each of {', '.join(required)} (the AZs must agree)")
    return None if strangers or missing else value


def public_subnets(problems: Problems, value: object, zones: Sequence[str],
                   nat_zones: Sequence[str]) -> None:
    subnets = keyed_by_zone(problems, "public_subnet_ids", value, zones, nat_zones)
    for zone in zones:  # in the caller's AZ order: maps may arrive in any order
        if subnets and zone in subnets:
            validation.resource_id(problems, f"public_subnet_ids.{zone}", subnets[zone],
                                   "subnet", "public subnet")


def route_tables(problems: Problems, value: object, zones: Sequence[str]) -> None:
    tables = keyed_by_zone(problems, "private_route_table_ids", value, zones, zones)
    seen: dict[object, str] = {}
    for zone in zones if tables else ():  # in the caller's AZ order
        ids = tables[zone]  # type: ignore[index]
        where = f"private_route_table_ids.{zone}"
        if not isinstance(ids, (list, tuple)) or not ids:
            problems.fail(where, ids, "not a non-empty list of route table ids",
                          f"list the route tables of {zone}'s private subnets")
            continue
        for table in ids:
            validation.resource_id(problems, where, table, "rtb", "route table")
            # the same id, or the same output object, given twice would get two routes
            key = table if isinstance(table, str) else id(table)
            if key in seen:
                problems.fail(where, table if isinstance(table, str) else "<output>",
                              f"route table given twice (also under {seen[key]})",
                              "give each route table once, under the AZ of its subnets")
            seen[key] = zone
