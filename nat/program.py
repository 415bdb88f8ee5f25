"""The stack program: read config, check it, look up AZs and the AMI, build the component.

Every check and lookup happens before the first resource is registered, so a bad stack
changes nothing in the account.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
from pulumi.runtime.config import CONFIG, get_config_env

from nat.ami import al2023_ssm_parameter
from nat.component import NatInstanceVpc
from nat.config import PROJECT, ConfigError, NatSettings, config_namespace_values, parse_settings


def choose_availability_zones(settings: NatSettings, region: str,
                              region_zones: Sequence[str]) -> tuple[str, ...]:
    """The configured AZs, or the region's first azCount; ConfigError if the region is short."""
    if settings.availability_zones is not None:
        unknown = [z for z in settings.availability_zones if z not in region_zones]
        if unknown and region_zones:
            raise ConfigError([f"{PROJECT}:availabilityZones: {unknown[0]} is not an available "
                               f"AZ of {region}. Fix: use some of {', '.join(region_zones)}"])
        return settings.availability_zones
    if len(region_zones) < settings.az_count:
        raise ConfigError([f"{PROJECT}:azCount = {settings.az_count}: region {region} has only "
                           f"{len(region_zones)} available AZs ({', '.join(region_zones)}). "
                           f"Fix: set azCount to at most {len(region_zones)}"])
    return tuple(sorted(region_zones)[:settings.az_count])


def stack_region(aws_config: Mapping[str, str | None]) -> str:
    region = aws_config.get("region") or os.environ.get("AWS_REGION") or \
        os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError(["aws:region is not set. Fix: `pulumi config set aws:region us-east-1` "
                           "(or your region)"])
    return region


def all_config() -> dict[str, object]:
    """Every config value the engine passed to this program (either way it passes them)."""
    return {**get_config_env(), **CONFIG.get()}


def build_stack(name: str | None = None) -> NatInstanceVpc:
    config = all_config()
    region = stack_region({"region": pulumi.Config("aws").get("region")})
    settings = parse_settings(config_namespace_values(config, PROJECT), PROJECT, region)

    zones_result = aws.get_availability_zones(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status",
                                                    values=["opt-in-not-required"])])
    zones = choose_availability_zones(settings, region, list(zones_result.names))

    if settings.ami_id is not None:
        ami_id, pinned = settings.ami_id, True
    else:
        parameter = aws.ssm.get_parameter(name=al2023_ssm_parameter(settings.architecture))
        ami_id, pinned = parameter.value, False

    return NatInstanceVpc(name or pulumi.get_stack(), settings, zones, ami_id, pinned)


def main() -> None:
    try:
        component = build_stack()
    except ConfigError as error:
        # RunError prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(error)) from None
    for output_name, value in component.outputs.items():
        pulumi.export(output_name, value)
