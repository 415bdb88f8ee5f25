"""`python -m natctl verify`: the guide's test and troubleshooting list, run against a live stack.

The stack's outputs are checked whole first (natctl/outputs.py: nothing half-understood goes
to AWS). Then the account is read with boto3, read-only (the optional --connectivity sends SSM
commands): per AZ, each check is PASS, FAIL with the cause and the command that repairs it, or
DEGRADED (with high availability, an AZ failed over to another AZ's NAT: working, not as
designed).

Drift made outside Pulumi is repaired by `pulumi up --refresh`: Pulumi compares with its
recorded state, so a plain `pulumi up` does not see it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network
from typing import Any

from nat.design.rules import ANYWHERE, NAT_SECURITY_GROUP, SecurityGroupRule, expand_rules
from nat.design.userdata import UserDataError, decode_user_data, parse_user_data
from natctl.nacl import (
    PROTOCOL_NUMBERS,
    Blocked,
    blocked,
    nat_subnet_flows,
    private_subnet_flows,
)
from natctl.outputs import InputError, StackOutputs, parse_outputs, stack_outputs

__all__ = ["CheckResult", "InputError", "outputs_from_stack", "parse_outputs", "render_json",
           "render_table", "run_remote", "stack_outputs", "verify"]

STACK_WIDE = "(stack)"
CHECK_URL = "https://checkip.amazonaws.com"
REFRESH = "`pulumi up --refresh`"  # --refresh: Pulumi sees what changed outside it
GONE_STATES = ("terminated", "shutting-down")


@dataclass(frozen=True)
class CheckResult:
    zone: str
    check: str
    passed: bool
    detail: str
    degraded: bool = False  # passed, but not as designed (failed over)

    @property
    def status(self) -> str:
        return "DEGRADED" if self.degraded else "PASS" if self.passed else "FAIL"


# --- reading the stack outputs ------------------------------------------------------------------
def outputs_from_stack(stack: str, pulumi: str = "pulumi") -> StackOutputs:
    import subprocess
    try:
        result = subprocess.run([pulumi, "stack", "output", "--json", "--stack", stack],
                                capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InputError("--stack needs the Pulumi CLI on PATH. Fix: install it, or pipe the "
                         "outputs in: `pulumi stack output --json | python -m natctl verify -`"
                         ) from None
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise InputError(f"`pulumi stack output --json --stack {stack}` failed: "
                         f"{reason[-1] if reason else 'exit ' + str(result.returncode)}. "
                         "Fix: check the stack name with `pulumi stack ls`")
    return parse_outputs(result.stdout, f"stack {stack!r}")


# --- what the account holds -----------------------------------------------------------------------
@dataclass
class Account:
    """One read of everything the checks look at (few calls, filtered by the VPC)."""

    vpc: dict[str, Any] | None
    internet_gateway: dict[str, Any] | None
    subnets: dict[str, dict[str, Any]]
    route_tables: list[dict[str, Any]]
    network_acls: list[dict[str, Any]]
    nats: dict[str, list[dict[str, Any]]]  # NAT AZ → its instances (HA: the group's)
    missing_groups: list[str] = field(default_factory=list)  # HA: groups that do not exist
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # HA: NAT AZ → its group

    def live_interface(self, zone: str, interface: str) -> bool:
        """A running NAT of `zone` holds `interface` (a route to it leads somewhere)."""
        return any(instance["State"]["Name"] == "running" and
                   interface in (instance["InstanceId"], *(
                       i["NetworkInterfaceId"] for i in instance.get("NetworkInterfaces", [])))
                   for instance in self.nats.get(zone, []))

    def gateway_attached(self, vpc: str) -> bool:
        return self.internet_gateway is not None and any(
            a.get("VpcId") == vpc and a.get("State") in ("available", "attached")
            for a in self.internet_gateway.get("Attachments", []))

    def table_of(self, subnet_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the route table a subnet uses, whether it is its own association)."""
        for table in self.route_tables:
            if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
                return table, True
        main = next((t for t in self.route_tables
                     if any(a.get("Main") for a in t.get("Associations", []))), None)
        return main, False

    def acl_of(self, subnet_id: str) -> dict[str, Any] | None:
        return next((acl for acl in self.network_acls
                     if any(a.get("SubnetId") == subnet_id for a in acl.get("Associations", []))),
                    None)


def nat_instance_ids(session: Any, outputs: StackOutputs
                     ) -> tuple[dict[str, list[str]], list[str], dict[str, dict[str, Any]]]:
    """NAT AZ → its instances now (high availability: its Auto Scaling group's, but those on
    their way out), the AZs whose group does not exist, and NAT AZ → its group as AWS
    describes it. verify and status both ask."""
    instance_ids: dict[str, list[str]] = {zone: [] for zone in outputs.nat_zones}
    missing_groups = []
    described: dict[str, dict[str, Any]] = {}
    if outputs.high_availability:
        names = outputs.auto_scaling_group_names
        groups = session.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=sorted(set(names.values())))["AutoScalingGroups"]
        found = {g["AutoScalingGroupName"]: g for g in groups}
        for zone, name in names.items():
            if name not in found:
                missing_groups.append(zone)
                continue
            described[zone] = found[name]
            instance_ids[zone] = [i["InstanceId"] for i in found[name]["Instances"]
                                  if i.get("LifecycleState") not in ("Terminating",
                                                                     "Terminated")]
    else:
        for zone, instance in outputs.nat_instance_ids.items():
            instance_ids[zone] = [instance]
    return instance_ids, missing_groups, described


def read_account(session: Any, outputs: StackOutputs) -> Account:
    ec2 = session.client("ec2")
    by_vpc = [{"Name": "vpc-id", "Values": [outputs.vpc_id]}]
    vpcs = ec2.describe_vpcs(Filters=by_vpc)["Vpcs"]
    gateways = ec2.describe_internet_gateways(Filters=[
        {"Name": "internet-gateway-id", "Values": [outputs.internet_gateway_id]}])[
        "InternetGateways"]
    account = Account(
        vpc=vpcs[0] if vpcs else None, internet_gateway=gateways[0] if gateways else None,
        subnets={s["SubnetId"]: s for s in ec2.describe_subnets(Filters=by_vpc)["Subnets"]},
        route_tables=ec2.describe_route_tables(Filters=by_vpc)["RouteTables"],
        network_acls=ec2.describe_network_acls(Filters=by_vpc)["NetworkAcls"], nats={})
    instance_ids, account.missing_groups, account.groups = nat_instance_ids(session, outputs)
    wanted = sorted({i for ids in instance_ids.values() for i in ids})
    instances = {}
    if wanted:
        for reservation in ec2.describe_instances(Filters=[
                {"Name": "instance-id", "Values": wanted}])["Reservations"]:
            for instance in reservation["Instances"]:
                instances[instance["InstanceId"]] = instance
    account.nats = {zone: [instances[i] for i in ids if i in instances]
                    for zone, ids in instance_ids.items()}
    return account


# --- the checks -------------------------------------------------------------------------------
def check_stack(ec2: Any, outputs: StackOutputs, account: Account) -> list[CheckResult]:
    results = [CheckResult(STACK_WIDE, "VPC exists", account.vpc is not None,
                           f"{outputs.vpc_id} exists" if account.vpc else
                           f"{outputs.vpc_id} does not exist (deleted outside Pulumi?). Fix: "
                           "`pulumi refresh`, then `pulumi up` builds the stack again")]
    gateway = account.internet_gateway
    igw, vpc = outputs.internet_gateway_id, outputs.vpc_id
    attached = account.gateway_attached(vpc)
    if gateway is None:
        detail = (f"{igw} does not exist: nothing in the VPC reaches the internet. Fix: "
                  f"{REFRESH} (it creates the internet gateway again, attached, and the public "
                  "route to it)")
    elif attached:
        detail = f"{igw} is attached to {vpc}"
    else:
        detail = (f"{igw} is not attached to {vpc}: the public route leads nowhere (a "
                  f"blackhole). Fix: `aws ec2 attach-internet-gateway --internet-gateway-id "
                  f"{igw} --vpc-id {vpc}`, or {REFRESH} (it attaches it again)")
    results.append(CheckResult(STACK_WIDE, "internet gateway attached", attached, detail))
    return results


def describe_group_rules(ec2: Any, group_id: str, limit: int = 3) -> str:
    rules = sorted(live_rules(ec2, group_id, group_id), key=lambda r: r.direction)
    text = ", ".join(describe_rule(r) for r in rules[:limit])
    more = f", and {len(rules) - limit} more" if len(rules) > limit else ""
    return f"{group_id} ({text + more if rules else 'no rules'})"


def check_nat(ec2: Any, zone: str, instance: dict[str, Any], outputs: StackOutputs
              ) -> list[CheckResult]:
    def result(check: str, passed: bool, detail: str) -> CheckResult:
        return CheckResult(zone, check, passed, detail)

    instance_id = instance["InstanceId"]
    state = instance["State"]["Name"]
    results = []
    if state != "running":
        results.append(result("NAT instance running", False, f"{instance_id} is {state}. Fix: "
                              f"start it (`aws ec2 start-instances --instance-ids "
                              f"{instance_id}`)"))
    else:
        statuses = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
        bad = [f"{kind} {s[kind]['Status']}" for s in statuses
               for kind in ("InstanceStatus", "SystemStatus") if s[kind]["Status"] != "ok"]
        results.append(result(
            "NAT instance running", not bad,
            f"{instance_id} running, status checks ok" if not bad else
            f"{instance_id} is running but its status checks are not ok ({', '.join(bad)}). "
            "Fix: read its console log (EC2 console: Actions → Monitor → Get system log); "
            "reboot or replace it"))

    interfaces = instance.get("NetworkInterfaces", [])
    on = ([f"instance {instance_id}"] if instance.get("SourceDestCheck", True) else []) + [
        f"network interface {i['NetworkInterfaceId']}" for i in interfaces
        if i.get("SourceDestCheck", True)]
    results.append(result(
        "source/dest check off", not on,
        "off on the instance and all its network interfaces" if not on else
        f"source/dest check is on for {', '.join(on)}: the NAT drops traffic that is not its "
        "own. Fix: disable it (EC2 console: Actions → Networking → Change source/destination "
        "check), or: " + " ".join(
            f"`aws ec2 modify-instance-attribute --instance-id {instance_id} "
            "--no-source-dest-check`" if where.startswith("instance") else
            f"`aws ec2 modify-network-interface-attribute --network-interface-id "
            f"{where.split()[-1]} --no-source-dest-check`" for where in on)))

    results.append(check_public_address(ec2, zone, instance, outputs))
    results.extend(check_public_addresses(ec2, zone, instance, outputs))
    tokens = instance.get("MetadataOptions", {}).get("HttpTokens") or "unset"
    results.append(result("IMDSv2 required", tokens == "required",
                          "IMDSv2 required" if tokens == "required" else
                          f"IMDS tokens are {tokens}: IMDSv1 is allowed. Fix: `aws ec2 "
                          f"modify-instance-metadata-options --instance-id {instance_id} "
                          f"--http-tokens required`, or {REFRESH} (it sets tokens to required "
                          "again)"))

    # the rules in force are the union of every group on the instance and its interfaces
    groups = {g["GroupId"] for g in instance.get("SecurityGroups", [])} | {
        g["GroupId"] for i in interfaces for g in i.get("Groups", [])}
    ours = outputs.security_group_id
    extra = sorted(groups - {ours})
    if ours not in groups:
        detail = (f"the NAT's groups are {', '.join(sorted(groups)) or 'none'}, without the "
                  f"stack's {ours}. Fix: {REFRESH} (it puts the NAT back in {ours} alone)")
    elif extra:
        others = "; ".join(describe_group_rules(ec2, g) for g in extra)
        detail = (f"besides {ours}, the NAT has {others}: its rules are no longer the guide's "
                  "table. Fix: detach "
                  f"{'them' if len(extra) > 1 else 'it'} (`aws ec2 "
                  f"modify-network-interface-attribute --network-interface-id "
                  f"{interfaces[0]['NetworkInterfaceId'] if interfaces else '<interface>'} "
                  f"--groups {ours}`), or {REFRESH} (it leaves {ours} alone on the NAT)")
    else:
        detail = f"only {ours}, on the instance and every interface"
    results.append(result("security groups: only the stack's", ours in groups and not extra,
                          detail))
    return results


def check_public_address(ec2: Any, zone: str, instance: dict[str, Any],
                         outputs: StackOutputs) -> CheckResult:
    instance_id = instance["InstanceId"]
    public_ip = instance.get("PublicIpAddress") or next(
        (i["Association"]["PublicIp"] for i in instance.get("NetworkInterfaces", [])
         if i.get("Association", {}).get("PublicIp")), None)
    if not public_ip:
        return CheckResult(zone, "public address", False,
                           f"{instance_id} has no public address: it cannot reach the internet "
                           f"gateway. Fix: {REFRESH} (it re-associates the Elastic IP)")
    if not outputs.elastic_ips:
        return CheckResult(zone, "public address", True, f"public IP {public_ip}")
    expected = outputs.nat_public_ips.get(zone, "")
    interface = outputs.nat_network_interface_ids.get(zone)
    where = {"Name": "network-interface-id", "Values": [interface]} if \
        outputs.high_availability and interface else \
        {"Name": "instance-id", "Values": [instance_id]}
    addresses = [a["PublicIp"] for a in ec2.describe_addresses(Filters=[where])["Addresses"]]
    if expected in addresses and public_ip == expected:
        return CheckResult(zone, "public address", True, f"Elastic IP {expected}")
    carrier = address_carrier(ec2, expected, outputs) if outputs.keep_connections else None
    if carrier is not None and carrier[0] != zone:
        return CheckResult(zone, "public address", True, (
            f"failed over, degraded: the NAT leaves from {public_ip} (the stack's spare address) "
            f"while the NAT in {carrier[0]} carries {zone}'s Elastic IP {expected} with its "
            f"routes; it takes both back once it has been healthy for failbackAfterSeconds"),
            degraded=True)
    if not addresses:
        detail = (f"{public_ip} is not an Elastic IP: it changes when the instance stops. "
                  f"Fix: {REFRESH} (it re-associates the stack's Elastic IP {expected})")
    else:
        detail = (f"the NAT leaves from {public_ip}, not the stack's Elastic IP {expected}: "
                  f"partners' allow-lists will refuse it. Fix: {REFRESH} (it associates "
                  f"{expected} with the NAT again)")
    return CheckResult(zone, "public address", False, detail)


def address_carrier(ec2: Any, public_ip: str, outputs: StackOutputs
                    ) -> tuple[str, str] | None:
    """(AZ, private address) of the stack's NAT interface an Elastic IP is on, or None."""
    found = ec2.describe_addresses(Filters=[{"Name": "public-ip", "Values": [public_ip]}])[
        "Addresses"]
    zone_of = {eni: zone for zone, eni in outputs.nat_network_interface_ids.items()}
    if not found or found[0].get("NetworkInterfaceId") not in zone_of:
        return None
    return zone_of[found[0]["NetworkInterfaceId"]], str(found[0].get("PrivateIpAddress", ""))


def check_handover(ec2: Any, zone: str, outputs: StackOutputs) -> list[CheckResult]:
    """keepConnections: the AZ's Elastic IP is where its traffic is (its own NAT, or the NAT
    that took the AZ), and the AZ's NAT keeps its standby address for the AZ before it."""
    zones = outputs.nat_zones
    before = zones[zones.index(zone) - 1]
    interface = outputs.nat_network_interface_ids.get(zone, "")
    expected = outputs.nat_public_ips.get(zone, "")
    results = []
    carrier = address_carrier(ec2, expected, outputs)
    check = "AZ's address follows its traffic"
    if carrier is None:
        results.append(CheckResult(zone, check, False, (
            f"{zone}'s Elastic IP {expected} is on none of the stack's NAT interfaces: its "
            f"traffic cannot leave from it. Fix: {REFRESH} (it associates it with {interface} "
            "again)")))
    elif carrier[0] == zone:
        results.append(CheckResult(zone, check, True, f"{expected} on its own NAT "
                                                      f"({carrier[1]})"))
    else:
        results.append(CheckResult(zone, check, True, (
            f"failed over, degraded: {zone}'s Elastic IP {expected} is on the NAT in "
            f"{carrier[0]} ({carrier[1]}, its standby address), which carries {zone}'s routes "
            "and connections; both come back once the AZ's own NAT has been healthy for "
            "failbackAfterSeconds"), degraded=True))
    if interface and len(zones) > 1:
        found = ec2.describe_network_interfaces(NetworkInterfaceIds=[interface])[
            "NetworkInterfaces"]
        secondary = [a["PrivateIpAddress"] for a in (found[0]["PrivateIpAddresses"]
                                                      if found else []) if not a["Primary"]]
        results.append(CheckResult(zone, "standby address", bool(secondary), (
            f"{secondary[-1]} kept for {before}'s Elastic IP") if secondary else (
            f"{interface} has no standby private address: when the NAT in {zone} takes "
            f"{before}, {before}'s connections are reset and its traffic leaves from {zone}'s "
            f"address. Fix: {REFRESH} (it assigns the secondary private IP again)")))
    return results


def check_public_addresses(ec2: Any, zone: str, instance: dict[str, Any],
                           outputs: StackOutputs) -> list[CheckResult]:
    """With several public addresses: each Elastic IP on a private IP of the NAT's interface,
    and the NAT told to translate to all of them (NAT_PUBLIC_ADDRESSES in its user data)."""
    expected = outputs.nat_public_ip_lists.get(zone, [])
    if len(expected) < 2:
        return []
    interfaces = instance.get("NetworkInterfaces", [])
    primary = next((i for i in interfaces if i.get("Attachment", {}).get("DeviceIndex") == 0),
                   interfaces[0] if interfaces else {})
    interface_id = primary.get("NetworkInterfaceId", "")
    private_ips = {a["PrivateIpAddress"] for a in primary.get("PrivateIpAddresses", [])}
    found = {a["PublicIp"]: a for a in ec2.describe_addresses(
        Filters=[{"Name": "public-ip", "Values": expected}])["Addresses"]}
    wrong = []
    for address in expected:
        where = found.get(address, {})
        if where.get("NetworkInterfaceId") != interface_id or \
                where.get("PrivateIpAddress") not in private_ips:
            wrong.append(f"{address} is " + (
                "not an Elastic IP of this account" if not where else
                "not associated" if not where.get("NetworkInterfaceId") else
                f"on {where['NetworkInterfaceId']} {where.get('PrivateIpAddress', '')}"))
    results = [CheckResult(
        zone, "public addresses associated", not wrong,
        f"{len(expected)} Elastic IPs on {interface_id}'s addresses" if not wrong else
        f"{'; '.join(wrong)}, not on the NAT's interface {interface_id}: connections "
        f"translated to it go nowhere. Fix: {REFRESH} (it associates the stack's Elastic IPs "
        "again)")]
    told = translated_count(ec2, instance["InstanceId"])
    results.append(CheckResult(
        zone, "NAT translates to every address", told == len(expected),
        f"the NAT spreads connections over {told} addresses" if told == len(expected) else
        f"the NAT translates to {told if told is not None else 'an unknown number of'} "
        f"address(es), the stack has {len(expected)}: one destination then takes fewer "
        "connections, and an address goes unused. Fix: `pulumi up` (a changed count "
        "replaces the NAT with user data that names them all)"))
    return results


def translated_count(ec2: Any, instance_id: str) -> int | None:
    """NAT_PUBLIC_ADDRESSES in the instance's user data (1 when absent); None: unreadable."""
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    encoded = value.get("UserData", {}).get("Value")
    if not encoded:
        return None
    try:
        tuning = parse_user_data(decode_user_data(encoded)).tuning
    except (UserDataError, ValueError, OSError):
        return None
    counts = [int(line.split("=", 1)[1]) for line in tuning
              if line.startswith("NAT_PUBLIC_ADDRESSES=")]
    return counts[0] if counts else 1


def _target(route: Mapping[str, Any]) -> str:
    for key in ("NetworkInterfaceId", "InstanceId", "GatewayId", "NatGatewayId",
                "TransitGatewayId", "VpcPeeringConnectionId", "LocalGatewayId"):
        if route.get(key):
            return str(route[key])
    return "a target this check does not know"


def _default_route(table: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == ANYWHERE),
                None)


def check_public_route(zone: str, outputs: StackOutputs, account: Account) -> CheckResult:
    check = "public route → internet gateway"
    subnet = outputs.public_subnet_ids[zone]
    igw, vpc = outputs.internet_gateway_id, outputs.vpc_id
    if subnet not in account.subnets:
        return CheckResult(zone, check, False, f"public subnet {subnet} is not in {vpc} (deleted "
                           f"outside Pulumi?). Fix: {REFRESH} (it creates the subnet again, and "
                           "what stood in it)")
    table, own = account.table_of(subnet)
    if table is None:
        return CheckResult(zone, check, False, f"{vpc} has no route table for public subnet "
                           f"{subnet}. Fix: {REFRESH} (it creates the public route table again and "
                           "associates the subnet)")
    name = table["RouteTableId"] + ("" if own else " (the VPC's main table: the subnet has no "
                                    "table of its own)")
    route = _default_route(table)
    if route is None:
        return CheckResult(zone, check, False, f"route table {name} of public subnet {subnet} "
                           f"has no 0.0.0.0/0 route: the NAT cannot reach the internet. Fix: "
                           f"{REFRESH} (it creates 0.0.0.0/0 → {igw})")
    target, state = _target(route), route.get("State", "active")
    if target == igw and not account.gateway_attached(vpc):
        state = "blackhole"  # AWS says so; an emulator may not
    if target == igw and state == "active":
        return CheckResult(zone, check, True, f"{table['RouteTableId']}: 0.0.0.0/0 → {igw}")
    if target == igw:
        return CheckResult(zone, check, False, f"0.0.0.0/0 in {name} goes to {igw}, which is "
                           f"not attached to {vpc}: the route is a blackhole. Fix: `aws ec2 "
                           f"attach-internet-gateway --internet-gateway-id {igw} --vpc-id "
                           f"{vpc}`, or {REFRESH} (it attaches it again)")
    return CheckResult(zone, check, False, f"0.0.0.0/0 in {name} goes to {target}"
                       f"{' (a blackhole)' if state == 'blackhole' else ''}, not the stack's "
                       f"internet gateway {igw}. Fix: {REFRESH} (it points 0.0.0.0/0 back at "
                       f"{igw})")


def target_gone(ec2: Any, target: str, target_zone: str | None, account: Account) -> bool:
    """A route whose NAT is gone: AWS marks it a blackhole; asked directly as well (an
    emulator may not)."""
    if target_zone is not None:
        return not any(i["State"]["Name"] not in GONE_STATES
                       for i in account.nats.get(target_zone, []))
    if target.startswith("eni-"):
        interfaces = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [target]}])["NetworkInterfaces"]
        attachment = interfaces[0].get("Attachment") if interfaces else None
        if not attachment or attachment.get("Status") not in ("attached", "attaching"):
            return True
        target = str(attachment.get("InstanceId") or "")
    if target.startswith("i-"):
        reservations = ec2.describe_instances(Filters=[
            {"Name": "instance-id", "Values": [target]}])["Reservations"]
        return not any(i["State"]["Name"] not in GONE_STATES
                       for r in reservations for i in r["Instances"])
    return False


def check_private_route(ec2: Any, zone: str, outputs: StackOutputs,
                        account: Account) -> CheckResult:
    check = "private route → NAT in its AZ"
    subnet = outputs.private_subnet_ids[zone]
    ours = outputs.private_route_table_ids[zone]
    home = outputs.nat_zone_for_private_subnet[zone]
    if subnet not in account.subnets:
        return CheckResult(zone, check, False, f"private subnet {subnet} is not in "
                           f"{outputs.vpc_id} (deleted outside Pulumi?). Fix: {REFRESH} (it "
                           "creates the subnet again, with its route table)")
    table, own = account.table_of(subnet)
    if table is None or not own or table["RouteTableId"] != ours:
        association = next((a for t in account.route_tables for a in t.get("Associations", [])
                            if a.get("SubnetId") == subnet), None)
        now = "no table of its own (the VPC's main table applies)" if not own else (
            f"{table['RouteTableId'] if table else 'another table'}" +
            (" (the public route table)" if table and table["RouteTableId"] ==
             outputs.public_route_table_id else ""))
        command = (f"`aws ec2 replace-route-table-association --association-id "
                   f"{association['RouteTableAssociationId']} --route-table-id {ours}`"
                   if association else f"`aws ec2 associate-route-table --route-table-id "
                   f"{ours} --subnet-id {subnet}`")
        return CheckResult(zone, check, False, f"private subnet {subnet} is associated with "
                           f"{now}, not the stack's {ours}. Fix: associate it back: {command}, "
                           f"or {REFRESH} (it associates the subnet with {ours} again)")
    route = _default_route(table)
    nat_of: dict[str, str] = {}  # a route target (interface or instance) → its NAT's AZ
    for nat_zone, interface in outputs.nat_network_interface_ids.items():
        nat_of[interface] = nat_zone
    for nat_zone, instances in account.nats.items():
        for instance in instances:
            nat_of[instance["InstanceId"]] = nat_zone
            for interface in instance.get("NetworkInterfaces", []):
                nat_of.setdefault(interface["NetworkInterfaceId"], nat_zone)
    for nat_zone, instance_id in outputs.nat_instance_ids.items():
        nat_of.setdefault(instance_id, nat_zone)
    expected = outputs.nat_network_interface_ids.get(home) or outputs.nat_instance_ids.get(home, "")
    verb = "create-route" if route is None else "replace-route"
    repoint = REFRESH + (f" (it creates 0.0.0.0/0 → {expected})" if route is None else
                         f" (it points 0.0.0.0/0 back at {expected})")
    if outputs.high_availability:
        # Pulumi leaves this route to the agents: point it at a NAT that is there, the AZ's
        # own if it holds its interface, else a working NAT of another AZ
        live = [(home, expected)] + [
            (z, i) for z, i in outputs.nat_network_interface_ids.items() if z != home]
        usable = next(((z, i) for z, i in live if account.live_interface(z, i)), None)
        if usable is None:
            repoint = (f"no NAT of this stack holds its interface ({', '.join(i for _, i in live)}"
                       "): a route to one would be a blackhole. Get the NATs back first (see "
                       "the \"NAT instance running\" checks), then the agents set the routes")
        else:
            aside = "" if usable[0] == home else (
                f" (the NAT in {usable[0]}, until {home}'s is back on {expected}; the agents "
                "move it back then)")
            repoint = (f"`aws ec2 {verb} --route-table-id {ours} --destination-cidr-block "
                       f"0.0.0.0/0 --network-interface-id {usable[1]}`{aside}")
    if route is None:
        return CheckResult(zone, check, False, f"route table {ours} has no 0.0.0.0/0 route: "
                           f"private hosts cannot reach the internet. Fix: {repoint}")
    target = _target(route)
    target_zone = nat_of.get(target)
    # with high availability the interface is the NAT: one no running NAT holds leads nowhere
    dead_interface = outputs.high_availability and target.startswith("eni-") and \
        target_zone is not None and not account.live_interface(target_zone, target)
    if route.get("State") == "blackhole" or dead_interface or \
            target_gone(ec2, target, target_zone, account):
        whose = f" (the NAT in {target_zone})" if target_zone else ""
        return CheckResult(zone, check, False, f"0.0.0.0/0 in {ours} is a blackhole: its target "
                           f"{target}{whose} is gone or detached. Fix: "
                           + ("the agents move it to a healthy NAT within seconds; if it stays, "
                              f"{repoint}" if outputs.high_availability else REFRESH +
                              " (it launches a new NAT and points the route at it)"))
    if target_zone == home:
        return CheckResult(zone, check, True, f"{ours}: 0.0.0.0/0 → the NAT in {home} "
                           f"({target})")
    if target_zone is not None and outputs.high_availability:
        healthy = any(i["State"]["Name"] == "running" for i in account.nats.get(target_zone, []))
        return CheckResult(zone, check, healthy, f"failed over, degraded: 0.0.0.0/0 in {ours} "
                           f"goes to the NAT in {target_zone}, not {home}'s (cross-AZ charges; "
                           f"{target_zone}'s failure would cut this AZ too). The agents move it "
                           f"back once {home}'s NAT has been healthy for a while; if it stays, "
                           f"look at that NAT (`python -m natctl status`, its console log)"
                           + ("" if healthy else f". And no running NAT in {target_zone}: "
                              f"{repoint}"), degraded=healthy)
    if target_zone is not None:
        return CheckResult(zone, check, False, f"0.0.0.0/0 in {ours} goes to the NAT in "
                           f"{target_zone}, not {home}'s: cross-AZ charges, and {target_zone}'s "
                           f"failure cuts this AZ too. Fix: {repoint}")
    return CheckResult(zone, check, False, f"0.0.0.0/0 in {ours} goes to {target}, not a NAT of "
                       f"this stack. Fix: {repoint}")


def check_network_acls(zone: str, outputs: StackOutputs, account: Account
                       ) -> list[CheckResult]:
    """Both subnets of an AZ: everything the NAT path needs, both directions."""
    results = []
    nat_subnets = [IPv4Network(account.subnets[s]["CidrBlock"])
                   for z, s in outputs.public_subnet_ids.items()
                   if z != zone and z in outputs.nat_public_ips and s in account.subnets] \
        if outputs.high_availability else []
    subnets = [("public", outputs.public_subnet_ids[zone],
                nat_subnet_flows(outputs.private_subnet_cidrs.values(), outputs.ssh_cidr,
                                 nat_subnets) if zone in outputs.nat_public_ips else
                []),
               ("private", outputs.private_subnet_ids[zone], private_subnet_flows())]
    for kind, subnet, flows in subnets:
        check = f"network ACL of the {kind} subnet"
        if not flows or subnet not in account.subnets:
            continue  # no NAT in this public subnet (singleNat); a missing subnet: above
        acl = account.acl_of(subnet)
        if acl is None:
            results.append(CheckResult(zone, check, False, f"{kind} subnet {subnet} has no "
                                       "network ACL association. Fix: associate it with the "
                                       "VPC's default ACL"))
            continue
        entries = acl.get("Entries", [])
        denied = [b for flow in flows for b in blocked(entries, flow)]
        acl_id = acl["NetworkAclId"]
        if not denied:
            results.append(CheckResult(zone, check, True, f"{acl_id} lets the NAT path through, "
                                       "both ways"))
            continue
        shown = "; ".join(b.describe() for b in denied[:4]) + (
            f"; and {len(denied) - 4} more" if len(denied) > 4 else "")
        commands = " ".join(f"`{c}`" for c in allow_commands(acl_id, entries, denied))
        results.append(CheckResult(
            zone, check, False,
            f"{acl_id} on {kind} subnet {subnet} blocks {shown}. NACLs are stateless: each "
            "direction needs its allow rule, replies come back to ports 1024-65535. Fix: add "
            f"allow rules numbered below the denying ones: {commands}; or associate the subnet "
            "with an ACL that allows these flows (the VPC's default ACL allows everything)"))
    return results


def allow_commands(acl_id: str, entries: Sequence[Mapping[str, Any]],
                   denied: Sequence[Blocked]) -> list[str]:
    """One `create-network-acl-entry` per blocked flow, each numbered just below the rule that
    denies it (below 32767 for the final `*`) with a number that direction does not use."""
    used = {(bool(e.get("Egress")), int(e["RuleNumber"])) for e in entries}
    commands = []
    for block in denied:
        flow = block.flow
        number = (32767 if block.rule == "*" else int(block.rule)) - 1
        while (flow.egress, number) in used and number > 1:
            number -= 1
        used.add((flow.egress, number))
        commands.append(
            f"aws ec2 create-network-acl-entry --network-acl-id {acl_id} --rule-number "
            f"{number} --protocol {PROTOCOL_NUMBERS[flow.protocol]} --port-range "
            f"From={block.from_port},To={block.to_port} --cidr-block {flow.peer} "
            f"--rule-action allow {'--egress' if flow.egress else '--no-egress'}")
    return commands


def live_rules(ec2: Any, group_id: str, own_group: str) -> set[SecurityGroupRule]:
    rules = set()
    for rule in ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]:
        # an IPv6 range, another group or a prefix list is never in the guide's table
        referenced = rule.get("ReferencedGroupInfo", {}).get("GroupId")
        peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId") or
                (NAT_SECURITY_GROUP if referenced == own_group else referenced))
        protocol = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}.get(
            rule["IpProtocol"], rule["IpProtocol"])
        rules.add(SecurityGroupRule("outbound" if rule["IsEgress"] else "inbound", str(peer),
                                    protocol, rule.get("FromPort", -1), rule.get("ToPort", -1),
                                    ""))
    return rules


def describe_rule(rule: SecurityGroupRule) -> str:
    what = "all traffic" if rule.protocol == "all" else rule.protocol.upper()
    ports = "" if rule.protocol in ("icmp", "all") or rule.from_port == -1 else (
        f" port {rule.from_port}" if rule.from_port == rule.to_port
        else f" ports {rule.from_port}-{rule.to_port}")
    peer = "the NAT security group itself" if rule.cidr == NAT_SECURITY_GROUP else rule.cidr
    return f"{rule.direction} {what}{ports} {'from' if rule.direction == 'inbound' else 'to'} " \
           f"{peer}"


def check_security_group(ec2: Any, outputs: StackOutputs) -> list[CheckResult]:
    group = outputs.security_group_id
    found = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroups"]
    if not found:
        return [CheckResult(STACK_WIDE, "security group = guide's table", False,
                            f"{group} does not exist. Fix: {REFRESH} (it creates the group "
                            "again with the guide's rules, and puts the NATs in it)")]
    expected = expand_rules(list(outputs.private_subnet_cidrs.values()), outputs.ssh_cidr,
                            outputs.test_rules_enabled, outputs.high_availability,
                            outputs.keep_connections)
    expected_keys = {(r.direction, r.cidr, r.protocol, r.from_port, r.to_port): r
                     for r in expected}
    actual = live_rules(ec2, group, group)
    actual_keys = {(r.direction, r.cidr, r.protocol, r.from_port, r.to_port): r for r in actual}
    missing = [expected_keys[k] for k in sorted(set(expected_keys) - set(actual_keys))]
    extra = [actual_keys[k] for k in sorted(set(actual_keys) - set(expected_keys))]
    open_ssh = [r for r in actual if r.direction == "inbound" and r.cidr == ANYWHERE and
                (r.protocol == "all" or (r.protocol == "tcp" and r.from_port <= 22 <= r.to_port))]
    return [
        CheckResult(STACK_WIDE, "no SSH from 0.0.0.0/0", not open_ssh,
                    "SSH is not open to the internet" if not open_ssh else
                    f"{group} allows SSH from 0.0.0.0/0 ({describe_rule(open_ssh[0])}). Fix: "
                    f"revoke it ({REFRESH} restores {group}'s rules); allow only your "
                    "network's public range (sshCidr)"),
        CheckResult(STACK_WIDE, "security group = guide's table", not missing and not extra,
                    f"{len(expected)} rules, exactly the guide's table" if not missing and
                    not extra else
                    "; ".join([*(f"missing rule: {describe_rule(r)} ({r.description})"
                                 for r in missing),
                               *(f"extra rule not in the guide's table: {describe_rule(r)}"
                                 for r in extra)]) + f". Fix: {REFRESH} restores {group}'s "
                    "rules"),
    ]


# --- connectivity through SSM Run Command ------------------------------------------------------
def run_remote(ssm: Any, instance_id: str, commands: list[str],
               timeout: float = 120) -> tuple[str, str]:
    """Run shell commands on an instance through SSM; (status, standard output).

    This is the boundary the tests replace: moto records the command but does not run it.
    """
    command_id = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                                  Parameters={"commands": commands},
                                  TimeoutSeconds=60)["Command"]["CommandId"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            invocation = ssm.get_command_invocation(CommandId=command_id,
                                                    InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            invocation = {"Status": "Pending"}
        if invocation["Status"] not in ("Pending", "InProgress", "Delayed") or \
                time.monotonic() > deadline:
            return invocation["Status"], invocation.get("StandardOutputContent", "")
        time.sleep(2)


def check_connectivity(ssm: Any, outputs: StackOutputs, nats: Mapping[str, Sequence[Any]],
                       test_instance: str | None) -> list[CheckResult]:
    probe = [f"curl -sS --max-time 10 {CHECK_URL}"]
    results = []
    for zone, instances in nats.items():
        for instance in instances:
            instance_id = instance["InstanceId"]
            status, output = run_remote(ssm, instance_id, probe)
            seen = output.strip() or "nothing"
            expected = outputs.nat_public_ips.get(zone, "")
            ok = status == "Success" and seen == expected
            results.append(CheckResult(
                zone, "NAT reaches the internet (HTTPS)", ok,
                f"{CHECK_URL} sees {seen}" if ok else
                f"SSM command on {instance_id}: {status}, printed {seen} (expected {expected}). "
                "Fix: check the public route table, the NAT's outbound 443 rule, and that the "
                "SSM agent is online (enableSsm)"))
    if test_instance:
        status, output = run_remote(ssm, test_instance, probe)
        seen = output.strip() or "nothing"
        public_ips = set(outputs.nat_public_ips.values())
        ok = status == "Success" and seen in public_ips
        results.append(CheckResult(
            STACK_WIDE, f"{test_instance} reaches the internet through a NAT", ok,
            f"{CHECK_URL} sees {seen}, a NAT's public IP" if ok else
            f"SSM command on {test_instance}: {status}, printed {seen}, expected one of "
            f"{', '.join(sorted(public_ips))}. The guide's troubleshooting: the NAT's security "
            "group must allow the traffic in from the private subnet, source/dest check must be "
            "off, and the private route table must send 0.0.0.0/0 to the NAT"))
    return results


# --- all together ------------------------------------------------------------------------------
def verify(session: Any, outputs: StackOutputs, connectivity: bool = False,
           test_instance: str | None = None) -> list[CheckResult]:
    ec2 = session.client("ec2")
    account = read_account(session, outputs)
    results = check_stack(ec2, outputs, account)
    if account.vpc is None:
        return results  # nothing else can be there
    for zone in outputs.nat_zones:
        instances = account.nats.get(zone, [])
        live = [i for i in instances if i["State"]["Name"] not in GONE_STATES]
        if not live:
            results.append(CheckResult(zone, "NAT instance running", False, no_nat(
                zone, outputs, account)))
        for instance in live:
            placed = instance.get("Placement", {}).get("AvailabilityZone", zone)
            if placed != zone:
                source = (f"auto_scaling_group_names.{zone} = "
                          f"{outputs.auto_scaling_group_names.get(zone)}"
                          if outputs.high_availability else
                          f"nat_instance_ids.{zone} = {instance['InstanceId']}")
                results.append(CheckResult(zone, "NAT in its own AZ", False, (
                    f"the NAT the outputs give {zone} ({instance['InstanceId']}) runs in "
                    f"{placed}: {source} names {placed}'s, so every check of {zone}'s NAT "
                    f"would be about another AZ. Fix: pass this stack's own outputs, unedited "
                    f"(`pulumi stack output --json`); if they say so themselves, {REFRESH} "
                    "(it reads the stack's resources back)")))
                continue
            results.extend(check_nat(ec2, zone, instance, outputs))
    if outputs.keep_connections:
        for zone in outputs.nat_zones:
            results.extend(check_handover(ec2, zone, outputs))
    for zone in outputs.availability_zones:
        results.append(check_public_route(zone, outputs, account))
        results.append(check_private_route(ec2, zone, outputs, account))
        results.extend(check_network_acls(zone, outputs, account))
    results.extend(check_security_group(ec2, outputs))
    if connectivity:
        live_nats = {zone: [i for i in instances if i["State"]["Name"] == "running"]
                     for zone, instances in account.nats.items()}
        results.extend(check_connectivity(session.client("ssm"), outputs, live_nats,
                                          test_instance))
    return results


def no_nat(zone: str, outputs: StackOutputs, account: Account) -> str:
    if outputs.high_availability:
        group = outputs.auto_scaling_group_names[zone]
        if zone in account.missing_groups:
            return (f"Auto Scaling group {group} does not exist. Fix: {REFRESH} (it creates "
                    "the group again, which launches the AZ's NAT on its interface)")
        described = account.groups.get(zone, {})
        sizes = [described.get(k) for k in ("MinSize", "MaxSize", "DesiredCapacity")]
        if described and (sizes[1] == 0 or sizes[2] == 0):
            return (f"Auto Scaling group {group} was scaled to 0 (min {sizes[0]}, max "
                    f"{sizes[1]}, desired {sizes[2]}): it launches nothing. Fix: `aws "
                    f"autoscaling update-auto-scaling-group --auto-scaling-group-name {group} "
                    "--min-size 1 --max-size 1 --desired-capacity 1`, or "
                    f"{REFRESH} (it sets the group back to one instance)")
        return (f"Auto Scaling group {group} has no instance: the AZ's routes are on another "
                "AZ's NAT, or nowhere. The group launches a new one within minutes; if not, "
                f"read its activity (`aws autoscaling describe-scaling-activities "
                f"--auto-scaling-group-name {group}`)")
    instance = outputs.nat_instance_ids[zone]
    return (f"{instance} does not exist or is terminated: the private subnets it serves have "
            f"no internet path. Fix: {REFRESH} (it launches a new NAT and points the routes at "
            "it)")


def render_table(results: list[CheckResult]) -> str:
    width = max(len(r.check) for r in results)
    zone_width = max(len(r.zone) for r in results)
    lines = [f"{'AZ':<{zone_width}}  {'check':<{width}}  {'result':<8}  detail"]
    for r in results:
        lines.append(f"{r.zone:<{zone_width}}  {r.check:<{width}}  {r.status:<8}  {r.detail}")
    failed = sum(not r.passed for r in results)
    degraded = sum(r.degraded for r in results)
    lines.append("")
    lines.append(f"{failed} of {len(results)} checks failed" if failed else
                 f"all {len(results)} checks passed" +
                 (f", {degraded} degraded (failed over)" if degraded else ""))
    return "\n".join(lines) + "\n"


def render_json(results: list[CheckResult]) -> str:
    return json.dumps({"passed": all(r.passed for r in results),
                       "degraded": any(r.degraded for r in results),
                       "results": [{**asdict(r), "status": r.status} for r in results]},
                      indent=2) + "\n"
