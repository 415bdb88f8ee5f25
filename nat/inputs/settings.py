"""The components' arguments, checked and given their defaults: pure logic, no Pulumi resources.

`nat_instances_settings` and `nat_instance_vpc_settings` take the args dicts as any caller
passes them (a Python program, or another language through the provider, where numbers arrive
as floats) and return frozen settings, or raise `ArgumentsError` naming every bad field. The
stack-config reader (nat/inputs/config.py) runs the same readers with its own key names and
hands the components these settings: each input is checked once, where it enters.

Each option's type, default, bounds and check come from the table (nat/inputs/options.py);
this module adds the rules between options and builds the typed settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from typing import Any, cast

from nat.inputs import options, validation
from nat.inputs.instance_types import architecture_by_name
from nat.inputs.options import OPTIONS, Check, Option
from nat.inputs.tuning import TuningOverrides
from nat.inputs.validation import AWS_MAX_PREFIX, AWS_MIN_PREFIX, Problems

DEFAULT_VPC_CIDR: str = options.option("vpc_cidr", "NatInstanceVpc").default
# Derived subnets are the VPC prefix + 4: room for 8 public and 8 private subnets.
DERIVED_SUBNET_BITS = 4
MAX_AZ_COUNT: int = options.AZ_COUNT.maximum or 6  # the largest region (us-east-1) has 6


@dataclass(frozen=True)
class InstanceSettings:
    instance_type: str = options.default("instance.instance_type")
    ami_id: str | None = None
    key_name: str | None = None
    use_elastic_ip: bool = options.default("instance.use_elastic_ip")
    enable_ssm: bool = options.default("instance.enable_ssm")
    public_addresses: int = options.default("instance.public_addresses")
    elastic_ip_allocation_ids: tuple[str, ...] | None = None  # the caller's own, AZ by AZ
    tuning: TuningOverrides = field(default_factory=TuningOverrides)

    @property
    def architecture(self) -> str:
        """By AWS's naming rule; the component asks AWS at deploy time."""
        return architecture_by_name(self.instance_type) or "x86_64"


@dataclass(frozen=True)
class AccessSettings:
    ssh_cidr: IPv4Network | None = None
    enable_test_rules: bool = options.default("access.enable_test_rules")


@dataclass(frozen=True)
class HighAvailabilitySettings:
    enabled: bool = options.default("high_availability.enabled")
    health_check_targets: tuple[str, ...] = options.default(
        "high_availability.health_check_targets")
    failback_after_seconds: int = options.default("high_availability.failback_after_seconds")
    keep_connections: bool = options.default("high_availability.keep_connections")


@dataclass(frozen=True)
class MonitoringSettings:
    enabled: bool = options.default("monitoring.enabled")
    namespace: str = options.default("monitoring.namespace")
    detailed_metrics: bool = options.default("monitoring.detailed_metrics")
    publish_interval_seconds: int = options.default("monitoring.publish_interval_seconds")
    alarms: bool = options.default("monitoring.alarms")
    dashboard: bool = options.default("monitoring.dashboard")
    alarm_topic_arn: str | None = None
    create_alarm_topic: bool = options.default("monitoring.create_alarm_topic")


@dataclass(frozen=True)
class NatOptions:
    """What NatInstances and NatInstanceVpc share: everything about the NATs but the wiring."""

    single_nat: bool = options.default("single_nat")
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    high_availability: HighAvailabilitySettings = field(
        default_factory=HighAvailabilitySettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    tags: Mapping[str, str] = field(default_factory=dict)

    def with_tags(self, tags: Mapping[str, str]) -> NatOptions:
        return replace(self, tags=dict(tags))


@dataclass(frozen=True)
class Wiring:
    """Where NatInstances puts its NATs: resource ids, plain strings or Pulumi outputs (known
    at deploy time), so typed as `Any` here. AZ → public subnet of its NAT; AZ → the route
    tables of its private subnets."""

    vpc_id: Any
    public_subnet_ids: Mapping[str, Any]
    private_route_table_ids: Mapping[str, tuple[Any, ...]]
    # ids of resources the caller made right here (NatInstanceVpc's own): nothing to ask AWS
    known_good: bool = False


@dataclass(frozen=True)
class NatLayerSettings:
    availability_zones: tuple[str, ...]
    vpc_cidrs: tuple[IPv4Network, ...]
    private_cidrs: tuple[IPv4Network, ...]
    options: NatOptions
    wiring: Wiring | None = None  # None only where no resource is made (the plan's reading)

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


def component_problems(component: str, name: str,
                       label: Callable[[str], str] = validation.camel_case) -> Problems:
    """Problems named the way the caller spells fields: the package schema's camelCase
    (dotted) unless `label` says otherwise (a Python caller's own keys)."""
    return Problems(f'invalid arguments for {component} "{name}"', label)


# --- options shared by both components -----------------------------------------------------------
def group(problems: Problems, container: Mapping[str, Any], path: str,
          fields: Sequence[str]) -> dict[str, Any]:
    """A nested args object (instance, access…): absent is empty; anything but a dict is wrong."""
    value = container.get(path.rsplit(".", 1)[-1])
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.fail(path, value, "not an object", f"give an object with fields like "
                      f"{problems.label(fields[0])}, or leave it out")
        return {}
    validation.unknown_fields(problems, dict(value), fields, prefix=f"{path}.")
    return dict(value)


def read_value(problems: Problems, entry: Option, value: object) -> Any:
    """One given value, checked as its table entry says; None (with a problem) when wrong."""
    if entry.kind == "boolean":
        return validation.boolean(problems, entry.path, value)
    if entry.kind == "integer":
        low, high = cast(int, entry.minimum), cast(int, entry.maximum)  # the table's test
        number = validation.integer(problems, entry.path, value, low, high)
        if number is not None and entry.multiple_of and number % entry.multiple_of:
            problems.fail(entry.path, number, f"not a multiple of {entry.multiple_of}",
                          f"use a multiple of {entry.multiple_of} from {low} to {high}")
            return None
        return number
    # strings and lists: each has its own check (a test of the table holds every one to it)
    return cast(Check, entry.check)(problems, entry.path, value)


def read_group(problems: Problems, container: Mapping[str, Any], path: str
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the group's values by field, checked, the table's default where not given or wrong;
    the group as given). Nested groups are left to their own reading."""
    members = [entry for entry in OPTIONS if entry.group == path and
               "NatInstances" in entry.components]
    given = group(problems, container, path, [entry.field for entry in members])
    values: dict[str, Any] = {}
    for entry in (member for member in members if member.kind != "object"):
        checked = None if given.get(entry.field) is None else \
            read_value(problems, entry, given[entry.field])
        values[entry.field] = entry.default if checked is None else checked
    return values, given


def read_options(problems: Problems, args: Mapping[str, Any]) -> NatOptions:
    single_nat = options.option("single_nat")
    single = args.get("single_nat")
    checked_single = None if single is None else read_value(problems, single_nat, single)
    instance, given_instance = read_group(problems, args, "instance")
    conntrack, _ = read_group(problems, given_instance, "instance.conntrack")
    access, _ = read_group(problems, args, "access")
    ssh_cidr = None if access["ssh_cidr"] is None else validation.ssh_cidr(
        problems, "access.ssh_cidr", access["ssh_cidr"], access["allow_ssh_from_anywhere"],
        "access.allow_ssh_from_anywhere")
    if instance["public_addresses"] > 1 and instance["use_elastic_ip"] is False:
        problems.fail("instance.public_addresses", instance["public_addresses"], "each "
                      "public address is an Elastic IP, and "
                      f"{problems.label('instance.use_elastic_ip')} is false",
                      f"leave {problems.label('instance.use_elastic_ip')} true, or give 1")
    if instance["elastic_ip_allocation_ids"] is not None:
        instance["elastic_ip_allocation_ids"] = tuple(instance["elastic_ip_allocation_ids"])
        if instance["use_elastic_ip"] is False:
            problems.fail("instance.elastic_ip_allocation_ids",
                          list(instance["elastic_ip_allocation_ids"]), "Elastic IPs given "
                          f"while {problems.label('instance.use_elastic_ip')} is false",
                          f"remove them, or leave {problems.label('instance.use_elastic_ip')} "
                          "true")
    high_availability = read_high_availability(problems, args, instance["use_elastic_ip"])
    if high_availability.keep_connections and instance["public_addresses"] > 1:
        problems.fail("instance.public_addresses", instance["public_addresses"], "keeping "
                      "connections moves one Elastic IP per AZ (this release)",
                      f"give 1, or turn {problems.label('high_availability.keep_connections')}"
                      " off")
    monitoring = read_monitoring(problems, args)
    tags = args.get("tags") or {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in tags.items()):
        problems.fail("tags", tags, "not a map of strings", 'give {"key": "value", ...}')
        tags = {}
    return NatOptions(
        single_nat=single_nat.default if checked_single is None else checked_single,
        instance=InstanceSettings(
            tuning=TuningOverrides.from_values(
                {name: value for name, value in conntrack.items() if value is not None}),
            **instance),
        access=AccessSettings(ssh_cidr=ssh_cidr, enable_test_rules=access["enable_test_rules"]),
        high_availability=high_availability,
        monitoring=monitoring,
        tags=dict(tags))


def read_high_availability(problems: Problems, args: Mapping[str, Any],
                           use_elastic_ip: bool) -> HighAvailabilitySettings:
    values, _ = read_group(problems, args, "high_availability")
    values["health_check_targets"] = tuple(values["health_check_targets"])
    if values["enabled"] and use_elastic_ip is False:
        problems.fail("instance.use_elastic_ip", False, "high availability keeps each AZ's "
                      "public address on a network interface that outlives its instances, so "
                      "it needs Elastic IPs", "leave it true, or turn "
                      f"{problems.label('high_availability.enabled')} off")
    if values["keep_connections"] and not values["enabled"]:
        problems.fail("high_availability.keep_connections", True, "connections move between "
                      "NATs only with high availability",
                      f"turn {problems.label('high_availability.enabled')} on, or this off")
    return HighAvailabilitySettings(**values)


def read_monitoring(problems: Problems, args: Mapping[str, Any]) -> MonitoringSettings:
    values, given = read_group(problems, args, "monitoring")
    enabled, alarms = values["enabled"], values["alarms"]
    # a setting that would do nothing is refused, not ignored
    alarm_switch = "enabled" if not enabled else "alarms"
    needs = [("detailed_metrics", values["detailed_metrics"], "enabled", enabled),
             ("dashboard", values["dashboard"], "enabled", enabled),
             ("alarm_topic_arn", values["alarm_topic_arn"] is not None, alarm_switch,
              alarms and enabled),
             ("create_alarm_topic", values["create_alarm_topic"], alarm_switch,
              alarms and enabled)]
    for key, used, switch, on in needs:
        if used and not on:
            problems.fail(f"monitoring.{key}", given.get(key), "has no effect while "
                          f"{problems.label('monitoring.' + switch)} is false", "remove it, or "
                          f"turn {problems.label('monitoring.' + switch)} on")
    if values["alarm_topic_arn"] is not None and values["create_alarm_topic"]:
        problems.fail("monitoring.create_alarm_topic", True, "a topic is also given in "
                      f"{problems.label('monitoring.alarm_topic_arn')}", "use one or the other")
    return MonitoringSettings(**values)


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
                              problems: Problems | None = None,
                              label: Callable[[str], str] = validation.camel_case
                              ) -> VpcSettings:
    """NatInstanceVpc's arguments, checked; ArgumentsError names every bad field."""
    problems = problems or component_problems("NatInstanceVpc", name, label)
    if not isinstance(args, Mapping):
        problems.fail_field("args", "not an object", "pass the arguments as an object")
        problems.raise_if_any()
    validation.unknown_fields(problems, dict(args), options.fields("", "NatInstanceVpc"))
    zones = availability_zones_field(problems, args)
    layout = read_vpc_layout(problems, args.get("vpc_cidr"), args.get("public_subnet_cidrs"),
                             args.get("private_subnet_cidrs"), len(zones or ()) or 1)
    nat_options = read_options(problems, args)
    if zones is not None:
        own_elastic_ips_count(problems, nat_options.instance,
                              1 if nat_options.single_nat else len(zones))
    problems.raise_if_any()
    assert zones is not None and layout is not None
    vpc, public, private = layout
    return VpcSettings(tuple(zones), vpc, public, private, nat_options)


def own_elastic_ips_count(problems: Problems, instance: InstanceSettings,
                          nat_count: int) -> None:
    """The caller's own Elastic IPs: publicAddresses for each NAT, no more, no fewer."""
    given = instance.elastic_ip_allocation_ids
    wanted = nat_count * instance.public_addresses
    if given is not None and len(given) != wanted:
        problems.fail("instance.elastic_ip_allocation_ids", list(given),
                      f"{len(given)} given, {nat_count} NAT{'s' if nat_count > 1 else ''} × "
                      f"{instance.public_addresses} address"
                      f"{'es' if instance.public_addresses > 1 else ''} need {wanted}",
                      f"give {wanted}, the NATs in AZ order")


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
def nat_instances_settings(name: str, args: Mapping[str, Any],
                           label: Callable[[str], str] = validation.camel_case
                           ) -> NatLayerSettings:
    """NatInstances' arguments, checked; ArgumentsError names every bad field.

    Ids given as plain strings must have their kind's shape; ids that are outputs of other
    resources are known only at deploy time (the component checks plain subnet ids with AWS).
    """
    problems = component_problems("NatInstances", name, label)
    if not isinstance(args, Mapping):
        problems.fail_field("args", "not an object", "pass the arguments as an object")
        problems.raise_if_any()
    validation.unknown_fields(problems, dict(args), options.fields("", "NatInstances"))
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
    nat_options = read_options(problems, args)
    if zones is not None:
        nat_zones = zones[:1] if nat_options.single_nat else zones
        own_elastic_ips_count(problems, nat_options.instance, len(nat_zones))
        public_subnets(problems, args.get("public_subnet_ids"), zones, nat_zones)
        route_tables(problems, args.get("private_route_table_ids"), zones)
    problems.raise_if_any()
    assert vpc_cidrs is not None and zones is not None
    wiring = Wiring(args["vpc_id"], dict(args["public_subnet_ids"]),
                    {zone: tuple(tables) for zone, tables in
                     args["private_route_table_ids"].items()})
    return NatLayerSettings(tuple(zones), tuple(vpc_cidrs), tuple(private_cidrs or vpc_cidrs),
                            nat_options, wiring)


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
    if not isinstance(value, Mapping):
        problems.fail(field_name, value, "not a map of AZ → value, known before deployment",
                      f'give a plain map like {{"{zones[0]}": ...}} (its values may be outputs)')
        return None
    strangers = [k for k in value if k not in zones]
    missing = [z for z in required if z not in value]
    if strangers:
        problems.fail(field_name, sorted(value), f"{strangers[0]!r} is not one of "
                      f"{problems.label('availability_zones')}",
                      f"key the map by {', '.join(zones)}")
    if missing:
        problems.fail(field_name, sorted(value), f"no entry for {', '.join(missing)}",
                      f"give one for each of {', '.join(required)} (the AZs must agree)")
    return None if strangers or missing else dict(value)


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
