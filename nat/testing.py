"""Test helpers for programs that use the components: Pulumi mocks that answer the lookups
NatInstances and NatInstanceVpc make.

    import pulumi
    from nat.testing import NatMocks

    pulumi.runtime.set_mocks(NatMocks("eu-west-1"), preview=False)

Pulumi's own mocks answer every lookup with `{}`; the components then stop with a message
naming the lookup and the field they needed (`aws.ec2.getInstanceType` → `memorySize`, …).
`NatMocks` answers: getAvailabilityZones, ssm getParameter (the Amazon Linux AMI),
ec2 getInstanceType (memory by size, architecture by AWS's naming rule), getPartition,
getRegion, getCallerIdentity, ec2 getSubnet and getRouteTable (from the subnets and route
tables registered under it, or given in `subnets` / `route_tables`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

import pulumi

from nat.inputs.instance_types import architecture_by_name

__all__ = ["MOCK_ACCOUNT", "MOCK_ADDRESSES_PER_INTERFACE", "MOCK_AMI", "MOCK_MEMORY_MIB",
           "NatMocks"]

# Documentation ranges (RFC 5737) for the addresses a mock hands out.
# Mock public addresses: from RFC 6598's shared space (never on the internet), 22 bits of a
# hash of the resource, so a stack's addresses are distinct and the same on every run
MOCK_PUBLIC_IPS = ipaddress.IPv4Network("100.64.0.0/10")
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


# What AWS's instance-type lookup answers for a few sizes (MiB), for the mocks only; the
# architecture comes from the naming rule, as it would from AWS.
MOCK_MEMORY_MIB = {"nano": 512, "micro": 1024, "small": 2048, "medium": 4096, "large": 8192,
                   "xlarge": 16384}
# IPv4 addresses per interface: AWS's figures for these types, else by size
MOCK_ADDRESSES_PER_INTERFACE = {"t4g.nano": 2, "t4g.micro": 2, "t4g.small": 4, "t4g.medium": 6,
                                "nano": 2, "micro": 2, "small": 4, "medium": 4, "large": 10}


def mock_public_ip(digest: str) -> str:
    return str(MOCK_PUBLIC_IPS[int(digest, 16) % (MOCK_PUBLIC_IPS.num_addresses - 2) + 1])


class NatMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that answer every lookup the components make, for any region and
    instance type, and give each resource a deterministic id and the outputs they read.

    `subnets` and `route_tables` ({id: {"vpcId": …, "availabilityZone": …}}) answer the
    subnet and route-table lookups (the components check that each is in the VPC and its
    AZ); `elastic_ips` ({allocation id: {"tags": …, "associationId": …,
    "networkInterfaceId": …}}) are the account's Elastic IPs before the program runs (the
    components check a caller's own ones, and warn when the stack's would pass the default
    quota of 5); `network_interfaces` ({id: {"tags": …}}) answer interface lookups;
    subnets and route tables your program makes under these mocks are added by
    themselves, as are awsx.ec2.Vpc's. Subclass and extend `call` / `new_resource` for the
    lookups and resources of the rest of your program.
    """

    def __init__(self, region: str = "us-east-1", zone_count: int = 6) -> None:
        self.region = region
        self.zone_names = [f"{region}{letter}" for letter in "abcdef"[:zone_count]]
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self.counter = 0
        self.subnets: dict[str, dict[str, str]] = {}
        self.route_tables: dict[str, dict[str, str]] = {}
        # the account's Elastic IPs before the program runs: allocation id → what AWS says
        # of it ("tags", "associationId", "networkInterfaceId", "instanceId", "publicIp")
        self.elastic_ips: dict[str, dict[str, Any]] = {}
        # network interfaces ({id: {"tags": …}}): the ones made under these mocks are added
        self.network_interfaces: dict[str, dict[str, Any]] = {}

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
                    "memorySize": MOCK_MEMORY_MIB.get(size, 16384),
                    "maximumIpv4AddressesPerInterface": MOCK_ADDRESSES_PER_INTERFACE.get(
                        instance_type, MOCK_ADDRESSES_PER_INTERFACE.get(size, 15))}
        if args.token == "aws:ec2/getEips:getEips":  # the account's Elastic IPs, by tags
            wanted = args.args.get("tags") or {}
            ids = {value for given in args.args.get("filters") or []
                   if given.get("name") == "allocation-id" for value in given["values"]}
            found = [allocation for allocation, known in self.elastic_ips.items()
                     if all(known.get("tags", {}).get(k) == v for k, v in wanted.items())
                     and (not ids or allocation in ids)]
            return {"allocationIds": found, "id": self.region,
                    "publicIps": [self._elastic_ip_address(a) for a in found]}
        if args.token == "aws:ec2/getElasticIp:getElasticIp":
            allocation = args.args["id"]
            known = self._known(self.elastic_ips, "elastic_ips", allocation)
            return {"id": allocation, "allocationId": allocation, "domain": "vpc",
                    "publicIp": self._elastic_ip_address(allocation),
                    "associationId": known.get("associationId", ""),
                    "networkInterfaceId": known.get("networkInterfaceId", ""),
                    "instanceId": known.get("instanceId", ""), "tags": known.get("tags", {})}
        if args.token == "aws:ec2/getNetworkInterface:getNetworkInterface":
            interface = args.args["id"]
            return {"id": interface,
                    **self._known(self.network_interfaces, "network_interfaces", interface)}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_ACCOUNT, "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/ops",
                    "userId": "AIDAMOCK", "id": MOCK_ACCOUNT}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            return {"id": args.args["id"], **self._known(self.subnets, "subnets", args.args["id"])}
        if args.token == "aws:ec2/getRouteTable:getRouteTable":
            if "subnetId" in args.args:  # the table associated with a subnet
                subnet_id = args.args["subnetId"]
                table_id = "rtb-" + subnet_id.removeprefix("subnet-")
                subnet = self._known(self.subnets, "subnets", subnet_id)
                self.route_tables.setdefault(table_id, {"vpcId": subnet["vpcId"]})
                return {"id": table_id, "routeTableId": table_id, "subnetId": subnet_id,
                        "vpcId": subnet["vpcId"]}
            table_id = args.args["routeTableId"]
            return {"id": table_id, "routeTableId": table_id,
                    **self._known(self.route_tables, "route_tables", table_id)}
        return {}

    def _elastic_ip_address(self, allocation: str) -> str:
        """An existing Elastic IP's address: as given in `elastic_ips`, else derived."""
        return str(self.elastic_ips[allocation].get("publicIp") or mock_public_ip(
            hashlib.sha256(allocation.encode()).hexdigest()[:17]))

    @staticmethod
    def _known(registry: dict[str, dict[str, str]], name: str, resource_id: str
               ) -> dict[str, str]:
        if resource_id not in registry:
            raise KeyError(f"NatMocks knows no {resource_id}: make it under these mocks, or "
                           f'add it to NatMocks.{name} ({{"{resource_id}": {{"vpcId": …}}}})')
        return registry[resource_id]

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
                           publicIp=mock_public_ip(digest))
        elif args.typ == "aws:ec2/eip:Eip":
            resource_id = f"eipalloc-{digest}"
            outputs.update(allocationId=resource_id, publicIp=mock_public_ip(digest))
        elif args.typ == "aws:s3/bucket:Bucket":
            resource_id = str(args.inputs.get("bucketPrefix", "bucket-")) + digest
            outputs.update(bucket=resource_id, arn=f"arn:aws:s3:::{resource_id}")
        elif args.typ == "aws:iam/role:Role":
            outputs.update(name=args.name, arn=f"arn:aws:iam::123456789012:role/{args.name}")
        elif args.typ == "aws:iam/instanceProfile:InstanceProfile":
            outputs.update(name=args.name)
        elif args.typ == "aws:ec2/networkInterface:NetworkInterface":
            resource_id = f"eni-{digest}"
            self.network_interfaces[resource_id] = {"tags": dict(args.inputs.get("tags") or {})}
            primary = f"10.254.0.{host}"
            outputs.update(privateIp=primary, privateIps=[primary] + [
                f"10.254.{n}.{host}" for n in range(1, int(args.inputs.get("privateIpsCount")
                                                          or 0) + 1)])
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
        elif args.typ == "aws:ec2/subnet:Subnet":
            self.subnets[resource_id] = {"vpcId": args.inputs.get("vpcId", ""),
                                         "availabilityZone":
                                         args.inputs.get("availabilityZone", "")}
        elif args.typ == "aws:ec2/routeTable:RouteTable":
            self.route_tables[resource_id] = {"vpcId": args.inputs.get("vpcId", "")}
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
