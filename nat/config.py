"""Stack configuration: the keys, their defaults, and validation.

Pure logic: no Pulumi, no AWS. `parse_settings` takes the raw strings Pulumi hands a
program (structured YAML values arrive as JSON text) and returns `NatSettings`, or raises
`ConfigError` listing every bad value with the key, the value and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from nat.tuning import TUNING_KEYS, TuningOverrides

PROJECT = "nat-instance-vpc"

# AWS accepts VPC and subnet CIDR blocks from /16 to /28.
AWS_MIN_PREFIX = 16
AWS_MAX_PREFIX = 28
# Derived subnets are the VPC prefix + 4: room for 8 public and 8 private subnets.
DERIVED_SUBNET_BITS = 4
MAX_AZ_COUNT = 6  # the largest AWS region (us-east-1) has 6 AZs
# An SSH source wider than this is "the internet" for our purposes.
WIDEST_SAFE_SSH_PREFIX = 8


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str  # "integer" | "string" | "boolean" | "array"
    default: object
    description: str


_PROGRAM_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("azCount", "integer", 2,
              f"Number of Availability Zones, 1 to {MAX_AZ_COUNT} (the guide uses 1 or 2); "
              "one public subnet, one private subnet and (unless singleNat) one NAT each."),
    ConfigKey("availabilityZones", "array", None,
              "AZ names to use, e.g. [us-east-1a, us-east-1b]; its length must equal azCount. "
              "Default: the region's first azCount available AZs."),
    ConfigKey("vpcCidr", "string", "10.0.0.0/16",
              "VPC IPv4 CIDR, /16 to /28 (/24 or larger when subnets are derived)."),
    ConfigKey("publicSubnetCidrs", "array", None,
              "One CIDR per AZ. Default: VPC prefix + 4 bits, blocks 0.. of the VPC "
              "(10.0.0.0/20, 10.0.16.0/20 for 10.0.0.0/16)."),
    ConfigKey("privateSubnetCidrs", "array", None,
              "One CIDR per AZ. Default: VPC prefix + 4 bits, from the second half of the VPC "
              "(10.0.128.0/20, 10.0.144.0/20 for 10.0.0.0/16)."),
    ConfigKey("natInstanceType", "string", "t4g.nano",
              "EC2 instance type of each NAT; the architecture (arm64/x86_64) follows the family."),
    ConfigKey("sshCidr", "string", None,
              "Operator network's public range allowed to SSH to the NATs (the guide's port 22 "
              "rule). Default: none, so no SSH rule at all."),
    ConfigKey("allowSshFromAnywhere", "boolean", False,
              "Must be true to accept an sshCidr wider than /8 such as 0.0.0.0/0. "
              "Not recommended."),
    ConfigKey("keyName", "string", None, "Existing EC2 key pair name for the NATs. Default: none."),
    ConfigKey("amiId", "string", None,
              "Pin the NAT AMI (e.g. one made by `python -m nat bake-ami`). Default: latest "
              "Amazon Linux 2023 for the architecture, from AWS's public SSM parameter."),
    ConfigKey("enableTestRules", "boolean", False,
              "Add the guide's test rules: ICMP in from private CIDRs, ICMP out to anywhere, "
              "SSH out to private CIDRs (NAT as bastion)."),
    ConfigKey("singleNat", "boolean", False,
              "One NAT (in the first AZ) for all private subnets: cheaper, but cross-AZ "
              "traffic charges and one AZ's failure cuts egress for all."),
    ConfigKey("useElasticIp", "boolean", True,
              "Give each NAT an Elastic IP (stable egress address across stop/start). "
              "false: an auto-assigned public IP that changes on stop/start."),
    ConfigKey("enableSsm", "boolean", True,
              "Attach an instance profile with AmazonSSMManagedInstanceCore so the NATs can be "
              "reached by SSM (used by `verify --connectivity`) without SSH."),
)
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    *_PROGRAM_KEYS,
    *(ConfigKey(key.config_name, "integer", None, key.description) for key in TUNING_KEYS),
)

CONFIG_KEY_NAMES = frozenset(key.name for key in CONFIG_KEYS)

# Instance families we know, with their CPU architecture. Graviton families are arm64.
INSTANCE_FAMILY_ARCHITECTURE: Mapping[str, str] = {
    **{family: "x86_64" for family in (
        "t2", "t3", "t3a", "m5", "m5a", "m5n", "m6i", "m6a", "m6in", "m7i", "m7i-flex", "m7a",
        "c5", "c5a", "c5n", "c6i", "c6a", "c6in", "c7i", "c7i-flex", "c7a", "r5", "r5a", "r6i",
        "r6a", "r7i", "r7a",
    )},
    **{family: "arm64" for family in (
        "a1", "t4g", "m6g", "m6gd", "m7g", "m7gd", "m8g", "c6g", "c6gd", "c6gn", "c7g", "c7gd",
        "c7gn", "c8g", "r6g", "r7g", "r8g",
    )},
}
INSTANCE_SIZE_PATTERN = re.compile(r"^(nano|micro|small|medium|large|xlarge|\d+xlarge|metal)$")
AMI_ID_PATTERN = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
AZ_NAME_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
KEY_NAME_PATTERN = re.compile(r"^[\x20-\x7e]{1,255}$")


class ConfigError(ValueError):
    """Every problem found in one stack's configuration, each naming key, value and fix."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        heading = "invalid stack configuration" + (
            f" ({len(self.problems)} problems)" if len(self.problems) > 1 else "")
        super().__init__(heading + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class NatSettings:
    az_count: int
    availability_zones: tuple[str, ...] | None
    vpc_cidr: IPv4Network
    public_subnet_cidrs: tuple[IPv4Network, ...]
    private_subnet_cidrs: tuple[IPv4Network, ...]
    nat_instance_type: str
    architecture: str
    ssh_cidr: IPv4Network | None
    key_name: str | None
    ami_id: str | None
    enable_test_rules: bool
    single_nat: bool
    use_elastic_ip: bool
    enable_ssm: bool
    tuning: TuningOverrides

    @property
    def nat_count(self) -> int:
        return 1 if self.single_nat else self.az_count


def instance_architecture(instance_type: str) -> str | None:
    """arm64 or x86_64 for a known `family.size`, None when the type is not one we know."""
    family, dot, size = instance_type.partition(".")
    if not dot or not INSTANCE_SIZE_PATTERN.match(size):
        return None
    return INSTANCE_FAMILY_ARCHITECTURE.get(family)


def derive_subnet_cidrs(vpc_cidr: IPv4Network, az_count: int) -> tuple[
        tuple[IPv4Network, ...], tuple[IPv4Network, ...]]:
    """Public subnets from the start of the VPC, private ones from its second half."""
    blocks = list(vpc_cidr.subnets(prefixlen_diff=DERIVED_SUBNET_BITS))
    half = len(blocks) // 2
    return tuple(blocks[:az_count]), tuple(blocks[half:half + az_count])


# Pulumi treats a declared key without a default as required, so Pulumi.yaml declares the
# optional keys with these "not set" defaults; only keys whose own default is None take them.
UNSET_VALUES = {"string": "", "array": "[]", "integer": "0"}
_OPTIONAL_KEY_TYPES = {key.name: key.type for key in CONFIG_KEYS if key.default is None}


def _is_unset(key: str, value: object) -> bool:
    key_type = _OPTIONAL_KEY_TYPES.get(key)
    if key_type is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value)
    return text.strip().replace(" ", "") == UNSET_VALUES[key_type]


class _Reader:
    """Reads one stack's raw values, collecting problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, str | None], namespace: str):
        self.raw = {k: v for k, v in raw.items() if v is not None and not _is_unset(k, v)}
        self.namespace = namespace
        self.problems: list[str] = []

    def where(self, key: str, value: object) -> str:
        return f"{self.namespace}:{key} = {json.dumps(value)}"

    def fail(self, key: str, value: object, why: str, fix: str) -> None:
        self.problems.append(f"{self.where(key, value)}: {why}. Fix: {fix}")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            value = json.dumps(value)
        value = value.strip()
        if value == "":
            self.fail(key, value, "empty value", f"set a value or remove it: "
                      f"`pulumi config rm {key}`")
            return None
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(key, value, "not a whole number", f"use an integer from {low} to {high}")
            return default
        if not low <= number <= high:
            self.fail(key, value, f"out of range {low}..{high}",
                      f"use an integer from {low} to {high}")
            return default
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, value, "not a boolean", "use true or false")
        return default

    def string_list(self, key: str) -> list[str] | None:
        """A JSON array (how Pulumi passes a YAML list) or a comma-separated string."""
        value = self.text(key)
        if value is None:
            return None
        if value.startswith("["):
            try:
                items = json.loads(value)
            except json.JSONDecodeError:
                self.fail(key, value, "not a valid list", 'use a YAML list or "a,b"')
                return None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                self.fail(key, value, "not a list of strings", 'use a YAML list or "a,b"')
                return None
            return [i.strip() for i in items]
        return [part.strip() for part in value.split(",")]

    def network(self, key: str, value: str, low: int = 0, high: int = 32) -> IPv4Network | None:
        try:
            network = ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            self.fail(key, value, "not an IPv4 CIDR", "write it like 10.0.0.0/16")
            return None
        if "/" not in value:
            self.fail(key, value, "no prefix length", f"write it with one, e.g. {network}")
            return None
        if str(network.network_address) != value.split("/")[0]:
            self.fail(key, value, "host bits are set",
                      f"use the network address: {network}")
            return None
        if not low <= network.prefixlen <= high:
            self.fail(key, value, f"prefix /{network.prefixlen} is outside /{low}../{high}"
                      " that AWS accepts", f"use a prefix from /{low} to /{high}")
            return None
        return network


def parse_settings(raw: Mapping[str, str | None], namespace: str = PROJECT,
                   region: str | None = None) -> NatSettings:
    """Validate one stack's config. Raises ConfigError naming every bad key."""
    reader = _Reader(raw, namespace)
    for key in sorted(set(reader.raw) - CONFIG_KEY_NAMES):
        close = difflib.get_close_matches(key, sorted(CONFIG_KEY_NAMES), n=1)
        hint = f"did you mean {close[0]}?" if close else (
            "known keys: " + ", ".join(sorted(CONFIG_KEY_NAMES)) + ".")
        reader.fail(key, reader.raw[key], "unknown key",
                    f"{hint} Remove it with `pulumi config rm {key}`")

    az_count = reader.integer("azCount", 2, 1, MAX_AZ_COUNT)

    availability_zones: tuple[str, ...] | None = None
    zones = reader.string_list("availabilityZones")
    if zones is not None:
        bad = [z for z in zones if not AZ_NAME_PATTERN.match(z)]
        if bad:
            reader.fail("availabilityZones", zones, f"{bad[0]!r} is not an AZ name",
                        "use names like us-east-1a")
        elif region and any(not z.startswith(region) for z in zones):
            reader.fail("availabilityZones", zones, f"not all in region {region}",
                        f"use AZs of {region} or change aws:region")
        elif len(set(zones)) != len(zones):
            reader.fail("availabilityZones", zones, "an AZ is listed twice", "list each once")
        elif len(zones) != az_count:
            reader.fail("availabilityZones", zones,
                        f"{len(zones)} AZs listed but azCount is {az_count}",
                        f"list exactly {az_count} AZs or set azCount to {len(zones)}")
        else:
            availability_zones = tuple(zones)

    vpc_text = reader.text("vpcCidr") or "10.0.0.0/16"
    vpc_cidr = reader.network("vpcCidr", vpc_text, AWS_MIN_PREFIX, AWS_MAX_PREFIX)

    public_subnets = _subnets(reader, "publicSubnetCidrs", az_count)
    private_subnets = _subnets(reader, "privateSubnetCidrs", az_count)
    if vpc_cidr is not None and (public_subnets is None or private_subnets is None):
        max_prefix = AWS_MAX_PREFIX - DERIVED_SUBNET_BITS
        if vpc_cidr.prefixlen > max_prefix:
            missing = " and ".join(k for k, v in (("publicSubnetCidrs", public_subnets),
                                                  ("privateSubnetCidrs", private_subnets))
                                   if v is None)
            reader.fail("vpcCidr", vpc_text,
                        f"too small to split into subnets of /{AWS_MAX_PREFIX} or larger",
                        f"use a VPC of /{max_prefix} or larger, or set {missing}")
        else:
            derived_public, derived_private = derive_subnet_cidrs(vpc_cidr, az_count)
            public_subnets = public_subnets if public_subnets is not None else derived_public
            private_subnets = private_subnets if private_subnets is not None else derived_private
    if vpc_cidr is not None and public_subnets is not None and private_subnets is not None:
        _check_subnet_layout(reader, vpc_cidr, public_subnets, private_subnets)

    instance_type = reader.text("natInstanceType") or "t4g.nano"
    architecture = instance_architecture(instance_type)
    if architecture is None:
        reader.fail("natInstanceType", instance_type, "not a known instance type",
                    "use family.size with a known family, e.g. t4g.nano, t4g.micro, t3.micro, "
                    f"c7gn.medium (families: {', '.join(sorted(INSTANCE_FAMILY_ARCHITECTURE))})")

    allow_anywhere = reader.boolean("allowSshFromAnywhere", False)
    ssh_cidr = None
    ssh_text = reader.text("sshCidr")
    if ssh_text is not None:
        ssh_cidr = reader.network("sshCidr", ssh_text)
        if ssh_cidr is not None and ssh_cidr.prefixlen < WIDEST_SAFE_SSH_PREFIX \
                and not allow_anywhere:
            reader.fail("sshCidr", ssh_text,
                        "opens SSH to (nearly) the whole internet",
                        "use your network's public range, e.g. 198.51.100.0/24, or set "
                        "allowSshFromAnywhere to true if you really mean it")
            ssh_cidr = None

    key_name = reader.text("keyName")
    if key_name is not None and not KEY_NAME_PATTERN.match(key_name):
        reader.fail("keyName", key_name, "not a valid key pair name",
                    "use the name of an existing EC2 key pair (printable ASCII, 1-255 chars)")

    ami_id = reader.text("amiId")
    if ami_id is not None and not AMI_ID_PATTERN.match(ami_id):
        reader.fail("amiId", ami_id, "not shaped like an AMI id",
                    "use ami- followed by 8 or 17 hex digits, e.g. ami-0123456789abcdef0, or "
                    "remove it to use the latest Amazon Linux 2023")
        ami_id = None

    tuning = TuningOverrides.from_values(
        {key.config_name: reader.integer(key.config_name, 0, key.minimum, key.maximum)
         for key in TUNING_KEYS if key.config_name in reader.raw})

    enable_test_rules = reader.boolean("enableTestRules", False)
    single_nat = reader.boolean("singleNat", False)
    use_elastic_ip = reader.boolean("useElasticIp", True)
    enable_ssm = reader.boolean("enableSsm", True)

    if reader.problems:
        raise ConfigError(reader.problems)
    assert vpc_cidr is not None and public_subnets is not None and private_subnets is not None
    assert architecture is not None
    return NatSettings(
        az_count=az_count,
        availability_zones=availability_zones,
        vpc_cidr=vpc_cidr,
        public_subnet_cidrs=tuple(public_subnets),
        private_subnet_cidrs=tuple(private_subnets),
        nat_instance_type=instance_type,
        architecture=architecture,
        ssh_cidr=ssh_cidr,
        key_name=key_name,
        ami_id=ami_id,
        enable_test_rules=enable_test_rules,
        single_nat=single_nat,
        use_elastic_ip=use_elastic_ip,
        enable_ssm=enable_ssm,
        tuning=tuning,
    )


def _subnets(reader: _Reader, key: str, az_count: int) -> tuple[IPv4Network, ...] | None:
    items = reader.string_list(key)
    if items is None:
        return None
    if len(items) != az_count:
        reader.fail(key, items, f"{len(items)} subnets for azCount {az_count}",
                    f"give exactly one CIDR per AZ ({az_count}), or remove the key to derive them")
        return None
    networks = [reader.network(key, item, AWS_MIN_PREFIX, AWS_MAX_PREFIX) for item in items]
    if any(n is None for n in networks):
        return None
    return tuple(n for n in networks if n is not None)


def _check_subnet_layout(reader: _Reader, vpc_cidr: IPv4Network,
                         public_subnets: Sequence[IPv4Network],
                         private_subnets: Sequence[IPv4Network]) -> None:
    labelled = [("publicSubnetCidrs", s) for s in public_subnets] + \
               [("privateSubnetCidrs", s) for s in private_subnets]
    for key, subnet in labelled:
        if not subnet.subnet_of(vpc_cidr):
            reader.fail(key, str(subnet), f"outside the VPC {vpc_cidr}",
                        f"use subnets inside vpcCidr {vpc_cidr}")
    for index, (key, subnet) in enumerate(labelled):
        for other_key, other in labelled[index + 1:]:
            if subnet.overlaps(other):
                reader.fail(key, str(subnet), f"overlaps {other_key} {other}",
                            "give every subnet its own range")


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
