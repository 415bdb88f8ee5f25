"""`python -m natctl plan`: what `pulumi up` would create for a stack, read off the mocks graph.

The real program runs in Pulumi's in-process mock engine (natctl/offline.py): no CLI, no
credentials, no network. The tree, the rules table and the counts come from the resource
graph it registers, the cost from natctl/cost.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from nat.design.addresses import EIP_DEFAULT_QUOTA, EIP_QUOTA_CODE
from nat.design.ami import AL2023_PARAMETER_PREFIX
from nat.design.monitoring import billed_metrics
from nat.design.userdata import decode_user_data, parse_user_data
from nat.inputs.instance_types import architecture_by_name
from natctl.cost import estimate, monitoring_cost
from natctl.offline import Graph, run_program
from natctl.outputs import stack_outputs
from natctl.stacks import load_stack_config

INSTANCE = "aws:ec2/instance:Instance"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


class PlanError(ValueError):
    pass


def _ami_source(graph: Graph, pinned: str) -> str:
    parameters = [args["name"] for token, args in graph.invokes
                  if token == "aws:ssm/getParameter:getParameter"]
    if parameters:
        return f"latest Amazon Linux 2023 ({parameters[0].removeprefix(AL2023_PARAMETER_PREFIX)}"\
               f", SSM {parameters[0]})"
    return f"pinned {pinned}"


def nat_units(graph: Graph) -> dict[str, dict[str, Any]]:
    """Each NAT by the interface its routes point at: a plain instance, or (high availability)
    an Auto Scaling group of one whose launch template puts instances on a fixed interface."""
    by_id = {r.id: r for r in graph.resources}
    eips_by_target: dict[str, list[str]] = {}
    for association in graph.of_type(EIP_ASSOCIATION):
        allocation = association.inputs["allocationId"]
        # the stack's own Elastic IP by its name; the caller's by its allocation id
        name = by_id[allocation].name if allocation in by_id else f"{allocation} (yours)"
        target = association.inputs.get("instanceId") or association.inputs["networkInterfaceId"]
        eips_by_target.setdefault(target, []).append(name)

    def elastic_ips(target: str) -> str:
        names = eips_by_target[target]
        return f"Elastic IP {names[0]}" if len(names) == 1 else \
            f"{len(names)} Elastic IPs {', '.join(names)}"
    units: dict[str, dict[str, Any]] = {}
    for nat in graph.of_type(INSTANCE):
        own = nat.inputs.get("primaryNetworkInterface")
        if own:  # several addresses: an interface made for the instance holds them
            interface = by_id[own["networkInterfaceId"]]
            units[interface.id] = {
                "name": nat.name, "mode": "instance", "subnet": interface.inputs["subnetId"],
                "instance_type": nat.inputs["instanceType"],
                "ami": _ami_source(graph, nat.inputs.get("ami", "")),
                "source_dest_check": interface.inputs["sourceDestCheck"],
                "tokens": nat.inputs["metadataOptions"]["httpTokens"],
                "addresses": len(eips_by_target[interface.id]),
                "public_address": f"{elastic_ips(interface.id)} on interface {interface.name}"}
            continue
        units[nat.inputs["primaryNetworkInterfaceId"]] = {
            "name": nat.name, "mode": "instance", "subnet": nat.inputs["subnetId"],
            "instance_type": nat.inputs["instanceType"],
            "ami": _ami_source(graph, nat.inputs.get("ami", "")),
            "source_dest_check": nat.inputs["sourceDestCheck"],
            "tokens": nat.inputs["metadataOptions"]["httpTokens"], "addresses": 1,
            "public_address": (elastic_ips(nat.id) if nat.id in eips_by_target
                               else "auto-assigned public IP (changes on stop/start)")}
    for group in graph.of_type(GROUP):
        template = by_id[group.inputs["launchTemplate"]["id"]]
        interface = by_id[template.inputs["networkInterfaces"][0]["networkInterfaceId"]]
        units[interface.id] = {
            "name": group.name, "mode": "auto scaling group of one",
            "subnet": interface.inputs["subnetId"],
            "instance_type": template.inputs["instanceType"],
            "ami": _ami_source(graph, template.inputs.get("imageId", "")),
            "source_dest_check": interface.inputs["sourceDestCheck"],
            "tokens": template.inputs["metadataOptions"]["httpTokens"],
            "addresses": len(eips_by_target[interface.id]),
            "public_address": f"{elastic_ips(interface.id)} on interface "
                              f"{interface.name} (kept by every instance of the group)"}
    return units


def high_availability(graph: Graph) -> dict[str, Any] | None:
    """What the agents were told (agent.json, inside a launch template's user data)."""
    templates = graph.of_type(TEMPLATE)
    if not templates:
        return None
    agent = parse_user_data(decode_user_data(templates[0].inputs["userData"])).agent
    assert agent is not None and agent.failback_after is not None
    return {"failback_after_seconds": int(agent.failback_after),
            "health_check_targets": list(agent.targets)}


def monitoring(graph: Graph) -> dict[str, Any] | None:
    """What the NATs were told to publish (agent.json in their user data), and the alarms and
    dashboards the stack makes."""
    for resource in graph.of_type(INSTANCE) + graph.of_type(TEMPLATE):
        agent = parse_user_data(decode_user_data(str(resource.inputs.get("userDataBase64") or
                                                     resource.inputs.get("userData")))).agent
        if agent is None or agent.metrics is None:
            continue
        metrics = agent.metrics
        steady, events = billed_metrics(metrics.detailed, agent.high_availability)
        return {"namespace": metrics.namespace, "detailed_metrics": metrics.detailed,
                "publish_interval_seconds": int(metrics.publish_every),
                "metrics_per_nat": steady, "event_metrics_per_nat": events,
                "alarms": len(graph.of_type(ALARM)),
                "dashboards": len(graph.of_type(DASHBOARD))}
    return None


def build_plan(graph: Graph, stack: str, region: str, gb_per_month: float) -> dict[str, Any]:
    by_id = {r.id: r for r in graph.resources}
    units = nat_units(graph)
    table_of = {a.inputs["subnetId"]: by_id[a.inputs["routeTableId"]]
                for a in graph.of_type(ASSOCIATION)}

    zones: list[dict[str, Any]] = []
    subnets = graph.of_type(SUBNET)
    # the program's AZ order (registration order is not deterministic)
    for zone in stack_outputs(graph.exports, "the program's outputs").availability_zones:
        private = next(s for s in subnets if "-private-" in s.name
                       and s.inputs["availabilityZone"] == zone)
        public = next(s for s in subnets if "-public-" in s.name
                      and s.inputs["availabilityZone"] == zone)
        nat = next((u for u in units.values() if u["subnet"] == public.id), None)
        table = table_of[private.id]
        route = next(r for r in graph.of_type(ROUTE) if r.inputs["routeTableId"] == table.id
                     and r.inputs["destinationCidrBlock"] == "0.0.0.0/0")
        target = units[route.inputs["networkInterfaceId"]]
        target_zone = by_id[target["subnet"]].inputs["availabilityZone"]
        entry: dict[str, Any] = {
            "zone": zone,
            "public_subnet": {"name": public.name, "cidr": public.inputs["cidrBlock"]},
            "nat_instance": None,
            "private_subnet": {"name": private.name, "cidr": private.inputs["cidrBlock"]},
            "private_route_table": {
                "name": table.name, "default_route_target": target["name"],
                "target_zone": target_zone, "same_zone": target_zone == zone},
        }
        if nat is not None:
            entry["nat_instance"] = {
                "name": nat["name"], "mode": nat["mode"], "instance_type": nat["instance_type"],
                "architecture": architecture_by_name(nat["instance_type"]), "ami": nat["ami"],
                "source_dest_check": nat["source_dest_check"],
                "imds": "v2 required" if nat["tokens"] == "required" else "v1 allowed",
                "public_address": nat["public_address"]}
        zones.append(entry)

    rules = []
    for rule in graph.of_type(INGRESS) + graph.of_type(EGRESS):
        # numbers come back from the engine as floats
        first, last = int(rule.inputs.get("fromPort", -1)), int(rule.inputs.get("toPort", -1))
        port = "all" if rule.inputs["ipProtocol"] == "icmp" else \
            str(first) if last == first else f"{first}-{last}"  # a range: conntrackd's links
        rules.append({"direction": "inbound" if rule.type == INGRESS else "outbound",
                      "peer": rule.inputs.get("cidrIpv4", "the NAT security group"),
                      "protocol": rule.inputs["ipProtocol"], "port": port,
                      "why": rule.inputs["description"]})

    rules.sort(key=lambda r: (r["direction"], r["protocol"], r["port"].zfill(5), r["peer"]))
    if not units:
        raise PlanError("the program created no NAT instance")
    counts = graph.counts()
    instance_type = next(iter(units.values()))["instance_type"]
    watched = monitoring(graph)
    watch_cost = None if watched is None else monitoring_cost(
        len(units), watched["metrics_per_nat"], watched["event_metrics_per_nat"],
        watched["alarms"], watched["dashboards"], watched["publish_interval_seconds"])
    cost = estimate(instance_type, nat_count=len(units), az_count=len(zones),
                    gb_per_month=gb_per_month,
                    elastic_ips=bool(graph.of_type("aws:ec2/eip:Eip")),
                    single_nat=len(units) < len(zones),
                    monitoring=watch_cost.total if watch_cost else 0.0,
                    addresses_per_nat=max(unit["addresses"] for unit in units.values()),
                    spare_addresses=sum(e.name.endswith("-eip-spare")
                                        for e in graph.of_type("aws:ec2/eip:Eip")))
    cost_data = cost.to_dict()
    elastic_ip_count = len(graph.of_type("aws:ec2/eip:Eip"))
    if elastic_ip_count:
        cost_data["notes"].append(
            f"Elastic IPs: this stack allocates {elastic_ip_count}; an account may hold "
            f"{EIP_DEFAULT_QUOTA} per Region by default (with the ones it already has). "
            + ("Raise the quota first (Service Quotas, \"EC2-VPC Elastic IPs\", "
               f"{EIP_QUOTA_CODE}), "
               "or `pulumi up` stops with AddressLimitExceeded."
               if elastic_ip_count > EIP_DEFAULT_QUOTA else
               "AWS refuses more with AddressLimitExceeded: raise it in Service Quotas "
               f"(\"EC2-VPC Elastic IPs\", {EIP_QUOTA_CODE})."))
    cost_data["monitoring"] = watch_cost.to_dict() if watch_cost else None
    ha = high_availability(graph)
    if ha is not None:
        cost_data["notes"].append(
            "High availability adds nothing to the monthly bill: no standby instance, no NAT "
            "Gateway; interfaces, launch templates and Auto Scaling groups are free. During a "
            f"failover an AZ's traffic crosses to another AZ's NAT (${cost.cross_az_per_gb:g}"
            "/GB).")
    if region != cost.region:
        cost_data["notes"].append(f"This stack deploys to {region}; its prices differ from "
                                  f"{cost.region}'s.")
    return {
        "stack": stack, "region": region, "vpc_cidr": graph.of_type(
            "aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"],
        "availability_zones": zones, "security_group_rules": rules,
        "high_availability": ha,
        "monitoring": watched,
        "resource_counts": counts, "resource_total": sum(counts.values()),
        "resource_tree": resource_tree(graph),
        "cost": cost_data,
    }


def short_type(type_token: str) -> str:
    """aws:ec2/routeTable:RouteTable → aws:ec2:RouteTable, as `pulumi preview` prints it."""
    package, module, name = type_token.split(":")
    return f"{package}:{module.split('/')[0]}:{name}"


def resource_tree(graph: Graph) -> list[str]:
    """The resources as `pulumi preview` draws them: each under its parent (siblings by name:
    the order they register in varies)."""
    children: dict[str, list[Any]] = {}
    for resource in sorted(graph.resources, key=lambda r: r.name):
        children.setdefault(resource.parent, []).append(resource)
    urns = {r.urn for r in graph.resources}
    lines: list[str] = []

    def draw(resource: Any, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{short_type(resource.type)}  {resource.name}")
        below = children.get(resource.urn, [])
        extension = "" if top else ("   " if last else "│  ")
        for index, child in enumerate(below):
            draw(child, prefix + extension, index == len(below) - 1, False)

    for root in (r for r in graph.resources if r.parent not in urns):
        draw(root, "", True, True)
    return lines


def plan_stack(stack: str, gb_per_month: float, project_dir: Path | None = None) -> dict[str, Any]:
    config = load_stack_config(stack, *([project_dir] if project_dir else []))
    graph = run_program(config, stack=stack)
    return build_plan(graph, stack, config.get("aws:region", "us-east-1"), gb_per_month)


def _unit_price(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value * 1000:g}/1000" if 0 < value < 0.001 else f"{value:g}"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def render_text(plan: dict[str, Any]) -> str:
    out = [f"Stack {plan['stack']} ({plan['region']}, VPC {plan['vpc_cidr']}): "
           "what `pulumi up` would create", ""]
    for zone in plan["availability_zones"]:
        out.append(zone["zone"])
        public, private = zone["public_subnet"], zone["private_subnet"]
        out.append(f"  public subnet  {public['name']}  {public['cidr']}  (0.0.0.0/0 → internet "
                   "gateway)")
        nat = zone["nat_instance"]
        if nat:
            kind = "NAT instance" if nat["mode"] == "instance" else \
                "NAT, an Auto Scaling group of one,"
            out.append(f"    └─ {kind} {nat['name']}: {nat['instance_type']} "
                       f"{nat['architecture']}, source/dest check "
                       f"{'on' if nat['source_dest_check'] else 'off'}, IMDS {nat['imds']}")
            out.append(f"         AMI: {nat['ami']}")
            out.append(f"         └─ {nat['public_address']}")
        out.append(f"  private subnet {private['name']}  {private['cidr']}")
        table = zone["private_route_table"]
        where = "same AZ" if table["same_zone"] else f"in {table['target_zone']}: crosses AZs"
        out.append(f"    └─ route table {table['name']}")
        out.append(f"         └─ 0.0.0.0/0 → {table['default_route_target']} ({where})")
        out.append("")
    ha = plan.get("high_availability")
    if ha:
        zones = [z["zone"] for z in plan["availability_zones"] if z["nat_instance"]]
        out.append("High availability")
        out.append("  heals: a NAT that dies, or whose data path fails its test (a TCP handshake "
                   f"each second to {', '.join(ha['health_check_targets'])}, forwarded and "
                   "masqueraded), is replaced by its group; the new one has the AZ's interface "
                   "and Elastic IP")
        if len(zones) > 1:
            ring = " → ".join([*zones, zones[0]])
            out.append(f"  fails over: within seconds, an AZ whose NAT is unhealthy uses the "
                       f"next healthy one ({ring}); back after "
                       f"{ha['failback_after_seconds']} s healthy")
        else:
            out.append("  fails over: no (one NAT): the AZ waits for its replacement")
        out.append("  egress address during a failover: the other AZ's Elastic IP")
        out.append("")
    out.append("NAT security group (the guide's table)")
    out.append(f"  {'direction':<9}  {'peer':<18}  {'protocol':<8}  {'port':<4}  why")
    for rule in plan["security_group_rules"]:
        out.append(f"  {rule['direction']:<9}  {rule['peer']:<18}  {rule['protocol']:<8}  "
                   f"{rule['port']:<4}  {rule['why']}")
    out.append("")
    out.append(f"Resources: {plan['resource_total']}")
    for token, count in plan["resource_counts"].items():
        out.append(f"  {count:>3}  {token}")
    out.append("")
    out.append("Resource tree (as `pulumi preview` shows it)")
    out.extend(f"  {line}" for line in plan["resource_tree"])
    cost = plan["cost"]
    out.append("")
    out.append(f"Monthly cost for {cost['gb_per_month']:g} GB/month through the NATs "
               f"({cost['region']} on-demand prices as of {cost['as_of']})")
    for title, lines, total in (("NAT instances (this stack)", cost["nat_instances"],
                                 cost["nat_instances_total"]),
                                ("NAT Gateways, same topology", cost["nat_gateways"],
                                 cost["nat_gateways_total"])):
        out.append(f"  {title}: {_money(total)}")
        for line in lines:
            price = _unit_price(line["unit_price"])
            out.append(f"    {line['item']:<38} {line['quantity']:>9,.1f} {line['unit']:<15}"
                       f" × {price:<7} = {_money(line['monthly'])}")
    out.append(f"  saving with NAT instances: {_money(cost['monthly_saving'])}/month")
    out.append("  break-even: " + (
        "unknown" if cost["monthly_saving"] is None else
        "none, NAT instances cost less at any volume" if cost["break_even_gb"] is None
        else f"NAT Gateways cost less below {cost['break_even_gb']:g} GB/month"))
    baseline = cost["baseline_mbps_per_nat"]
    out.append(f"  average throughput needed: {cost['average_mbps_needed']:g} Mbit/s; baseline "
               f"per NAT: {'unknown' if baseline is None else f'{baseline:g} Mbit/s'}")
    out.extend(f"  note: {note}" for note in cost["notes"])
    watch, watched = cost.get("monitoring"), plan.get("monitoring")
    if watch and watched:
        out.append("")
        out.append(f"Monitoring: {_money(watch['total'])}/month ({_money(watch['per_nat'])} per "
                   f"NAT): {watched['metrics_per_nat']} metrics per NAT in "
                   f"{watched['namespace']}"
                   f"{' (detailed)' if watched['detailed_metrics'] else ''}, sent every "
                   f"{watched['publish_interval_seconds']} s; {watched['alarms']} alarms"
                   f"{'; a dashboard' if watched['dashboards'] else ''}")
        for line in watch["lines"]:
            out.append(f"    {line['item']:<38} {line['quantity']:>9,.1f} {line['unit']:<15}"
                       f" × {_unit_price(line['unit_price']):<7} = {_money(line['monthly'])}")
        out.extend(f"  note: {note}" for note in watch["notes"])
    elif not watched:
        out.append("")
        out.append("Monitoring: off (no metrics, no alarms)")
    return "\n".join(out) + "\n"


def render_dot(plan: dict[str, Any]) -> str:
    """Graphviz source of the topology: VPC, AZs, subnets, NATs, routes."""
    def quote(text: str) -> str:
        return '"' + text.replace('"', '\\"') + '"'

    lines = ["digraph nat {", "  rankdir=LR; compound=true; fontname=Helvetica;",
             "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=Helvetica,"
             " fontsize=11];", "  edge [fontname=Helvetica, fontsize=10];",
             "  internet [label=\"internet\", shape=ellipse, fillcolor=\"#e8f0fe\"];",
             f"  subgraph cluster_vpc {{ label={quote('VPC ' + plan['vpc_cidr'])}; "
             "style=rounded; color=\"#5f6368\";",
             "    igw [label=\"internet gateway\", fillcolor=\"#fef7e0\"];"]
    for index, zone in enumerate(plan["availability_zones"]):
        public, private = zone["public_subnet"], zone["private_subnet"]
        table = zone["private_route_table"]
        lines.append(f"    subgraph cluster_az{index} {{ label={quote(zone['zone'])}; "
                     "style=dashed;")
        public_label = quote("public subnet\\n" + public["cidr"])
        private_label = quote("private subnet\\n" + private["cidr"])
        table_label = quote("route table\\n0.0.0.0/0 → NAT")
        lines.append(f"      pub{index} [label={public_label}, fillcolor=\"#e6f4ea\"];")
        lines.append(f"      priv{index} [label={private_label}, fillcolor=\"#fce8e6\"];")
        lines.append(f"      rt{index} [label={table_label}];")
        if zone["nat_instance"]:
            nat = zone["nat_instance"]
            label = f"NAT instance\\n{nat['instance_type']} ({nat['architecture']})"
            lines.append(f"      nat{index} [label={quote(label)}, fillcolor=\"#fff3cd\"];")
            lines.append(f"      pub{index} -> nat{index} [style=dotted, arrowhead=none];")
        lines.append("    }")
        target = next(i for i, z in enumerate(plan["availability_zones"])
                      if z["nat_instance"] and z["nat_instance"]["name"] ==
                      table["default_route_target"])
        lines.append(f"    priv{index} -> rt{index};")
        lines.append(f"    rt{index} -> nat{target};")
    lines.append("  }")
    for index, zone in enumerate(plan["availability_zones"]):
        if zone["nat_instance"]:
            lines.append(f"  nat{index} -> igw [label=\"MASQUERADE\"];")
    lines.append("  igw -> internet;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_diagram(plan: dict[str, Any], path: Path) -> None:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("svg", "png"):
        raise PlanError(f"--diagram {path}: unsupported file type {path.suffix!r}. "
                        "Fix: name it .svg or .png")
    dot = shutil.which("dot")
    if dot is None:
        raise PlanError("--diagram needs Graphviz's `dot`. Fix: apt-get install graphviz "
                        "(or brew install graphviz)")
    subprocess.run([dot, f"-T{suffix}", "-o", str(path)], input=render_dot(plan), text=True,
                   check=True, capture_output=True)
