"""NatInstanceVpc: the guide's whole network as one Pulumi component."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from nat.config import NatSettings
from nat.rules import ANYWHERE, expand_rules
from nat.userdata import encode_user_data, render_user_data

COMPONENT_TYPE = "nat:index:NatInstanceVpc"
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


class NatInstanceVpc(pulumi.ComponentResource):
    """A VPC whose private subnets reach the internet through one NAT instance per AZ.

    `availability_zones` and `ami_id` are plain strings resolved before construction, so that
    every lookup and check happens before any resource is registered.
    """

    vpc_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, settings: NatSettings, availability_zones: Sequence[str],
                 ami_id: str, ami_pinned: bool,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        if len(availability_zones) != settings.az_count:
            raise ValueError(f"{len(availability_zones)} AZs given for azCount "
                             f"{settings.az_count}")
        child = pulumi.ResourceOptions(parent=self)

        def tags(resource_name: str) -> dict[str, str]:
            return {"Name": resource_name, "nat-instance-vpc:component": name}

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=str(settings.vpc_cidr),
                          enable_dns_support=True, enable_dns_hostnames=True,
                          tags=tags(f"{name}-vpc"), opts=child)
        internet_gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id,
                                                   tags=tags(f"{name}-igw"), opts=child)

        public_route_table = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id,
                                                tags=tags(f"{name}-public-rt"), opts=child)
        aws.ec2.Route(f"{name}-public-default-route", route_table_id=public_route_table.id,
                      destination_cidr_block=ANYWHERE, gateway_id=internet_gateway.id,
                      opts=child)

        public_subnets: dict[str, aws.ec2.Subnet] = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        for zone, public_cidr, private_cidr in zip(availability_zones,
                                                   settings.public_subnet_cidrs,
                                                   settings.private_subnet_cidrs,
                                                   strict=True):
            public_subnets[zone] = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=vpc.id, cidr_block=str(public_cidr),
                availability_zone=zone, map_public_ip_on_launch=False,
                tags=tags(f"{name}-public-{zone}"), opts=child)
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{zone}", subnet_id=public_subnets[zone].id,
                route_table_id=public_route_table.id, opts=child)
            private_subnets[zone] = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=vpc.id, cidr_block=str(private_cidr),
                availability_zone=zone, map_public_ip_on_launch=False,
                tags=tags(f"{name}-private-{zone}"), opts=child)

        # No inline rules: each guide row is its own resource, and the provider removes
        # AWS's default allow-all egress rule, so the group holds exactly the table.
        security_group = aws.ec2.SecurityGroup(
            f"{name}-nat-sg", vpc_id=vpc.id,
            description="NAT instances: the AWS guide's rules (nat-instance-vpc)",
            tags=tags(f"{name}-nat-sg"), opts=child)
        for rule in expand_rules(settings.private_subnet_cidrs, settings.ssh_cidr,
                                 settings.enable_test_rules):
            rule_class = (aws.vpc.SecurityGroupIngressRule if rule.direction == "inbound"
                          else aws.vpc.SecurityGroupEgressRule)
            rule_class(f"{name}-nat-sg-{rule.slug}", security_group_id=security_group.id,
                       cidr_ipv4=rule.cidr, ip_protocol=rule.protocol,
                       from_port=rule.from_port, to_port=rule.to_port,
                       description=rule.description, opts=child)

        instance_profile = None
        if settings.enable_ssm:
            role = aws.iam.Role(f"{name}-nat-role", assume_role_policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "ec2.amazonaws.com"}}],
            }), tags=tags(f"{name}-nat-role"), opts=child)
            aws.iam.RolePolicyAttachment(f"{name}-nat-ssm", role=role.name,
                                         policy_arn=SSM_POLICY_ARN, opts=child)
            instance_profile = aws.iam.InstanceProfile(f"{name}-nat-profile", role=role.name,
                                                       opts=child)

        user_data = encode_user_data(render_user_data(settings.vpc_cidr, settings.tuning))
        # A new AL2023 release must not replace running NATs at the next `pulumi up`; a pinned
        # AMI is a deliberate choice, so changing the pin does replace them.
        instance_opts = pulumi.ResourceOptions(
            parent=self, ignore_changes=[] if ami_pinned else ["ami"])
        nat_zones = list(availability_zones[:settings.nat_count])
        nat_instances: dict[str, aws.ec2.Instance] = {}
        nat_public_ips: dict[str, pulumi.Output[str]] = {}
        for zone in nat_zones:
            nat_instance = aws.ec2.Instance(
                f"{name}-nat-{zone}",
                ami=ami_id,
                instance_type=settings.nat_instance_type,
                subnet_id=public_subnets[zone].id,
                vpc_security_group_ids=[security_group.id],
                source_dest_check=False,
                # An auto-assigned address lets the first boot reach package mirrors before the
                # Elastic IP is associated; AWS releases it when the EIP arrives.
                associate_public_ip_address=True,
                key_name=settings.key_name,
                iam_instance_profile=instance_profile.name if instance_profile else None,
                metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                    http_endpoint="enabled", http_tokens="required",
                    http_put_response_hop_limit=1),
                root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                    volume_type="gp3", encrypted=True, delete_on_termination=True),
                user_data_base64=user_data,
                # cloud-init runs user data once per instance: an in-place change would never
                # run the new script, so a changed script replaces the NAT.
                user_data_replace_on_change=True,
                tags=tags(f"{name}-nat-{zone}"),
                opts=instance_opts)
            nat_instances[zone] = nat_instance
            if settings.use_elastic_ip:
                elastic_ip = aws.ec2.Eip(f"{name}-nat-eip-{zone}", domain="vpc",
                                         tags=tags(f"{name}-nat-eip-{zone}"), opts=child)
                aws.ec2.EipAssociation(f"{name}-nat-eip-assoc-{zone}",
                                       allocation_id=elastic_ip.allocation_id,
                                       instance_id=nat_instance.id, opts=child)
                nat_public_ips[zone] = elastic_ip.public_ip
            else:
                nat_public_ips[zone] = nat_instance.public_ip

        private_route_tables: dict[str, aws.ec2.RouteTable] = {}
        nat_for_private_subnet: dict[str, pulumi.Output[str]] = {}
        for zone in availability_zones:
            nat_instance = nat_instances[zone if zone in nat_instances else nat_zones[0]]
            private_route_tables[zone] = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}", vpc_id=vpc.id,
                tags=tags(f"{name}-private-rt-{zone}"), opts=child)
            aws.ec2.Route(f"{name}-private-default-route-{zone}",
                          route_table_id=private_route_tables[zone].id,
                          destination_cidr_block=ANYWHERE,
                          network_interface_id=nat_instance.primary_network_interface_id,
                          opts=child)
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{zone}", subnet_id=private_subnets[zone].id,
                route_table_id=private_route_tables[zone].id, opts=child)
            nat_for_private_subnet[zone] = nat_instance.id

        self.vpc_id = vpc.id
        self.internet_gateway_id = internet_gateway.id
        self.public_route_table_id = public_route_table.id
        self.security_group_id = security_group.id
        self.public_subnet_ids = {z: s.id for z, s in public_subnets.items()}
        self.private_subnet_ids = {z: s.id for z, s in private_subnets.items()}
        self.nat_instance_ids = {z: i.id for z, i in nat_instances.items()}
        self.nat_public_ips = nat_public_ips
        self.private_route_table_ids = {z: t.id for z, t in private_route_tables.items()}
        self.nat_for_private_subnet = nat_for_private_subnet
        self.outputs: dict[str, object] = {
            "vpc_id": self.vpc_id,
            "vpc_cidr": str(settings.vpc_cidr),
            "availability_zones": list(availability_zones),
            "internet_gateway_id": self.internet_gateway_id,
            "public_route_table_id": self.public_route_table_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "private_subnet_cidrs": {z: str(c) for z, c in zip(
                availability_zones, settings.private_subnet_cidrs, strict=True)},
            "nat_instance_ids": self.nat_instance_ids,
            "nat_public_ips": self.nat_public_ips,
            "nat_for_private_subnet": self.nat_for_private_subnet,
            "private_route_table_ids": self.private_route_table_ids,
            "security_group_id": self.security_group_id,
            "ssh_cidr": str(settings.ssh_cidr) if settings.ssh_cidr else None,
            "test_rules_enabled": settings.enable_test_rules,
            "elastic_ips": settings.use_elastic_ip,
        }
        self.register_outputs(self.outputs)
