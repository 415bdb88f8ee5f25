"""`python -m natctl verify`: the guide's test and troubleshooting list, run against a live stack.

Reads a stack's outputs, inspects the account with boto3 (read-only, except the optional SSM
connectivity commands) and reports per AZ each check as PASS or FAIL with the reason and the fix.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from typing import Any

from nat.rules import ANYWHERE, SecurityGroupRule, expand_rules

REQUIRED_OUTPUTS = (
    "vpc_id", "availability_zones", "internet_gateway_id", "public_subnet_ids",
    "private_subnet_ids", "private_subnet_cidrs", "nat_instance_ids", "nat_public_ips",
    "nat_for_private_subnet", "private_route_table_ids", "security_group_id", "ssh_cidr",
    "test_rules_enabled", "elastic_ips",
)
STACK_WIDE = "(stack)"
CHECK_URL = "https://checkip.amazonaws.com"


class InputError(ValueError):
    """Bad outputs, stack or options: nothing was inspected or changed."""


@dataclass(frozen=True)
class CheckResult:
    zone: str
    check: str
    passed: bool
    detail: str

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


# --- reading the stack outputs ------------------------------------------------------------------
def parse_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{source} is not valid JSON ({error.msg} at line {error.lineno}, "
                         f"column {error.colno}). Fix: pass the output of "
                         "`pulumi stack output --json`") from None
    if not isinstance(outputs, dict):
        raise InputError(f"{source} is JSON but not an object of stack outputs. Fix: pass the "
                         "output of `pulumi stack output --json`")
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        raise InputError(f"{source} does not look like a nat-instance-vpc stack: missing outputs "
                         f"{', '.join(missing)}. Fix: pass `pulumi stack output --json` of a "
                         "stack of this project (run `pulumi up` first if it is new)")
    zones = outputs["availability_zones"]
    if not isinstance(zones, list) or not zones:
        raise InputError(f"{source}: availability_zones must be a non-empty list")
    for key in ("public_subnet_ids", "private_subnet_ids", "private_route_table_ids",
                "nat_for_private_subnet", "private_subnet_cidrs"):
        if not isinstance(outputs[key], dict) or set(outputs[key]) != set(zones):
            raise InputError(f"{source}: {key} must map each of {', '.join(zones)} to a value")
    return outputs


def outputs_from_stack(stack: str, pulumi: str = "pulumi") -> dict[str, Any]:
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


# --- the checks --------------------------------------------------------------------------------
def _instances(ec2: Any, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for instance_id in instance_ids:
        try:
            reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ec2.exceptions.ClientError as error:
            if "NotFound" in str(error) or "Malformed" in str(error):
                continue
            raise
        for reservation in reservations:
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = instance
    return found


def _default_route(ec2: Any, subnet_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """(route table id, its 0.0.0.0/0 route) for the table associated with `subnet_id`."""
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]
    if not tables:
        return None, None
    table = tables[0]
    route = next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == ANYWHERE),
                 None)
    return table["RouteTableId"], route


def check_nat(ec2: Any, zone: str, instance_id: str, instance: dict[str, Any] | None,
              outputs: dict[str, Any]) -> list[CheckResult]:
    def result(check: str, passed: bool, detail: str) -> CheckResult:
        return CheckResult(zone, check, passed, detail)

    if instance is None or instance["State"]["Name"] in ("terminated", "shutting-down"):
        state = "does not exist" if instance is None else f"is {instance['State']['Name']}"
        return [result("NAT instance running", False,
                       f"{instance_id} {state}: the private subnets it serves have no internet "
                       "path. Fix: `pulumi up` recreates it")]
    results = []
    state = instance["State"]["Name"]
    if state != "running":
        results.append(result("NAT instance running", False,
                              f"{instance_id} is {state}. Fix: start it "
                              f"(`aws ec2 start-instances --instance-ids {instance_id}`)"))
    else:
        statuses = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
        bad = [f"{kind} {s[kind]['Status']}" for s in statuses
               for kind in ("InstanceStatus", "SystemStatus") if s[kind]["Status"] != "ok"]
        if bad:
            results.append(result("NAT instance running", False,
                                  f"{instance_id} is running but its status checks are not ok "
                                  f"({', '.join(bad)}). Fix: check its console log; reboot or "
                                  "replace it"))
        else:
            results.append(result("NAT instance running", True,
                                  f"{instance_id} running, status checks ok"))

    on = []
    if instance.get("SourceDestCheck", True):
        on.append(f"instance {instance_id}")
    for interface in instance.get("NetworkInterfaces", []):
        if interface.get("SourceDestCheck", True):
            on.append(f"network interface {interface['NetworkInterfaceId']}")
    results.append(result(
        "source/dest check off", not on,
        "off on the instance and all its network interfaces" if not on else
        f"source/dest check is on for {', '.join(on)}: the NAT drops traffic that is not its "
        "own. Fix: disable it (EC2 console: Actions → Networking → Change source/destination "
        f"check; or `aws ec2 modify-instance-attribute --instance-id {instance_id} "
        "--no-source-dest-check`, and `modify-network-interface-attribute` for each interface)"))

    public_ip = instance.get("PublicIpAddress")
    if not public_ip:
        results.append(result("public address", False,
                              f"{instance_id} has no public IP: it cannot reach the internet "
                              "gateway. Fix: associate an Elastic IP (`pulumi up` restores it)"))
    elif outputs["elastic_ips"]:
        addresses = ec2.describe_addresses(
            Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Addresses"]
        expected = outputs["nat_public_ips"].get(zone)
        if not addresses:
            results.append(result("public address", False,
                                  f"{public_ip} is not an Elastic IP: it changes on stop/start. "
                                  "Fix: `pulumi up` re-associates the stack's Elastic IP"))
        elif expected and addresses[0]["PublicIp"] != expected:
            results.append(result("public address", False,
                                  f"Elastic IP {addresses[0]['PublicIp']} is not the stack's "
                                  f"{expected}. Fix: `pulumi up`"))
        else:
            results.append(result("public address", True, f"Elastic IP {public_ip}"))
    else:
        results.append(result("public address", True, f"public IP {public_ip}"))

    tokens = instance.get("MetadataOptions", {}).get("HttpTokens")
    results.append(result("IMDSv2 required", tokens == "required",
                          "IMDSv2 required" if tokens == "required" else
                          f"IMDS tokens are {tokens!r}: IMDSv1 is allowed. Fix: `aws ec2 "
                          f"modify-instance-metadata-options --instance-id {instance_id} "
                          "--http-tokens required` (or `pulumi up`)"))
    groups = [g["GroupId"] for g in instance.get("SecurityGroups", [])]
    results.append(result("NAT security group attached", outputs["security_group_id"] in groups,
                          f"{outputs['security_group_id']} attached" if
                          outputs["security_group_id"] in groups else
                          f"the NAT has {', '.join(groups) or 'no groups'}, not the stack's "
                          f"{outputs['security_group_id']}. Fix: `pulumi up`"))
    return results


def check_public_route(ec2: Any, zone: str, outputs: dict[str, Any]) -> CheckResult:
    subnet_id = outputs["public_subnet_ids"][zone]
    table_id, route = _default_route(ec2, subnet_id)
    igw = outputs["internet_gateway_id"]
    if route is None:
        return CheckResult(zone, "public route → internet gateway", False,
                           f"public subnet {subnet_id} (route table {table_id}) has no "
                           f"0.0.0.0/0 route: the NAT cannot reach the internet. Fix: route "
                           f"0.0.0.0/0 to {igw} (`pulumi up`)")
    if route.get("GatewayId") != igw or route.get("State") != "active":
        return CheckResult(zone, "public route → internet gateway", False,
                           f"0.0.0.0/0 in {table_id} goes to {route.get('GatewayId') or route}"
                           f" ({route.get('State')}), not {igw}. Fix: `pulumi up`")
    return CheckResult(zone, "public route → internet gateway", True,
                       f"{table_id}: 0.0.0.0/0 → {igw} (active)")


def check_private_route(ec2: Any, zone: str, outputs: dict[str, Any],
                        nats: dict[str, dict[str, Any]]) -> CheckResult:
    check = "private route → NAT in its AZ"
    subnet_id = outputs["private_subnet_ids"][zone]
    expected_nat = outputs["nat_for_private_subnet"][zone]
    table_id, route = _default_route(ec2, subnet_id)
    if table_id is None:
        return CheckResult(zone, check, False,
                           f"private subnet {subnet_id} has no route table of its own (it uses "
                           "the VPC's main table). Fix: `pulumi up` re-associates "
                           f"{outputs['private_route_table_ids'][zone]}")
    if route is None:
        return CheckResult(zone, check, False,
                           f"route table {table_id} has no 0.0.0.0/0 route: private hosts "
                           f"cannot reach the internet. Fix: add 0.0.0.0/0 → {expected_nat} "
                           "(the guide's 'update the route table'; `pulumi up` restores it)")
    eni_owner = {interface["NetworkInterfaceId"]: instance_id
                 for instance_id, instance in nats.items()
                 for interface in instance.get("NetworkInterfaces", [])}
    target = route.get("InstanceId") or eni_owner.get(route.get("NetworkInterfaceId", ""))
    target_label = route.get("InstanceId") or route.get("NetworkInterfaceId") or \
        route.get("GatewayId") or route.get("NatGatewayId") or "?"
    target_instance = nats.get(target or "")
    gone = target_instance is None or target_instance["State"]["Name"] in ("terminated",
                                                                          "shutting-down")
    if route.get("State") == "blackhole" or (target_label.startswith(("i-", "eni-")) and gone):
        return CheckResult(zone, check, False,
                           f"0.0.0.0/0 in {table_id} is a blackhole: its target {target_label} "
                           "no longer exists (terminated NAT). Fix: `pulumi up` recreates the "
                           "NAT and points the route at it")
    if target != expected_nat:
        other_zones = [z for z, i in outputs["nat_instance_ids"].items() if i == target]
        where = f"the NAT in {other_zones[0]}" if other_zones else f"{target_label}"
        return CheckResult(zone, check, False,
                           f"0.0.0.0/0 in {table_id} goes to {where}, not {expected_nat}"
                           + (": cross-AZ charges, and that AZ's failure cuts this one"
                              if other_zones else "") + ". Fix: `pulumi up` restores the route")
    return CheckResult(zone, check, True,
                       f"{table_id}: 0.0.0.0/0 → {expected_nat} ({route.get('State')})")


def live_rules(ec2: Any, group_id: str) -> set[SecurityGroupRule]:
    rules = set()
    for rule in ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]:
        # an IPv6 range, another group or a prefix list is never in the guide's table
        peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
                or rule.get("ReferencedGroupInfo", {}).get("GroupId"))
        protocol = {"-1": "all", "6": "tcp", "1": "icmp"}.get(rule["IpProtocol"],
                                                             rule["IpProtocol"])
        rules.add(SecurityGroupRule("outbound" if rule["IsEgress"] else "inbound", str(peer),
                                    protocol, rule.get("FromPort", -1), rule.get("ToPort", -1),
                                    ""))
    return rules


def describe_rule(rule: SecurityGroupRule) -> str:
    ports = "all ports" if rule.protocol in ("icmp", "all") or rule.from_port == -1 else (
        f"port {rule.from_port}" if rule.from_port == rule.to_port
        else f"ports {rule.from_port}-{rule.to_port}")
    peer = "from" if rule.direction == "inbound" else "to"
    return f"{rule.direction} {rule.protocol} {ports} {peer} {rule.cidr}"


def check_security_group(ec2: Any, outputs: dict[str, Any]) -> list[CheckResult]:
    expected = expand_rules(
        [IPv4Network(c) for c in outputs["private_subnet_cidrs"].values()],
        IPv4Network(outputs["ssh_cidr"]) if outputs["ssh_cidr"] else None,
        bool(outputs["test_rules_enabled"]))
    expected_keys = {(r.direction, r.cidr, r.protocol, r.from_port, r.to_port): r
                     for r in expected}
    actual = live_rules(ec2, outputs["security_group_id"])
    actual_keys = {(r.direction, r.cidr, r.protocol, r.from_port, r.to_port): r for r in actual}
    missing = [expected_keys[k] for k in sorted(set(expected_keys) - set(actual_keys))]
    extra = [actual_keys[k] for k in sorted(set(actual_keys) - set(expected_keys))]
    open_ssh = [r for r in actual if r.direction == "inbound" and r.cidr == ANYWHERE and
                (r.protocol == "all" or (r.protocol == "tcp" and r.from_port <= 22 <= r.to_port))]
    group = outputs["security_group_id"]
    results = []
    results.append(CheckResult(
        STACK_WIDE, "no SSH from 0.0.0.0/0", not open_ssh,
        "SSH is not open to the internet" if not open_ssh else
        f"{group} allows SSH from 0.0.0.0/0 ({describe_rule(open_ssh[0])}). Fix: revoke it; "
        "allow only your network's public range (sshCidr)"))
    results.append(CheckResult(
        STACK_WIDE, "security group = guide's table", not missing and not extra,
        f"{len(expected)} rules, exactly the guide's table" if not missing and not extra else
        "; ".join([*(f"missing rule: {describe_rule(r)} ({r.description})" for r in missing),
                   *(f"extra rule not in the guide's table: {describe_rule(r)}"
                     for r in extra)]) + f". Fix: `pulumi up` restores {group}'s rules"))
    return results


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


def check_connectivity(ssm: Any, outputs: dict[str, Any],
                       test_instance: str | None) -> list[CheckResult]:
    probe = [f"curl -sS --max-time 10 {CHECK_URL}"]
    results = []
    for zone, instance_id in outputs["nat_instance_ids"].items():
        status, output = run_remote(ssm, instance_id, probe)
        seen = output.strip()
        expected = outputs["nat_public_ips"].get(zone)
        ok = status == "Success" and seen == expected
        results.append(CheckResult(
            zone, "NAT reaches the internet (HTTPS)", ok,
            f"{CHECK_URL} sees {seen}" if ok else
            f"SSM command on {instance_id}: {status}, output {seen!r} (expected {expected}). "
            "Fix: check the public route table, the NAT's outbound 443 rule, and that the SSM "
            "agent is online (enableSsm)"))
    if test_instance:
        status, output = run_remote(ssm, test_instance, probe)
        seen = output.strip()
        public_ips = set(outputs["nat_public_ips"].values())
        ok = status == "Success" and seen in public_ips
        results.append(CheckResult(
            STACK_WIDE, f"{test_instance} reaches the internet through a NAT", ok,
            f"{CHECK_URL} sees {seen}, a NAT's public IP" if ok else
            f"SSM command on {test_instance}: {status}, output {seen!r}, expected one of "
            f"{', '.join(sorted(public_ips))}. The guide's troubleshooting: the NAT's security "
            "group must allow the traffic in from the private subnet, source/dest check must be "
            "off, and the private route table must send 0.0.0.0/0 to the NAT"))
    return results


# --- all together ------------------------------------------------------------------------------
def verify(session: Any, outputs: dict[str, Any], connectivity: bool = False,
           test_instance: str | None = None) -> list[CheckResult]:
    ec2 = session.client("ec2")
    nat_ids = sorted(set(outputs["nat_instance_ids"].values()) |
                     set(outputs["nat_for_private_subnet"].values()))
    nats = _instances(ec2, nat_ids)
    results: list[CheckResult] = []
    for zone in outputs["availability_zones"]:
        instance_id = outputs["nat_instance_ids"].get(zone)
        if instance_id:
            results.extend(check_nat(ec2, zone, instance_id, nats.get(instance_id), outputs))
        results.append(check_public_route(ec2, zone, outputs))
        results.append(check_private_route(ec2, zone, outputs, nats))
    results.extend(check_security_group(ec2, outputs))
    if connectivity:
        results.extend(check_connectivity(session.client("ssm"), outputs, test_instance))
    return results


def render_table(results: list[CheckResult]) -> str:
    width = max(len(r.check) for r in results)
    zone_width = max(len(r.zone) for r in results)
    lines = [f"{'AZ':<{zone_width}}  {'check':<{width}}  result  detail"]
    for r in results:
        lines.append(f"{r.zone:<{zone_width}}  {r.check:<{width}}  {r.status:<6}  {r.detail}")
    failed = sum(not r.passed for r in results)
    lines.append("")
    lines.append(f"{failed} of {len(results)} checks failed" if failed else
                 f"all {len(results)} checks passed")
    return "\n".join(lines) + "\n"


def render_json(results: list[CheckResult]) -> str:
    return json.dumps({"passed": all(r.passed for r in results),
                       "results": [{**asdict(r), "status": r.status} for r in results]},
                      indent=2) + "\n"
