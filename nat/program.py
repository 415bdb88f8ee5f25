"""The stack program: read this stack's config, build NatInstanceVpc, export its outputs.

Every check and lookup happens before the first resource is registered, so a bad stack
changes nothing in the account.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.config import CONFIG, get_config_env

from nat.components.nat_instances import warnings_to_pulumi
from nat.components.vpc import NatInstanceVpc
from nat.inputs.config import (
    PROJECT,
    StackSettings,
    config_namespace_values,
    parse_stack_config,
    stack_spelling,
)
from nat.inputs.validation import CALLER_SPELLING, ArgumentsError
from nat.outputs import OUTPUT_NAMES, MonitoringOutputs, StackOutputs


def choose_availability_zones(stack: StackSettings, region: str,
                              region_zones: Sequence[str]) -> tuple[str, ...]:
    """The configured AZs, or the region's first azCount; ArgumentsError if the region is
    short."""
    heading = "invalid stack configuration"
    if stack.availability_zones is not None:
        unknown = [z for z in stack.availability_zones if z not in region_zones]
        if unknown and region_zones:
            raise ArgumentsError(heading, [
                f"{PROJECT}:availabilityZones: {unknown[0]} is not an available AZ of "
                f"{region}. Fix: use some of {', '.join(region_zones)}"])
        return stack.availability_zones
    if len(region_zones) < stack.az_count:
        raise ArgumentsError(heading, [
            f"{PROJECT}:azCount = {stack.az_count}: region {region} has only "
            f"{len(region_zones)} available AZs ({', '.join(region_zones)}). "
            f"Fix: set azCount to at most {len(region_zones)}"])
    return tuple(sorted(region_zones)[:stack.az_count])


def stack_region(aws_config: Mapping[str, str | None]) -> str:
    region = aws_config.get("region") or os.environ.get("AWS_REGION") or \
        os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ArgumentsError("invalid stack configuration", [
            "aws:region is not set. Fix: `pulumi config set aws:region us-east-1` "
            "(or your region)"])
    return region


def all_config() -> dict[str, object]:
    """Every config value the engine passed to this program (either way it passes them)."""
    return {**get_config_env(), **CONFIG.get()}


def build_stack(name: str | None = None) -> NatInstanceVpc:
    config = all_config()
    region = stack_region({"region": pulumi.Config("aws").get("region")})
    with warnings_to_pulumi():
        stack = parse_stack_config(config_namespace_values(config, PROJECT), PROJECT, region)
    zones_result = aws.get_availability_zones(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status",
                                                    values=["opt-in-not-required"])])
    zones = choose_availability_zones(stack, region, list(zones_result.names))
    spelling = CALLER_SPELLING.set(stack_spelling)  # the components' checks name stack keys
    try:
        return NatInstanceVpc.from_settings(name or pulumi.get_stack(),
                                            stack.vpc_settings(zones))
    finally:
        CALLER_SPELLING.reset(spelling)


def stack_outputs(network: NatInstanceVpc) -> pulumi.Output[StackOutputs]:
    """What `pulumi stack output` shows (nat/outputs.py): the component's outputs and the
    settings `verify` checks against, once every id is known."""
    settings = network.settings
    options = settings.options
    watch = options.monitoring
    parts: dict[str, Any] = {
        "vpc_id": network.vpc_id, "vpc_cidr": network.vpc_cidr,
        "internet_gateway_id": network.internet_gateway_id,
        "public_route_table_id": network.public_route_table_id,
        "public_subnet_ids": network.public_subnet_ids,
        "private_subnet_ids": network.private_subnet_ids,
        "private_subnet_cidrs": network.private_subnet_cidrs,
        "nat_instance_ids": network.nat_instance_ids,
        "nat_network_interface_ids": network.nat_network_interface_ids,
        "nat_public_ips": network.nat_public_ips,
        "nat_public_ip_lists": network.nat_public_ip_lists,
        "nat_zone_for_private_subnet": network.nat_zone_for_private_route_tables,
        "private_route_table_ids": network.private_route_table_ids,
        "security_group_id": network.security_group_id,
        "auto_scaling_group_names": network.auto_scaling_group_names,
        "connection_table_sizes": network.connection_table_sizes,
        "metrics_namespace": network.metrics_namespace, "metrics_group": network.metrics_group,
        "alarm_names": network.alarm_names, "alarm_topic_arn": network.alarm_topic_arn,
        "dashboard_name": network.dashboard_name}

    def build(values: dict[str, Any]) -> StackOutputs:
        return StackOutputs(
            vpc_id=values["vpc_id"], vpc_cidr=values["vpc_cidr"],
            availability_zones=settings.availability_zones,
            internet_gateway_id=values["internet_gateway_id"],
            public_route_table_id=values["public_route_table_id"],
            public_subnet_ids=values["public_subnet_ids"],
            private_subnet_ids=values["private_subnet_ids"],
            private_subnet_cidrs={zone: IPv4Network(cidr) for zone, cidr in
                                  values["private_subnet_cidrs"].items()},
            private_route_table_ids=values["private_route_table_ids"],
            security_group_id=values["security_group_id"],
            ssh_cidr=options.access.ssh_cidr,
            test_rules_enabled=options.access.enable_test_rules,
            elastic_ips=options.instance.use_elastic_ip,
            high_availability=options.high_availability.enabled,
            keep_connections=options.high_availability.keep_connections,
            nat_zone_for_private_subnet=values["nat_zone_for_private_subnet"],
            nat_public_ips=values["nat_public_ips"],
            nat_public_ip_lists=values["nat_public_ip_lists"],
            nat_instance_ids=values["nat_instance_ids"],
            nat_network_interface_ids=values["nat_network_interface_ids"],
            auto_scaling_group_names=values["auto_scaling_group_names"],
            # plain NATs only: with high availability the groups own the instances
            nat_for_private_subnet={
                zone: values["nat_instance_ids"][nat_zone] for zone, nat_zone in
                values["nat_zone_for_private_subnet"].items()
                if nat_zone in values["nat_instance_ids"]},
            connection_table_sizes=values["connection_table_sizes"],
            monitoring=MonitoringOutputs(
                namespace=values["metrics_namespace"], group=values["metrics_group"],
                detailed_metrics=watch.enabled and watch.detailed_metrics,
                instance_type=options.instance.instance_type,
                alarm_names=values["alarm_names"], alarm_topic_arn=values["alarm_topic_arn"],
                dashboard_name=values["dashboard_name"]))
    return pulumi.Output.all(**parts).apply(build)


def main() -> None:
    try:
        network = build_stack()
    except ArgumentsError as error:
        # RunError prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(error)) from None
    document = stack_outputs(network).apply(StackOutputs.to_document)
    for output_name in OUTPUT_NAMES:
        pulumi.export(output_name, _entry(document, output_name))


def _entry(document: pulumi.Output[dict[str, Any]], key: str) -> pulumi.Output[Any]:
    return document.apply(lambda values: values[key])
