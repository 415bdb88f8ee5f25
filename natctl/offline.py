"""Run the real stack program in Pulumi's in-process mock engine: no CLI, no cloud, no network.

Used by the test suite and by `python -m natctl plan`. `run_program` returns the whole resource
graph (type, name, inputs, parent, options) and the stack's exports.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from nat.inputs.instance_types import architecture_by_name

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_REGION = "us-east-1"
# Documentation ranges (RFC 5737) for the addresses a mock hands out.
MOCK_PUBLIC_IP_PREFIX = "203.0.113."
ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc", "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/routeTable:RouteTable": "rtb", "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/securityGroup:SecurityGroup": "sg", "aws:ec2/route:Route": "r",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/eipAssociation:EipAssociation": "eipassoc",
}
MOCK_AMI = {"arm64": "ami-0a1b2c3d4e5f60718", "x86_64": "ami-0f1e2d3c4b5a69788"}
MOCK_ACCOUNT = "123456789012"


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # what the program passed
    dependencies: list[str] = field(default_factory=list)  # URNs it waits for
    aliases: list[str] = field(default_factory=list)  # URNs it answers to (older layouts)


@dataclass
class Graph:
    resources: list[Resource]
    exports: dict[str, Any]
    invokes: list[tuple[str, dict[str, Any]]]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_id(self, resource_id: str) -> Resource:
        return next(r for r in self.resources if r.id == resource_id)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))


# What AWS's instance-type lookup answers for a few sizes (MiB), for the mocks only; the
# architecture comes from the naming rule, as it would from AWS.
MOCK_MEMORY_MIB = {"nano": 512, "micro": 1024, "small": 2048, "medium": 4096, "large": 8192,
                   "xlarge": 16384}


class AwsMocks(pulumi.runtime.Mocks):
    """Deterministic ids and the computed outputs the program reads.

    `subnets` and `route_tables` ({id: {"vpcId": …, "availabilityZone": …}}) answer the
    lookups NatInstances makes for plain ids.
    """

    def __init__(self, region: str, zone_count: int = 6) -> None:
        self.region = region
        self.zone_names = [f"{region}{letter}" for letter in "abcdef"[:zone_count]]
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self.counter = 0
        self.subnets: dict[str, dict[str, str]] = {}
        self.route_tables: dict[str, dict[str, str]] = {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A dict, never (dict, None): the mock monitor iterates the second item.
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": self.zone_names,
                    "zoneIds": [f"use1-az{i + 1}" for i in range(len(self.zone_names))],
                    "id": self.region}
        if args.token == "aws:ssm/getParameter:getParameter":
            architecture = "arm64" if args.args["name"].endswith("arm64") else "x86_64"
            return {"name": args.args["name"], "value": MOCK_AMI[architecture],
                    "type": "String", "id": args.args["name"]}
        if args.token == "aws:ec2/getInstanceType:getInstanceType":
            instance_type = args.args["instanceType"]
            size = instance_type.partition(".")[2]
            return {"instanceType": instance_type, "id": instance_type,
                    "supportedArchitectures": [architecture_by_name(instance_type)],
                    "memorySize": MOCK_MEMORY_MIB.get(size, 16384)}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_ACCOUNT, "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/ops",
                    "userId": "AIDAMOCK", "id": MOCK_ACCOUNT}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            return {"id": args.args["id"], **self.subnets[args.args["id"]]}
        if args.token == "aws:ec2/getRouteTable:getRouteTable":
            if "subnetId" in args.args:  # the table associated with a subnet
                subnet_id = args.args["subnetId"]
                table_id = "rtb-" + subnet_id.removeprefix("subnet-")
                return {"id": table_id, "routeTableId": table_id, "subnetId": subnet_id,
                        "vpcId": self.subnets[subnet_id]["vpcId"]}
            table_id = args.args["routeTableId"]
            return {"id": table_id, "routeTableId": table_id, **self.route_tables[table_id]}
        return {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Ids and addresses derived from the resource's type and name: the same on every run
        (registration order varies), and distinct within a stack."""
        self.counter += 1
        short = ID_PREFIXES.get(args.typ, args.typ.split(":")[-1].lower())
        digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()[:17]
        host = int(digest, 16) % 250 + 1
        resource_id = f"{short}-{digest}"
        outputs = dict(args.inputs)
        if args.typ == "aws:ec2/instance:Instance":
            resource_id = f"i-{digest}"
            outputs.update(primaryNetworkInterfaceId=f"eni-{digest}",
                           privateIp=f"10.255.0.{host}",
                           publicIp=f"{MOCK_PUBLIC_IP_PREFIX}{host}")
        elif args.typ == "aws:ec2/eip:Eip":
            resource_id = f"eipalloc-{digest}"
            outputs.update(allocationId=resource_id, publicIp=f"{MOCK_PUBLIC_IP_PREFIX}{host}")
        elif args.typ == "aws:iam/role:Role":
            outputs.update(name=args.name, arn=f"arn:aws:iam::123456789012:role/{args.name}")
        elif args.typ == "aws:iam/instanceProfile:InstanceProfile":
            outputs.update(name=args.name)
        elif args.typ == "aws:ec2/networkInterface:NetworkInterface":
            resource_id = f"eni-{digest}"
            outputs.update(privateIp=f"10.254.0.{host}")
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            resource_id = f"lt-{digest}"
            outputs.update(latestVersion=1)
        elif args.typ == "aws:autoscaling/group:Group":
            resource_id = f"{args.name}-{digest[:8]}"
            outputs.update(name=resource_id)
        elif args.typ in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:sns/topic:Topic"):
            # auto-named as Pulumi does: the resource name and a random suffix
            auto_name = f"{args.name}-{digest[:7]}"
            service = "cloudwatch" if "cloudwatch" in args.typ else "sns"
            kind = "alarm:" if service == "cloudwatch" else ""
            outputs.update(name=auto_name, arn=f"arn:aws:{service}:{self.region}:"
                                               f"{MOCK_ACCOUNT}:{kind}{auto_name}")
        elif args.typ == "awsx:ec2:Vpc":  # its outputs only: some share an input's name
            outputs = self._awsx_vpc(args.inputs)
        return resource_id, outputs

    def _awsx_vpc(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """awsx.ec2.Vpc is a component of another package: what it would output, in its order
        (subnets listed AZ by AZ, in availabilityZoneNames' order)."""
        zones = inputs.get("availabilityZoneNames") or self.zone_names[:3]
        self.counter += 1
        base = self.counter
        ids: dict[str, list[str]] = {"public": [], "private": []}
        for zone in zones:
            for kind in ("public", "private"):
                subnet_id = f"subnet-{base:09x}{len(self.subnets):08x}"
                ids[kind].append(subnet_id)
                self.subnets[subnet_id] = {"vpcId": f"vpc-{base:017x}", "availabilityZone": zone}
        return {"vpcId": f"vpc-{base:017x}", "publicSubnetIds": ids["public"],
                "privateSubnetIds": ids["private"], "isolatedSubnetIds": []}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and options."""

    def __init__(self, mocks: AwsMocks, project: str | None = None,
                 stack: str | None = None) -> None:
        super().__init__(mocks)
        self.registrations: list[dict[str, Any]] = []
        # outside a program run (a fake engine serving a plugin), say which stack this is
        self.project, self.stack = project, stack

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's rule, not the mock's: the parent's whole type chain, and nothing for
        the root stack (the mock keeps only the parent's last type). Aliases and the
        upgrade tests depend on URNs being the ones a real deployment has."""
        parent_chain = parent.split("::")[2] if parent else ""
        if parent_chain and parent_chain != "pulumi:pulumi:Stack":
            type_ = f"{parent_chain}${type_}"
        return "urn:pulumi:" + "::".join([self.stack or pulumi.get_stack(),
                                          self.project or pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append({
                "urn": response.urn, "type": request.type, "name": request.name,
                "parent": request.parent, "custom": request.custom,
                "ignore_changes": list(request.ignoreChanges),
                "args": rpc.deserialize_properties(request.object),
                "dependencies": list(request.dependencies),
                # alias specs, or the URNs the SDK computes when the monitor lacks them
                "aliases": [alias_urn(spec, request.type, request.name, response.urn)
                            for spec in request.aliases] + list(request.aliasURNs)})
        return response


class ProgramError(Exception):
    """The program refused to run (bad config): the message is for the user.

    `registered` counts the resources registered before it stopped (it should be none).
    """

    registered: int = 0


def alias_urn(alias: Any, type_token: str, name: str, urn: str) -> str:
    """The URN an alias spec stands for (the engine's own rule, for the specs we use:
    another name and/or another parent)."""
    if alias.urn:
        return str(alias.urn)
    spec = alias.spec
    prefix = urn.split("::")[0] + "::" + urn.split("::")[1]  # urn:pulumi:stack::project
    if spec.parentUrn:
        parent_types = spec.parentUrn.split("::")[2]
        chain = f"{parent_types}${spec.type or type_token}"
    else:
        chain = spec.type or type_token
    return f"{prefix}::{chain}::{spec.name or name}"


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_program(config: Mapping[str, Any], stack: str = "dev", project: str = "nat-instance-vpc",
                program: Path | None = None) -> Graph:
    """Run __main__.py (or `program`) under mocks with `config` ({"ns:key": value})."""
    def body() -> None:
        runpy.run_path(str(program or PROJECT_DIR / "__main__.py"), run_name="__main__")
    return run_under_mocks(body, config, stack, project)


def run_under_mocks(body: Callable[[], Any], config: Mapping[str, Any] | None = None,
                    stack: str = "dev", project: str = "nat-instance-vpc",
                    mocks: AwsMocks | None = None) -> Graph:
    """Run `body` (a program's code) in Pulumi's mock engine; the graph it registered.

    A `pulumi.RunError` from `body` (how the program and the components refuse bad input)
    becomes ProgramError, with the count of resources registered before it.
    """
    config_strings = {k: v if isinstance(v, str) else json.dumps(v)
                      for k, v in (config or {}).items()}
    mocks = mocks or AwsMocks(config_strings.get("aws:region", DEFAULT_REGION))
    monitor = RecordingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        # set_mocks keeps an existing root stack: drop the previous run's, or this run's
        # resources would hang under another stack's URN.
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False,
                                 monitor=monitor)
        pulumi.runtime.set_all_config(config_strings)
        exports: dict[str, Any] = {}

        def program_body() -> Any:
            try:
                body()
            except pulumi.RunError as error:
                raise ProgramError(str(error)) from None
            stack_resource = pulumi.runtime.get_root_resource()
            outputs = getattr(stack_resource, "outputs", {}) or {}
            return pulumi.Output.from_input(outputs).apply(exports.update)

        try:
            pulumi.runtime.test(program_body)()  # type: ignore[no-untyped-call]
        except ProgramError as error:
            error.registered = len(monitor.registrations)
            raise
    finally:
        pulumi.runtime.set_all_config({})
        # End the executor threads now: each holds an event loop of its own that would
        # otherwise be torn down noisily at interpreter exit.
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()

    registered = monitor.get_registered_resources()
    resources = []
    for record in monitor.registrations:
        state = registered.get(record["urn"])
        resources.append(Resource(
            type=record["type"], name=record["name"], urn=record["urn"],
            inputs=_plain(state.state if state else {}), parent=record["parent"],
            id=state.id if state else "", ignore_changes=record["ignore_changes"],
            args=_plain(record["args"]), dependencies=record["dependencies"],
            aliases=record["aliases"]))
    return Graph(resources=resources, exports=_plain(exports), invokes=mocks.invokes)
