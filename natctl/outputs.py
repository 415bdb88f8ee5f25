"""A stack's outputs (what `pulumi stack output --json` prints), checked whole before any AWS call.

Pure logic. `stack_outputs` takes the parsed JSON document and returns `StackOutputs`, or
raises `InputError` naming every key that is missing, of the wrong type, of the wrong shape
(an id of another kind, a malformed CIDR), or inconsistent with the others (an AZ in one map
and not in another). The commands that read a deployed stack (verify, status) start here, so
no document, whatever its shape, reaches AWS half-understood.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

from nat.inputs.validation import AZ_NAME_PATTERN, ID_PATTERN
from nat.outputs import MonitoringOutputs, StackOutputs

__all__ = ["InputError", "StackOutputs", "parse_outputs", "stack_outputs"]

FIX = "Fix: pass `pulumi stack output --json` of a stack of this project, unedited"


class InputError(ValueError):
    """Bad outputs, stack or options: nothing was inspected or changed."""


class _Reader:
    def __init__(self, document: Mapping[str, Any], source: str) -> None:
        self.document = document
        self.source = source
        self.problems: list[str] = []

    def fail(self, key: str, why: str) -> None:
        self.problems.append(f"{key}: {why}")

    def has(self, key: str, required: bool = True) -> bool:
        if key in self.document:
            return True
        if required:
            self.fail(key, "missing")
        return False

    def id_of(self, key: str, value: object, prefix: str, kind: str) -> str | None:
        if not isinstance(value, str) or \
                not re.fullmatch(ID_PATTERN.format(prefix=prefix), value):
            article = "an" if kind[0] in "aeiou" else "a"
            self.fail(key, f"{shown(value)} is not {article} {kind} id ({prefix}-…)")
            return None
        return value

    def cidr(self, key: str, value: object) -> IPv4Network | None:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            return IPv4Network(value)  # strict: host bits set is wrong too
        except ValueError:
            self.fail(key, f"{shown(value)} is not an IPv4 CIDR like 10.0.128.0/20")
            return None

    def address(self, key: str, value: object) -> str | None:
        try:
            if not isinstance(value, str):
                raise ValueError
            ipaddress.IPv4Address(value)
            return value
        except ValueError:
            self.fail(key, f"{shown(value)} is not an IPv4 address")
            return None

    def boolean(self, key: str, default: bool | None = None) -> bool:
        if key not in self.document and default is not None:
            return default
        value = self.document.get(key)
        if not isinstance(value, bool):
            self.fail(key, f"{shown(value)} is not true or false" if key in self.document
                      else "missing")
            return False
        return value

    def zone_map(self, key: str, zones: list[str], keys: list[str] | None = None,
                 required: bool = True) -> dict[str, Any]:
        """A map keyed by exactly `keys` (default: every AZ)."""
        if not self.has(key, required):
            return {}
        value = self.document[key]
        expected = zones if keys is None else keys
        if not isinstance(value, dict):
            self.fail(key, f"{shown(value)} is not a map of AZ → value")
            return {}
        strangers = sorted(str(k) for k in value if k not in zones)
        missing = [z for z in expected if z not in value]
        if strangers:
            self.fail(key, f"{', '.join(strangers)} is not one of availability_zones "
                      f"({', '.join(zones)})")
        if missing:
            self.fail(key, f"no entry for {', '.join(missing)}: every map must cover the same "
                      "AZs, or that AZ would go unchecked")
        return {k: v for k, v in value.items() if k in zones}


def shown(value: object) -> str:
    """A value as the user wrote it, short: JSON, or what kind of thing it is."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = ""
    if text and len(text) <= 60:
        return text
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'map'} of {len(value)} items"
    return text[:57] + "…" if text else f"a {type(value).__name__}"


def stack_outputs(document: object, source: str) -> StackOutputs:
    """The outputs, checked whole; InputError lists every problem."""
    if not isinstance(document, dict):
        raise InputError(f"{source} is JSON but not an object of stack outputs. {FIX}")
    read = _Reader(document, source)
    zones: list[str] = []
    if read.has("availability_zones"):
        value = document["availability_zones"]
        if not isinstance(value, list) or not value or \
                not all(isinstance(z, str) and AZ_NAME_PATTERN.fullmatch(z) for z in value):
            read.fail("availability_zones", f"{shown(value)} is not a non-empty list of AZ "
                      "names like us-east-1a")
        elif len(set(value)) != len(value):
            read.fail("availability_zones", "lists an AZ twice")
        else:
            zones = list(value)
    if not zones:  # nothing else can be checked against the AZs
        raise InputError(f"{source} is not the outputs of a nat-instance-vpc stack:\n  - "
                         + "\n  - ".join(read.problems) + f"\n{FIX}")

    def single(key: str, prefix: str, kind: str) -> str:
        return (read.id_of(key, document[key], prefix, kind) or "") if read.has(key) else ""

    def ids(key: str, prefix: str, kind: str, keys: list[str] | None = None,
            required: bool = True) -> dict[str, str]:
        found = {}
        for zone, value in read.zone_map(key, zones, keys, required).items():
            checked = read.id_of(f"{key}.{zone}", value, prefix, kind)
            if checked:
                found[zone] = checked
        return found

    vpc_id = single("vpc_id", "vpc", "VPC")
    igw = single("internet_gateway_id", "igw", "internet gateway")
    group = single("security_group_id", "sg", "security group")
    public = ids("public_subnet_ids", "subnet", "subnet")
    private = ids("private_subnet_ids", "subnet", "subnet")
    tables = ids("private_route_table_ids", "rtb", "route table")
    cidrs = {}
    for zone, value in read.zone_map("private_subnet_cidrs", zones).items():
        parsed = read.cidr(f"private_subnet_cidrs.{zone}", value)
        if parsed:
            cidrs[zone] = parsed
    ssh = None
    if read.has("ssh_cidr") and document["ssh_cidr"] is not None:
        ssh = read.cidr("ssh_cidr", document["ssh_cidr"])
    test_rules = read.boolean("test_rules_enabled")
    elastic_ips = read.boolean("elastic_ips")
    high_availability = read.boolean("high_availability", default=False)  # 0.1: absent
    keep_connections = read.boolean("keep_connections", default=False)  # before 16: absent

    # which AZ's NAT serves each private subnet (0.1 stacks say it by instance id)
    nat_zone_for: dict[str, str] = {}
    if "nat_zone_for_private_subnet" in document:
        for zone, value in read.zone_map("nat_zone_for_private_subnet", zones).items():
            if not isinstance(value, str) or value not in zones:
                read.fail(f"nat_zone_for_private_subnet.{zone}",
                          f"{shown(value)} is not one of availability_zones")
            else:
                nat_zone_for[zone] = value
    nat_zones = sorted(set(nat_zone_for.values()), key=zones.index)
    instance_ids: dict[str, str] = {}
    groups: dict[str, str] = {}
    if high_availability:
        if not nat_zone_for:
            read.fail("nat_zone_for_private_subnet", "missing (high availability stacks have "
                      "it)")
        for zone, value in read.zone_map("auto_scaling_group_names", zones, nat_zones).items():
            if not isinstance(value, str) or not value or len(value) > 255:
                read.fail(f"auto_scaling_group_names.{zone}", f"{shown(value)} is not an "
                          "Auto Scaling group name")
            else:
                groups[zone] = value
        interfaces = ids("nat_network_interface_ids", "eni", "network interface", nat_zones)
    else:
        owners: dict[str, str] = {}
        given = document.get("nat_instance_ids")
        present = [z for z in zones if isinstance(given, dict) and z in given]
        for zone, value in read.zone_map("nat_instance_ids", zones,
                                         nat_zones if nat_zone_for else present or zones[:1]
                                         ).items():
            checked = read.id_of(f"nat_instance_ids.{zone}", value, "i", "instance")
            if checked:
                instance_ids[zone] = checked
                owners[checked] = zone
        if not nat_zone_for and read.has("nat_for_private_subnet"):
            for zone, value in read.zone_map("nat_for_private_subnet", zones).items():
                if not isinstance(value, str) or value not in owners:
                    read.fail(f"nat_for_private_subnet.{zone}", f"{shown(value)} is none of "
                              "nat_instance_ids")
                else:
                    nat_zone_for[zone] = owners[value]
        nat_zones = sorted(set(nat_zone_for.values()) | set(instance_ids), key=zones.index)
        interfaces = ids("nat_network_interface_ids", "eni", "network interface",
                         nat_zones, required=False)
    addresses = {}
    for zone, value in read.zone_map("nat_public_ips", zones, nat_zones).items():
        checked = read.address(f"nat_public_ips.{zone}", value)
        if checked:
            addresses[zone] = checked
    address_lists = {zone: [address] for zone, address in addresses.items()}
    if read.has("nat_public_ip_lists", required=False):  # added with publicAddresses
        for zone, value in read.zone_map("nat_public_ip_lists", zones, nat_zones).items():
            if not isinstance(value, list) or not value:
                read.fail(f"nat_public_ip_lists.{zone}", f"{shown(value)} is not a list of "
                          "addresses")
                continue
            listed = [read.address(f"nat_public_ip_lists.{zone}[{i}]", item)
                      for i, item in enumerate(value)]
            if all(listed) and listed[0] != addresses.get(zone, listed[0]):
                read.fail(f"nat_public_ip_lists.{zone}", f"starts with {listed[0]}, not with "
                          f"nat_public_ips.{zone} {addresses[zone]}")
            address_lists[zone] = [item for item in listed if item]
    if read.problems:
        count = len(read.problems)
        raise InputError(f"{source} is not a usable nat-instance-vpc stack output "
                         f"({count} problem{'s' if count > 1 else ''}):\n  - "
                         + "\n  - ".join(read.problems) + f"\n{FIX}")
    return StackOutputs(
        vpc_id=vpc_id, availability_zones=tuple(zones), internet_gateway_id=igw,
        public_subnet_ids=public, private_subnet_ids=private, private_subnet_cidrs=cidrs,
        private_route_table_ids=tables, security_group_id=group, ssh_cidr=ssh,
        test_rules_enabled=test_rules, elastic_ips=elastic_ips,
        high_availability=high_availability, keep_connections=keep_connections,
        nat_zone_for_private_subnet=nat_zone_for,
        nat_public_ips=addresses, nat_public_ip_lists=address_lists,
        nat_instance_ids=instance_ids,
        nat_network_interface_ids=interfaces, auto_scaling_group_names=groups,
        nat_for_private_subnet={zone: instance_ids[nat_zone] for zone, nat_zone in
                                nat_zone_for.items() if nat_zone in instance_ids},
        **_later_additions(document))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _later_additions(document: Mapping[str, Any]) -> dict[str, Any]:
    """What later versions added and only some commands need (`status`): kept when well
    formed, left empty otherwise, for the command that needs it to name."""
    sizes = document.get("connection_table_sizes")
    well_formed_sizes = isinstance(sizes, dict) and bool(sizes) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in sizes.items())
    watch = document.get("monitoring")
    monitoring = None
    if isinstance(watch, dict) and isinstance(watch.get("namespace"), str):
        names = watch.get("alarm_names")
        monitoring = MonitoringOutputs(
            namespace=watch["namespace"], group=_text(watch.get("group")),
            detailed_metrics=watch.get("detailed_metrics") is True,
            instance_type=_text(watch.get("instance_type")),
            alarm_names={zone: [n for n in listed if isinstance(n, str)]
                         for zone, listed in names.items() if isinstance(listed, list)}
            if isinstance(names, dict) else {},
            alarm_topic_arn=_text(watch.get("alarm_topic_arn")),
            dashboard_name=_text(watch.get("dashboard_name")))
    return {"vpc_cidr": _text(document.get("vpc_cidr")),
            "public_route_table_id": _text(document.get("public_route_table_id")),
            "connection_table_sizes": dict(sizes) if well_formed_sizes else {},  # type: ignore[arg-type]
            "monitoring": monitoring}


def parse_outputs(text: str, source: str) -> StackOutputs:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" ({error.msg} at line {error.lineno}, column {error.colno})" \
            if isinstance(error, json.JSONDecodeError) else ""
        raise InputError(f"{source} is not valid JSON{where}. Fix: pass the output of "
                         "`pulumi stack output --json`") from None
    return stack_outputs(document, source)
