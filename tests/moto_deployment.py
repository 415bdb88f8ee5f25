"""A correct deployment, made with boto3 in moto the way the program makes it in AWS."""

from __future__ import annotations

import gzip
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from nat.design.rules import expand_rules
from nat.design.userdata import render_user_data
from nat.inputs.settings import derive_subnet_cidrs
from nat.inputs.tuning import TuningOverrides

REGION = "us-east-1"


def any_image(ec2: Any) -> str:
    """An AMI moto knows (filtered: listing all of moto's images takes seconds)."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "architecture", "Values": ["arm64"]}, {"Name": "name", "Values": ["al2023*"]}])
    return str(images["Images"][0]["ImageId"])


def deploy(ec2: Any, az_count: int = 2, ssh_cidr: str | None = "198.51.100.0/24",
           test_rules: bool = False, addresses: int = 1,
           told: int | None = None) -> dict[str, Any]:
    """Build the stack's resources; return what `pulumi stack output --json` would print."""
    vpc_cidr = IPv4Network("10.0.0.0/16")
    public_cidrs, private_cidrs = derive_subnet_cidrs(vpc_cidr, az_count)
    zones = [f"{REGION}{letter}" for letter in "abcdef"[:az_count]]
    vpc = ec2.create_vpc(CidrBlock=str(vpc_cidr))["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)

    group = ec2.create_security_group(GroupName="nat", Description="NAT", VpcId=vpc)["GroupId"]
    # the provider removes AWS's default allow-all egress rule; so do we
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    for rule in expand_rules(private_cidrs, IPv4Network(ssh_cidr) if ssh_cidr else None,
                             test_rules):
        permission = {"IpProtocol": rule.protocol, "FromPort": rule.from_port,
                      "ToPort": rule.to_port, "IpRanges": [{"CidrIp": rule.cidr}]}
        if rule.direction == "inbound":
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
        else:
            ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[permission])

    image = any_image(ec2)
    outputs: dict[str, Any] = {
        "vpc_id": vpc, "vpc_cidr": str(vpc_cidr), "availability_zones": zones,
        "internet_gateway_id": igw, "public_route_table_id": public_table,
        "public_subnet_ids": {}, "private_subnet_ids": {}, "private_subnet_cidrs": {},
        "nat_instance_ids": {}, "nat_public_ips": {}, "nat_for_private_subnet": {},
        "private_route_table_ids": {}, "security_group_id": group, "ssh_cidr": ssh_cidr,
        "test_rules_enabled": test_rules, "elastic_ips": True, "high_availability": False,
        "nat_zone_for_private_subnet": {}, "nat_network_interface_ids": {},
    }
    for zone, public_cidr, private_cidr in zip(zones, public_cidrs, private_cidrs, strict=True):
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=str(public_cidr),
                                   AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=public_table, SubnetId=public)
        private = ec2.create_subnet(VpcId=vpc, CidrBlock=str(private_cidr),
                                    AvailabilityZone=zone)["Subnet"]["SubnetId"]
        # several addresses: the count in user data (the NAT reads it there); the instance's
        # own interface gets the secondary IPs below (moto shows an Elastic IP on the
        # instance only when it is associated through the instance)
        user_data = render_user_data([vpc_cidr], TuningOverrides.from_values(
            {"public_addresses": told or addresses} if addresses > 1 else {}))
        nat = ec2.run_instances(
            ImageId=image, InstanceType="t4g.nano" if addresses == 1 else "t4g.small",
            MinCount=1, MaxCount=1, SubnetId=public, SecurityGroupIds=[group],
            MetadataOptions={"HttpTokens": "required"},
            UserData=gzip.compress(user_data.encode()),
        )["Instances"][0]
        ec2.modify_instance_attribute(InstanceId=nat["InstanceId"],
                                      SourceDestCheck={"Value": False})
        eni = nat["NetworkInterfaces"][0]["NetworkInterfaceId"]
        # AWS keeps the instance's and its primary interface's flag in step; moto does not
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                               SourceDestCheck={"Value": False})
        secondary_ips = []
        if addresses > 1:  # secondary private IPs, an Elastic IP each (moto keeps one public
            # address per interface, the last associated: these go first, the primary's last)
            ec2.assign_private_ip_addresses(NetworkInterfaceId=eni,
                                            SecondaryPrivateIpAddressCount=addresses - 1)
            described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])[
                "NetworkInterfaces"][0]["PrivateIpAddresses"]
            for secondary in sorted((a["PrivateIpAddress"] for a in described
                                     if not a["Primary"]), key=IPv4Address):
                extra = ec2.allocate_address(Domain="vpc")
                ec2.associate_address(AllocationId=extra["AllocationId"],
                                      NetworkInterfaceId=eni, PrivateIpAddress=secondary)
                secondary_ips.append(extra["PublicIp"])
        allocation = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=allocation["AllocationId"],
                              InstanceId=nat["InstanceId"])
        if addresses > 1:
            outputs.setdefault("nat_public_ip_lists", {})[zone] = \
                [allocation["PublicIp"], *secondary_ips]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         NetworkInterfaceId=eni)
        ec2.associate_route_table(RouteTableId=table, SubnetId=private)
        outputs["public_subnet_ids"][zone] = public
        outputs["private_subnet_ids"][zone] = private
        outputs["private_subnet_cidrs"][zone] = str(private_cidr)
        outputs["nat_instance_ids"][zone] = nat["InstanceId"]
        outputs["nat_public_ips"][zone] = allocation["PublicIp"]
        outputs["nat_for_private_subnet"][zone] = nat["InstanceId"]
        outputs["nat_zone_for_private_subnet"][zone] = zone
        outputs["nat_network_interface_ids"][zone] = eni
        outputs["private_route_table_ids"][zone] = table
    return outputs
