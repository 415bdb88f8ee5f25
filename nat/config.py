"""Stack configuration: the keys, their defaults, and how they become NatInstanceVpc's arguments.

Pure logic: no Pulumi, no AWS. `parse_stack_config` takes the raw strings Pulumi hands a
program (structured YAML values arrive as JSON text) and returns the component's arguments,
or raises `ArgumentsError` listing every bad value with the key, the value and the fix. The
checks themselves are the components' own (nat/settings.py, nat/validation.py), run here with
the stack's key names, so a stack and a direct caller of the component are held to the same
rules.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nat import validation
from nat.monitoring import DEFAULT_NAMESPACE, PUBLISH_INTERVAL
from nat.settings import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_VPC_CIDR,
    FAILBACK_AFTER,
    MAX_AZ_COUNT,
    read_options,
    read_vpc_layout,
)
from nat.tuning import TUNING_KEYS
from nat.validation import Problems

PROJECT = "nat-instance-vpc"


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str  # "integer" | "string" | "boolean" | "array"
    default: object
    description: str
    field: str | None  # the NatInstanceVpc argument it sets; None: the program reads it


_PROGRAM_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("azCount", "integer", 2,
              f"Number of Availability Zones, 1 to {MAX_AZ_COUNT} (the guide uses 1 or 2); "
              "one public subnet, one private subnet and (unless singleNat) one NAT each.",
              None),
    ConfigKey("availabilityZones", "array", None,
              "AZ names to use, e.g. [us-east-1a, us-east-1b]; its length must equal azCount. "
              "Default: the region's first azCount available AZs.", "availability_zones"),
    ConfigKey("vpcCidr", "string", DEFAULT_VPC_CIDR,
              "VPC IPv4 CIDR, /16 to /28 (/24 or larger when subnets are derived).",
              "vpc_cidr"),
    ConfigKey("publicSubnetCidrs", "array", None,
              "One CIDR per AZ. Default: VPC prefix + 4 bits, blocks 0.. of the VPC "
              "(10.0.0.0/20, 10.0.16.0/20 for 10.0.0.0/16).", "public_subnet_cidrs"),
    ConfigKey("privateSubnetCidrs", "array", None,
              "One CIDR per AZ. Default: VPC prefix + 4 bits, from the second half of the VPC "
              "(10.0.128.0/20, 10.0.144.0/20 for 10.0.0.0/16).", "private_subnet_cidrs"),
    ConfigKey("natInstanceType", "string", DEFAULT_INSTANCE_TYPE,
              "EC2 instance type of each NAT: any type AWS has announced (botocore's list); "
              "the architecture (arm64/x86_64) is read from AWS at deploy time.",
              "instance.instance_type"),
    ConfigKey("sshCidr", "string", None,
              "Operator network's public range allowed to SSH to the NATs (the guide's port 22 "
              "rule). Default: none, so no SSH rule at all.", "access.ssh_cidr"),
    ConfigKey("allowSshFromAnywhere", "boolean", False,
              "Must be true to accept an sshCidr wider than /8 such as 0.0.0.0/0. "
              "Not recommended.", "access.allow_ssh_from_anywhere"),
    ConfigKey("keyName", "string", None, "Existing EC2 key pair name for the NATs. Default: none.",
              "instance.key_name"),
    ConfigKey("amiId", "string", None,
              "Pin the NAT AMI (e.g. one made by `python -m natctl bake-ami`). Default: latest "
              "Amazon Linux 2023 for the architecture, from AWS's public SSM parameter.",
              "instance.ami_id"),
    ConfigKey("enableTestRules", "boolean", False,
              "Add the guide's test rules: ICMP in from private CIDRs, ICMP out to anywhere, "
              "SSH out to private CIDRs (NAT as bastion).", "access.enable_test_rules"),
    ConfigKey("singleNat", "boolean", False,
              "One NAT (in the first AZ) for all private subnets: cheaper, but cross-AZ "
              "traffic charges and one AZ's failure cuts egress for all.", "single_nat"),
    ConfigKey("useElasticIp", "boolean", True,
              "Give each NAT an Elastic IP (stable egress address across stop/start). "
              "false: an auto-assigned public IP that changes on stop/start.",
              "instance.use_elastic_ip"),
    ConfigKey("enableSsm", "boolean", True,
              "Attach an instance profile with AmazonSSMManagedInstanceCore so the NATs can be "
              "reached by SSM (used by `verify --connectivity`) without SSH.",
              "instance.enable_ssm"),
    ConfigKey("highAvailability", "boolean", False,
              "Self-healing NATs and cross-AZ failover: each NAT in an Auto Scaling group of "
              "one on a network interface that keeps the AZ's Elastic IP; an agent on every "
              "NAT tests the data path each second, moves an AZ's routes to another AZ's "
              "healthy NAT within seconds and back when its own is healthy again, and has a "
              "broken NAT replaced. See \"High availability\".", "high_availability.enabled"),
    ConfigKey("healthCheckTargets", "array", None,
              "host:port endpoints each NAT reaches through its own forwarding path to prove "
              "it works (with highAvailability). Default: checkip.amazonaws.com:443, "
              "aws.amazon.com:443.", "high_availability.health_check_targets"),
    ConfigKey("failbackAfterSeconds", "integer", None,
              f"Seconds an AZ's NAT must stay healthy before its routes come back to it "
              f"(with highAvailability), {FAILBACK_AFTER[0]} to {FAILBACK_AFTER[1]}. Default "
              f"{FAILBACK_AFTER[2]}.", "high_availability.failback_after_seconds"),
    ConfigKey("monitoring", "boolean", True,
              "Each NAT publishes PacketsDropCount and ActiveConnectionCount to CloudWatch, "
              "with alarms per AZ (drops, tracking table above 80 %, NAT silent, CPU credits on "
              "burstable types): about $1 per AZ a month. See \"Monitoring\".",
              "monitoring.enabled"),
    ConfigKey("metricsNamespace", "string", DEFAULT_NAMESPACE,
              "CloudWatch namespace of the NATs' metrics.", "monitoring.namespace"),
    ConfigKey("detailedMetrics", "boolean", False,
              "Also publish bytes and packets forwarded each way and drops by cause "
              "(about $1.20 more per AZ a month, plus $0.30 per drop cause in a month it "
              "drops).", "monitoring.detailed_metrics"),
    ConfigKey("metricsPublishIntervalSeconds", "integer", PUBLISH_INTERVAL[2],
              f"How often each NAT sends its one-minute samples, {PUBLISH_INTERVAL[0]} to "
              f"{PUBLISH_INTERVAL[1]}, a multiple of 60 (60 costs $0.35 more per AZ a month).",
              "monitoring.publish_interval_seconds"),
    ConfigKey("monitoringAlarms", "boolean", True,
              "Create the alarms (with monitoring).", "monitoring.alarms"),
    ConfigKey("monitoringDashboard", "boolean", False,
              "A CloudWatch dashboard for the stack ($3 a month beyond the account's three "
              "free dashboards).", "monitoring.dashboard"),
    ConfigKey("alarmTopicArn", "string", None,
              "An existing SNS topic the alarms notify.", "monitoring.alarm_topic_arn"),
    ConfigKey("createAlarmTopic", "boolean", False,
              "Create an SNS topic for the alarms; subscribe to it (its ARN is the "
              "alarm_topic_arn output).", "monitoring.create_alarm_topic"),
)
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    *_PROGRAM_KEYS,
    *(ConfigKey(key.config_name, "integer", None, key.description,
                f"instance.conntrack.{key.field}") for key in TUNING_KEYS),
)
CONFIG_KEY_NAMES = frozenset(key.name for key in CONFIG_KEYS)
_KEY_OF_FIELD = {key.field: key.name for key in CONFIG_KEYS if key.field}

# Pulumi treats a declared key without a default as required, so Pulumi.yaml declares the
# optional keys with these "not set" defaults; only keys whose own default is None take them.
UNSET_VALUES = {"string": "", "array": "[]", "integer": "0"}
_OPTIONAL_KEY_TYPES = {key.name: key.type for key in CONFIG_KEYS if key.default is None}


@dataclass(frozen=True)
class StackSettings:
    """One stack's config, checked: NatInstanceVpc's arguments but for the AZ names, which the
    program looks up when `availability_zones` is None."""

    az_count: int
    availability_zones: tuple[str, ...] | None
    args: dict[str, Any]

    def component_args(self, zones: tuple[str, ...]) -> dict[str, Any]:
        return {**self.args, "availability_zones": list(zones)}


def config_label(namespace: str) -> Any:
    """Field id → `namespace:key`, the name the user typed in `pulumi config set`."""
    def label(field: str) -> str:
        return f"{namespace}:{_KEY_OF_FIELD.get(field, field)}"
    return label


def _is_unset(key: str, value: object) -> bool:
    """Exactly the "not set" default Pulumi.yaml declares; a blank string is an error."""
    key_type = _OPTIONAL_KEY_TYPES.get(key)
    if key_type is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value)
    if key_type == "array":
        try:
            return bool(json.loads(text) == [])
        except json.JSONDecodeError:
            return False
    return text == UNSET_VALUES[key_type] or (key_type == "integer" and text.strip() == "0")


def _convert(problems: Problems, key: ConfigKey, text: str) -> Any:
    """A raw config string as the key's type; None (with a problem) when it is not one."""
    where = key.field or key.name
    if key.type == "integer":
        try:
            return int(text)
        except ValueError:
            problems.fail(where, text, "not a whole number", "use an integer")
            return None
    if key.type == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        problems.fail(where, text, "not a boolean", "use true or false")
        return None
    if key.type == "array":
        if not text.startswith("["):  # "a,b" on the command line
            return [part.strip() for part in text.split(",")]
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            problems.fail(where, text, "not a valid list", 'use a YAML list or "a,b"')
            return None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.fail(where, text, "not a list of strings", 'use a YAML list or "a,b"')
            return None
        return items
    return text


def _set(args: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for parent in parents:
        args = args.setdefault(parent, {})
    args[leaf] = value


def parse_stack_config(raw: Mapping[str, str | None], namespace: str = PROJECT,
                       region: str | None = None) -> StackSettings:
    """Validate one stack's config. Raises ArgumentsError naming every bad key."""
    problems = Problems("invalid stack configuration", config_label(namespace))
    given = {k: v for k, v in raw.items() if v is not None and not _is_unset(k, v)}
    for name in sorted(set(given) - CONFIG_KEY_NAMES):
        close = difflib.get_close_matches(name, sorted(CONFIG_KEY_NAMES), n=1)
        hint = f"did you mean {close[0]}?" if close else (
            "known keys: " + ", ".join(sorted(CONFIG_KEY_NAMES)) + ".")
        problems.fail(name, given[name], "unknown key",
                      f"{hint} Remove it with `pulumi config rm {name}`")

    args: dict[str, Any] = {}
    az_count = 2
    for key in CONFIG_KEYS:
        if key.name not in given:
            continue
        value = given[key.name]
        text = (value if isinstance(value, str) else json.dumps(value)).strip()
        if not text:
            problems.fail(key.field or key.name, text, "empty value",
                          f"set a value or remove it: `pulumi config rm {key.name}`")
            continue
        converted = _convert(problems, key, text)
        if converted is None:
            continue
        if key.field is None:  # azCount
            if not 1 <= converted <= MAX_AZ_COUNT:
                problems.fail(key.name, text, f"out of range 1..{MAX_AZ_COUNT}",
                              f"use an integer from 1 to {MAX_AZ_COUNT}")
            else:
                az_count = converted
        else:
            _set(args, key.field, converted)

    zones = None
    if "availability_zones" in args:
        listed = validation.availability_zones(problems, "availability_zones",
                                               args.pop("availability_zones"), region)
        if listed is not None and len(listed) != az_count:
            problems.fail("availability_zones", listed,
                          f"{len(listed)} AZs listed but azCount is {az_count}",
                          f"list exactly {az_count} AZ{'' if az_count == 1 else 's'} or set "
                          f"azCount to {len(listed)}")
        elif listed is not None:
            zones = tuple(listed)
    read_vpc_layout(problems, args.get("vpc_cidr"), args.get("public_subnet_cidrs"),
                    args.get("private_subnet_cidrs"), az_count)
    read_options(problems, args)
    problems.raise_if_any()
    return StackSettings(az_count, zones, args)


def config_namespace_values(all_config: Mapping[str, object],
                            namespace: str = PROJECT) -> dict[str, str | None]:
    """Pick this project's keys out of Pulumi's flat `namespace:key` config map."""
    prefix = namespace + ":"
    values: dict[str, str | None] = {}
    for full_key, value in all_config.items():
        if full_key.startswith(prefix):
            values[full_key[len(prefix):]] = value if isinstance(value, str) or value is None \
                else json.dumps(value)
    return values


def project_config_schema() -> dict[str, dict[str, object]]:
    """The `config:` block Pulumi.yaml declares, derived from CONFIG_KEYS (a test keeps it so)."""
    schema: dict[str, dict[str, object]] = {}
    for key in CONFIG_KEYS:
        default = key.default if key.default is not None else json.loads(
            UNSET_VALUES[key.type]) if key.type != "string" else ""
        entry: dict[str, object] = {"type": key.type}
        if key.type == "array":
            entry["items"] = {"type": "string"}
        entry["default"] = default
        entry["description"] = key.description
        schema[key.name] = entry
    return schema


def config_table_markdown() -> str:
    """The README's config reference, rendered from CONFIG_KEYS (a test keeps them in step)."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key in CONFIG_KEYS:
        default = "(none)" if key.default is None else f"`{json.dumps(key.default)}`"
        lines.append(f"| `{key.name}` | {key.type} | {default} | {key.description} |")
    return "\n".join(lines)
