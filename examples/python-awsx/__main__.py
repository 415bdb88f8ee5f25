"""An awsx.ec2.Vpc with no NAT Gateways, and NAT instances for its private subnets.

Copy this into your own program: only `from nat import NatInstances` and the block that
builds it are specific to this package.
"""

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from nat import NatInstances

VPC_CIDR = "10.0.0.0/16"
zones: list[str] = pulumi.Config().get_object("availabilityZones") or ["us-east-1a", "us-east-1b"]

vpc = awsx.ec2.Vpc(
    "shared",
    cidr_block=VPC_CIDR,
    availability_zone_names=zones,
    nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=awsx.ec2.NatGatewayStrategy.NONE),
    subnet_specs=[awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=20),
                  awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=20)],
)


def in_zone(subnet_ids: pulumi.Output[list[str]], index: int) -> pulumi.Output[str]:
    """awsx lists each kind of subnet in the order of availability_zone_names."""
    return subnet_ids.apply(lambda ids: ids[index])


def route_table_of(subnet_id: pulumi.Output[str]) -> pulumi.Output[str]:
    """awsx gives every private subnet a route table of its own; look it up once the VPC
    (and so the association) exists."""
    return aws.ec2.get_route_table_output(
        subnet_id=subnet_id, opts=pulumi.InvokeOutputOptions(depends_on=[vpc])).route_table_id


nat = NatInstances("nat", {
    "vpc_id": vpc.vpc_id,
    "vpc_cidr_blocks": [VPC_CIDR],
    "availability_zones": zones,
    "public_subnet_ids": {zone: in_zone(vpc.public_subnet_ids, i) for i, zone in enumerate(zones)},
    "private_route_table_ids": {zone: [route_table_of(in_zone(vpc.private_subnet_ids, i))]
                                for i, zone in enumerate(zones)},
    "instance": {"instance_type": "t4g.nano"},
})

pulumi.export("vpc_id", vpc.vpc_id)
pulumi.export("nat_public_ips", nat.nat_public_ips)
