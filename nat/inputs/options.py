"""Every option of the product, declared once: the table everything else is derived from.

One `Option` per field of the components' arguments (its path, type, default, bounds, check
and description), with the stack-config key that sets it and, for what reaches the instance,
its name there. Derived from this table, never written again by hand:

- nat/inputs/args.py, the components' TypedDicts (generated: `make generate`; the package
  schema is Pulumi's reading of them), so every language sees these descriptions;
- the stack-config reader and Pulumi.yaml's `config:` block (nat/inputs/config.py);
- the checks and defaults of the components' settings (nat/inputs/settings.py);
- the README's config table; what the agent and the bootstrap script receive.

A description may use `{default}`, `{minimum}`, `{maximum}` and `{multiple_of}` (with a
format spec, e.g. `{maximum:,}`): the numbers come from the entry, so prose and code agree.
Adding an option is one entry here plus the code that uses its value.

Pure data: imports nothing of Pulumi or AWS.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from nat.inputs import validation
from nat.inputs.validation import Problems

Kind = Literal["boolean", "integer", "string", "array", "object", "map", "id", "id_map",
               "id_lists"]
Component = Literal["NatInstances", "NatInstanceVpc"]
BOTH: tuple[Component, ...] = ("NatInstances", "NatInstanceVpc")
# A check of a string or list value: (problems, field path, value) → the value, or None with
# a problem recorded.
Check = Callable[[Problems, str, object], Any]

# The Python annotation of each kind in args.py (plain kinds: the value decides resources or
# is read before deployment; ids may be outputs of other resources).
PYTHON_TYPES: dict[str, str] = {
    "boolean": "bool", "integer": "int", "string": "str", "array": "list[str]",
    # maps the component only reads are Mappings (and lists of ids Sequences): a caller's
    # dict[str, Output[str]] is then a Mapping[str, Input[str]] for mypy (dict is invariant)
    "map": "Mapping[str, str]", "id": "pulumi.Input[str]",
    "id_map": "Mapping[str, pulumi.Input[str]]",
    "id_lists": "Mapping[str, Sequence[pulumi.Input[str]]]",
}


class Shown:
    """A default as users write it: true/false, ["a", "b"], numbers with a format spec."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, (list, tuple)):
            return json.dumps(list(self.value))
        return format(self.value, spec)


@dataclass(frozen=True)
class Option:
    path: str  # in the component args, snake_case, dotted: "high_availability.enabled"
    kind: Kind
    description: str  # the args' docstring, the schema's description
    default: Any = None  # None: not set (the description says what happens then)
    stack_key: str | None = None  # the stack config key; None: the components' only
    stack_description: str | None = None  # when the flat stack key needs other words
    minimum: int | None = None
    maximum: int | None = None
    multiple_of: int | None = None
    check: Check | None = None  # for strings and lists: the value's own check
    required: bool = False
    components: tuple[Component, ...] = BOTH
    type_name: str | None = None  # kind "object": the TypedDict of the group
    agent: str | None = None  # the agent's setting it becomes (nat/instance/agent.py)
    environment: str | None = None  # the bootstrap script's variable (tuning.env)

    @property
    def field(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def group(self) -> str:
        return self.path.rpartition(".")[0]

    def _text(self, template: str) -> str:
        return template.format(default=Shown(self.default), minimum=self.minimum,
                               maximum=self.maximum, multiple_of=self.multiple_of)

    @property
    def text(self) -> str:
        """The description with its numbers filled in from the entry."""
        return self._text(self.description)

    @property
    def stack_text(self) -> str:
        return self._text(self.stack_description or self.description)

    @property
    def python_type(self) -> str:
        return self.type_name or PYTHON_TYPES[self.kind]


OPTIONS: tuple[Option, ...] = (
    # --- where the NATs go: the components' own wiring -----------------------------------------
    Option("vpc_id", "id", "The VPC, e.g. `vpc.vpcId` of an awsx.ec2.Vpc, or an aws.ec2.Vpc's "
           "id.", required=True, components=("NatInstances",)),
    Option("vpc_cidr_blocks", "array", "Every IPv4 CIDR of the VPC whose hosts use the NATs: "
           "the primary and any secondary CIDR. The NATs forward and masquerade traffic from "
           "these ranges only; a host in a range not listed gets no egress.", required=True,
           components=("NatInstances",)),
    Option("availability_zones", "array", "The AZs to serve, e.g. [\"us-east-1a\", "
           "\"us-east-1b\"]: the keys of publicSubnetIds and privateRouteTableIds.",
           required=True, components=("NatInstances",)),
    Option("public_subnet_ids", "id_map", "AZ → the public subnet (routed to an internet "
           "gateway) where that AZ's NAT runs.", required=True, components=("NatInstances",)),
    Option("private_route_table_ids", "id_lists", "AZ → the route tables of that AZ's private "
           "subnets: each gets 0.0.0.0/0 → the NAT of its AZ. A route table must not already "
           "have a 0.0.0.0/0 route.", required=True, components=("NatInstances",)),
    Option("private_cidr_blocks", "array", "Sources the NAT security group admits on ports 80 "
           "and 443 (the guide's \"private subnet CIDR(s)\"). Default: vpcCidrBlocks.",
           components=("NatInstances",)),
    # --- the guide's network (NatInstanceVpc), in the stack's key order ----------------------
    Option("availability_zones", "array", "The AZs, e.g. [\"us-east-1a\", \"us-east-1b\"]: one "
           "public subnet, one private subnet and (unless singleNat) one NAT each.",
           stack_key="availabilityZones",
           stack_description="AZ names to use, e.g. [us-east-1a, us-east-1b]; its length must "
           "equal azCount. Default: the region's first azCount available AZs.",
           required=True, components=("NatInstanceVpc",)),
    Option("vpc_cidr", "string", "VPC IPv4 CIDR, /16 to /28 (/24 or larger when subnets are "
           "derived). Default {default}.", default="10.0.0.0/16", stack_key="vpcCidr",
           stack_description="VPC IPv4 CIDR, /16 to /28 (/24 or larger when subnets are "
           "derived).", components=("NatInstanceVpc",)),
    Option("public_subnet_cidrs", "array", "One CIDR per AZ. Default: VPC prefix + 4 bits, "
           "blocks 0.. of the VPC (10.0.0.0/20, 10.0.16.0/20 for 10.0.0.0/16).",
           stack_key="publicSubnetCidrs", components=("NatInstanceVpc",)),
    Option("private_subnet_cidrs", "array", "One CIDR per AZ. Default: VPC prefix + 4 bits, "
           "from the second half of the VPC (10.0.128.0/20, 10.0.144.0/20 for 10.0.0.0/16).",
           stack_key="privateSubnetCidrs", components=("NatInstanceVpc",)),
    # --- the NATs: both components, in the stack's key order ------------------------------
    Option("instance", "object", "How each NAT instance is launched.", type_name="InstanceArgs"),
    Option("instance.instance_type", "string", "EC2 instance type, e.g. {default} (default), "
           "t4g.micro, c7gn.medium. For a NAT it is a bandwidth choice: see its baseline "
           "bandwidth. The architecture (arm64 or x86_64) is read from AWS at deploy time.",
           default="t4g.nano", stack_key="natInstanceType",
           stack_description="EC2 instance type of each NAT: any type AWS has announced "
           "(botocore's list); the architecture (arm64/x86_64) is read from AWS at deploy time.",
           check=validation.instance_type),
    Option("access", "object", "Who may reach the NATs themselves.", type_name="AccessArgs"),
    Option("access.ssh_cidr", "string", "The operator network's public range allowed to SSH "
           "to the NATs (the guide's port 22 rule). Default: none, so no SSH rule at all.",
           stack_key="sshCidr",
           stack_description="Operator network's public range allowed to SSH to the NATs (the "
           "guide's port 22 rule). Default: none, so no SSH rule at all.",
           # the width rule needs allowSshFromAnywhere: settings.py applies it (a rule
           # between two options); here only the text
           check=validation.text),
    Option("access.allow_ssh_from_anywhere", "boolean", "Must be true to accept an sshCidr "
           "wider than /8 such as 0.0.0.0/0. Not recommended.", default=False,
           stack_key="allowSshFromAnywhere"),
    Option("instance.key_name", "string", "An existing EC2 key pair for SSH to the NATs. "
           "Default: none.", stack_key="keyName",
           stack_description="Existing EC2 key pair name for the NATs. Default: none.",
           check=validation.key_name),
    Option("instance.ami_id", "string", "Pin the AMI (e.g. one made by `python -m natctl "
           "bake-ami`); changing it replaces the NATs. Default: the latest Amazon Linux 2023 for "
           "the architecture, from AWS's public SSM parameter, read once (a newer release does "
           "not replace running NATs).", stack_key="amiId",
           stack_description="Pin the NAT AMI (e.g. one made by `python -m natctl bake-ami`). "
           "Default: latest Amazon Linux 2023 for the architecture, from AWS's public SSM "
           "parameter.", check=validation.ami_id),
    Option("access.enable_test_rules", "boolean", "Add the guide's connectivity-test rules: "
           "ICMP in from the private ranges, ICMP out to anywhere, SSH out to the private "
           "ranges (the NAT as a bastion). Default {default}.", default=False,
           stack_key="enableTestRules",
           stack_description="Add the guide's test rules: ICMP in from private CIDRs, ICMP out "
           "to anywhere, SSH out to private CIDRs (NAT as bastion)."),
    Option("single_nat", "boolean", "One NAT, in the first AZ, for every AZ: cheaper, but "
           "cross-AZ charges and that AZ's failure cuts egress for all. Default {default}.",
           default=False, stack_key="singleNat",
           stack_description="One NAT (in the first AZ) for all private subnets: cheaper, but "
           "cross-AZ traffic charges and one AZ's failure cuts egress for all."),
    Option("instance.use_elastic_ip", "boolean", "Give each NAT an Elastic IP: a stable egress "
           "address (default {default}). false: an auto-assigned public IP that changes when "
           "the instance stops or is replaced.", default=True, stack_key="useElasticIp",
           stack_description="Give each NAT an Elastic IP (stable egress address across "
           "stop/start). false: an auto-assigned public IP that changes on stop/start."),
    Option("instance.public_addresses", "integer", "Public addresses of each NAT, {minimum} "
           "to {maximum}: each a private IP of the NAT's interface with an Elastic IP. New "
           "connections take them in turn, so one destination ip:port takes about 64,512 "
           "connections per address (NAT Gateway: up to 8 × 55,000). The instance type's "
           "IPv4 addresses per interface limit it (t4g.nano 2, t4g.small 4, c7gn.medium 4, "
           "c7gn.large 10). Each costs $0.005 an hour. Default {default}.", default=1,
           minimum=1, maximum=50, stack_key="publicAddressesPerNat",
           stack_description="Public addresses (Elastic IPs) of each NAT, {minimum} to "
           "{maximum}, limited by the instance type's IPv4 addresses per interface: one "
           "destination ip:port takes about 64,512 connections per address. See \"Several "
           "public addresses\".", environment="NAT_PUBLIC_ADDRESSES"),
    Option("instance.elastic_ip_allocation_ids", "array", "Your own Elastic IPs (allocation "
           "ids, eipalloc-…) instead of ones the stack allocates: publicAddresses of them per "
           "NAT, the NATs in availabilityZones order (the first AZ's first). The stack "
           "associates them and never releases them: `pulumi destroy` only disassociates. "
           "Each must be in this region and not associated with anything but this stack's "
           "NATs. Default: the stack allocates its own.",
           stack_key="elasticIpAllocationIds",
           stack_description="Your own Elastic IPs (allocation ids) for the NATs: "
           "publicAddressesPerNat of them per NAT, in AZ order; associated, never released. "
           "Default: the stack allocates its own. See \"Several public addresses\".",
           check=validation.allocation_ids),
    Option("instance.enable_ssm", "boolean", "Attach AmazonSSMManagedInstanceCore so the NATs "
           "are reachable through SSM without SSH (default {default}).", default=True,
           stack_key="enableSsm",
           stack_description="Attach an instance profile with AmazonSSMManagedInstanceCore so "
           "the NATs can be reached by SSM (used by `verify --connectivity`) without SSH."),
    Option("high_availability", "object", "Self-healing NATs and cross-AZ failover.",
           type_name="HighAvailabilityArgs"),
    Option("high_availability.enabled", "boolean", "Run each NAT in an Auto Scaling group of "
           "one, on a network interface (with the AZ's Elastic IP) that outlives its "
           "instances, with an agent that tests the data path every second, moves an AZ's "
           "routes to a healthy NAT of another AZ within seconds, moves them back when the AZ's "
           "NAT is healthy again, and has a broken NAT replaced. Default {default} (the guide's "
           "plain NAT instances).", default=False, stack_key="highAvailability",
           stack_description="Self-healing NATs and cross-AZ failover: each NAT in an Auto "
           "Scaling group of one on a network interface that keeps the AZ's Elastic IP; an "
           "agent on every NAT tests the data path each second, moves an AZ's routes to "
           "another AZ's healthy NAT within seconds and back when its own is healthy again, "
           "and has a broken NAT replaced. See \"High availability\"."),
    Option("high_availability.health_check_targets", "array", "host:port endpoints each NAT "
           "reaches through its own forwarding path to prove it works (a TCP handshake a "
           "second; any one answering is enough). Default {default}.",
           default=("checkip.amazonaws.com:443", "aws.amazon.com:443"),
           stack_key="healthCheckTargets",
           stack_description="host:port endpoints each NAT reaches through its own forwarding "
           "path to prove it works (with highAvailability).",
           check=validation.endpoints, agent="targets"),
    Option("high_availability.failback_after_seconds", "integer", "How long an AZ's NAT must "
           "stay healthy before its AZ's routes come back to it, {minimum} to {maximum:,}. "
           "Default {default}.", default=60, minimum=10, maximum=3600,
           stack_key="failbackAfterSeconds",
           stack_description="Seconds an AZ's NAT must stay healthy before its routes come "
           "back to it (with highAvailability), {minimum} to {maximum}.",
           agent="failback_after"),
    Option("high_availability.keep_connections", "boolean", "Keep established connections "
           "and each AZ's public address when an AZ moves to another NAT (failover, failback, "
           "rollout): the NATs replicate connection state with conntrackd, each NAT keeps a "
           "standby private address for the AZ before it (AZ order), and the NAT that takes an "
           "AZ moves the AZ's Elastic IP there. Needs highAvailability, one public address per "
           "NAT and an interface with a spare IPv4 slot; adds one spare Elastic IP per stack. "
           "Default {default}.", default=False, stack_key="keepConnections",
           stack_description="Keep established connections and each AZ's public address "
           "across failover, failback and rollouts (with highAvailability): conntrackd "
           "between the NATs, the AZ's Elastic IP follows its traffic. See \"Keeping "
           "connections\".", agent="handover"),
    Option("monitoring", "object", "Metrics, alarms and a dashboard (on by default, about "
           "$1.10 per AZ a month).", type_name="MonitoringArgs"),
    Option("monitoring.enabled", "boolean", "Publish PacketsDropCount (every drop cause "
           "summed) and ActiveConnectionCount from each NAT, with alarms (default {default}).",
           default=True, stack_key="monitoring",
           stack_description="Each NAT publishes PacketsDropCount and ActiveConnectionCount "
           "(and ErrorPortAllocation when ports run out) to CloudWatch, with alarms per AZ "
           "(drops, tracking table above 80 %, no free port, NAT silent, CPU credits on "
           "burstable types): about $1.10 per AZ a month. See \"Monitoring\"."),
    Option("monitoring.namespace", "string", "CloudWatch namespace of the metrics. Default "
           "\"{default}\"; the dimensions are NatGroup (project/stack/component) and "
           "AvailabilityZone.", default="NatInstance", stack_key="metricsNamespace",
           stack_description="CloudWatch namespace of the NATs' metrics.",
           check=validation.metrics_namespace, agent="metrics.namespace"),
    Option("monitoring.detailed_metrics", "boolean", "Also publish bytes and packets forwarded "
           "each way and drops by cause (about $1.20 more per AZ a month, and $0.30 per drop "
           "cause in a month it drops). Default {default}.", default=False,
           stack_key="detailedMetrics",
           stack_description="Also publish bytes and packets forwarded each way and drops by "
           "cause (about $1.20 more per AZ a month, plus $0.30 per drop cause in a month it "
           "drops).", agent="metrics.detailed"),
    Option("monitoring.publish_interval_seconds", "integer", "How often each NAT sends its "
           "one-minute samples, {minimum} to {maximum}, a multiple of {multiple_of}. Default "
           "{default}: one request per five minutes ($0.09 per AZ a month; {minimum} costs "
           "$0.44); "
           "alarms then look back far enough to see every batch.", default=300, minimum=60,
           maximum=900, multiple_of=60, stack_key="metricsPublishIntervalSeconds",
           stack_description="How often each NAT sends its one-minute samples, {minimum} to "
           "{maximum}, a multiple of {multiple_of} ({minimum} costs $0.35 more per AZ a "
           "month).",
           agent="metrics.publish_every"),
    Option("monitoring.alarms", "boolean", "Per AZ: drops, tracking table above 80 %, no "
           "free port, NAT silent, and CPU credits exhausted on burstable types (default "
           "{default}).",
           default=True, stack_key="monitoringAlarms",
           stack_description="Create the alarms (with monitoring)."),
    Option("monitoring.dashboard", "boolean", "A CloudWatch dashboard for the stack ($3 a "
           "month beyond the account's three free ones). Default {default}.", default=False,
           stack_key="monitoringDashboard",
           stack_description="A CloudWatch dashboard for the stack ($3 a month beyond the "
           "account's three free dashboards)."),
    Option("monitoring.alarm_topic_arn", "string", "An existing SNS topic the alarms notify "
           "(alarm and OK).", stack_key="alarmTopicArn",
           stack_description="An existing SNS topic the alarms notify.",
           check=validation.sns_topic_arn),
    Option("monitoring.create_alarm_topic", "boolean", "Create an SNS topic for the alarms "
           "(subscribe to it yourself: its ARN is an output). Default {default}.", default=False,
           stack_key="createAlarmTopic",
           stack_description="Create an SNS topic for the alarms; subscribe to it (its ARN is "
           "the alarm_topic_arn output)."),
    Option("instance.conntrack", "object", "Connection-tracking tuning; every value has a "
           "sensible default.", type_name="ConntrackArgs"),
    Option("instance.conntrack.max_entries", "integer", "Tracking table size "
           "(net.netfilter.nf_conntrack_max), {minimum:,} to {maximum:,}. Default: 256 entries "
           "per MiB of the instance type's memory, 65,536 to 2,097,152 (131,072 on a "
           "t4g.nano). The tracking-table alarm fires at 80 % of it.", minimum=4096,
           maximum=4194304, stack_key="conntrackMax",
           stack_description="Connection-tracking table size (net.netfilter.nf_conntrack_max). "
           "Default: 256 entries per MiB of the instance type's memory, 65,536 to 2,097,152 "
           "(131,072 on a t4g.nano), the bootstrap script's rule; the tracking-table alarm "
           "follows it.", environment="NAT_CONNTRACK_MAX"),
    Option("instance.conntrack.tcp_established_timeout", "integer", "Seconds an idle "
           "established TCP flow stays tracked, {minimum} to {maximum:,}. Default 7,440 "
           "(RFC 5382's 2 h 4 min) instead of the kernel's 5 days.", minimum=300,
           maximum=432000, stack_key="conntrackTcpEstablishedTimeout",
           stack_description="Seconds an idle established TCP flow stays tracked. Default 7440 "
           "(RFC 5382's 2 h 4 min minimum) instead of the kernel's 5 days.",
           environment="NAT_TCP_ESTABLISHED_TIMEOUT"),
    Option("instance.conntrack.tcp_time_wait_timeout", "integer", "Seconds a closed TCP flow "
           "stays tracked in TIME_WAIT, {minimum} to {maximum}. Default 30 instead of 120, so "
           "connection churn does not fill the table.", minimum=1, maximum=120,
           stack_key="conntrackTcpTimeWaitTimeout",
           stack_description="Seconds a closed TCP flow stays tracked in TIME_WAIT. Default 30 "
           "instead of 120, so connection churn does not fill the table.",
           environment="NAT_TCP_TIME_WAIT_TIMEOUT"),
    Option("tags", "map", "Tags added to every resource the component creates."),
)

# Groups' own descriptions (the TypedDict's docstring), where it says more than the field's.
GROUP_DESCRIPTIONS: dict[str, str] = {
    "instance": "How each NAT instance is launched.",
    "instance.conntrack": "Connection-tracking tuning of each NAT. Unset values are computed "
                          "on the instance.",
    "access": "Who may reach the NATs themselves (the guide's security-group table).",
    "high_availability": "Self-healing NATs and cross-AZ failover, with no NAT Gateway and no "
                         "standby instance.",
    "monitoring": "CloudWatch metrics from each NAT's own counters, alarms, and a dashboard. "
                  "The default costs about $1.10 per AZ a month (two metrics, four alarms, a "
                  "fifth on burstable types); see the README for what each option adds.",
}
COMPONENT_DESCRIPTIONS: dict[Component, str] = {
    "NatInstances": "Arguments of NatInstances: NAT instances for an existing VPC.",
    "NatInstanceVpc": "Arguments of NatInstanceVpc: the AWS guide's whole network.",
}
# The program's own key (how many AZs to look up), not a component argument.
AZ_COUNT = Option("az_count", "integer", "Number of Availability Zones, {minimum} to {maximum} "
                  "(the guide uses 1 or 2); one public subnet, one private subnet and (unless "
                  "singleNat) one NAT each.", default=2, minimum=1, maximum=6,
                  stack_key="azCount", components=())


def of(component: Component) -> tuple[Option, ...]:
    return tuple(option for option in OPTIONS if component in option.components)


def option(path: str, component: Component = "NatInstances") -> Option:
    """The entry of `path` (a shared option, or the component's own field)."""
    for entry in of(component):
        if entry.path == path:
            return entry
    raise KeyError(path)


def default(path: str) -> Any:
    return option(path).default


def fields(group: str, component: Component) -> tuple[str, ...]:
    """The field names directly inside `group` ("" for the component's top level)."""
    return tuple(entry.field for entry in of(component) if entry.group == group)


def shared_fields() -> tuple[str, ...]:
    """The top-level fields both components take (what NatInstanceVpc hands NatInstances)."""
    return tuple(entry.field for entry in OPTIONS if entry.group == "" and
                 entry.components == BOTH)


def stack_options() -> Iterator[Option]:
    """The stack config keys, in Pulumi.yaml's order: azCount first, then the table's."""
    yield AZ_COUNT
    for entry in OPTIONS:
        if entry.stack_key and "NatInstanceVpc" in entry.components:
            yield entry


# --- nat/inputs/args.py, generated ---------------------------------------------------------------
ARGS_HEADER = '''"""The components' arguments, as TypedDicts: the package schema is made from these.

GENERATED from nat/inputs/options.py by `make generate`: edit the table there, not this file
(tests/test_docs_sync.py fails when the two drift). Pulumi's schema analyzer needs a literal
TypedDict module, so this one is written out rather than built at run time.

Fields that decide how many resources exist (the AZ list, the CIDR lists, the map keys) are
plain values; ids of resources may be outputs of resources made in the same program.

No `from __future__ import annotations` here: Pulumi's schema analyzer reads these annotations
at run time and fails on strings.
"""

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
'''


def _docstring(text: str, indent: str) -> str:
    if text.endswith('"') or '"""' in text or "\\" in text:
        raise ValueError(f"a description cannot go in a docstring as it is: {text!r}")
    lines = textwrap.wrap(text, width=96 - len(indent), break_on_hyphens=False)
    body = ("\n" + indent).join(lines)
    return f'{indent}"""{body}"""\n'


def _typed_dict(name: str, description: str, entries: tuple[Option, ...]) -> str:
    out = f"\n\nclass {name}(TypedDict):\n{_docstring(description, '    ')}\n"
    for entry in entries:
        annotation = entry.python_type if entry.required else \
            f"NotRequired[{entry.python_type}]"
        out += f"    {entry.field}: {annotation}\n{_docstring(entry.text, '    ')}"
    return out


def args_module_source() -> str:
    """The text of nat/inputs/args.py: a TypedDict per group, then one per component."""
    out = ARGS_HEADER
    groups = sorted((entry for entry in OPTIONS if entry.kind == "object"),
                    key=lambda entry: -entry.path.count("."))  # nested groups first
    for group_entry in groups:
        assert group_entry.type_name is not None
        members = tuple(entry for entry in OPTIONS if entry.group == group_entry.path)
        out += _typed_dict(group_entry.type_name, GROUP_DESCRIPTIONS[group_entry.path], members)
    for component, description in COMPONENT_DESCRIPTIONS.items():
        members = tuple(entry for entry in of(component) if entry.group == "")
        out += _typed_dict(f"{component}Args", description, members)
    return out
