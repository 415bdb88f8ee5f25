"""The components' arguments, as TypedDicts: the package schema is made from these.

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


class ConntrackArgs(TypedDict):
    """Connection-tracking tuning of each NAT. Unset values are computed on the instance."""

    max_entries: NotRequired[int]
    """Tracking table size (net.netfilter.nf_conntrack_max), 4,096 to 4,194,304. Default: 256
    entries per MiB of the instance type's memory, 65,536 to 2,097,152 (131,072 on a t4g.nano).
    The tracking-table alarm fires at 80 % of it."""
    tcp_established_timeout: NotRequired[int]
    """Seconds an idle established TCP flow stays tracked, 300 to 432,000. Default 7,440 (RFC
    5382's 2 h 4 min) instead of the kernel's 5 days."""
    tcp_time_wait_timeout: NotRequired[int]
    """Seconds a closed TCP flow stays tracked in TIME_WAIT, 1 to 120. Default 30 instead of 120,
    so connection churn does not fill the table."""


class InstanceArgs(TypedDict):
    """How each NAT instance is launched."""

    instance_type: NotRequired[str]
    """EC2 instance type, e.g. t4g.nano (default), t4g.micro, c7gn.medium. For a NAT it is a
    bandwidth choice: see its baseline bandwidth. The architecture (arm64 or x86_64) is read
    from AWS at deploy time."""
    key_name: NotRequired[str]
    """An existing EC2 key pair for SSH to the NATs. Default: none."""
    ami_id: NotRequired[str]
    """Pin the AMI (e.g. one made by `python -m natctl bake-ami`); changing it replaces the NATs.
    Default: the latest Amazon Linux 2023 for the architecture, from AWS's public SSM parameter,
    read once (a newer release does not replace running NATs)."""
    use_elastic_ip: NotRequired[bool]
    """Give each NAT an Elastic IP: a stable egress address (default true). false: an auto-assigned
    public IP that changes when the instance stops or is replaced."""
    public_addresses: NotRequired[int]
    """Public addresses of each NAT, 1 to 50: each a private IP of the NAT's interface with an
    Elastic IP. New connections take them in turn, so one destination ip:port takes about 64,512
    connections per address (NAT Gateway: up to 8 × 55,000). The instance type's IPv4 addresses
    per interface limit it (t4g.nano 2, t4g.small 4, c7gn.medium 4, c7gn.large 10). Each costs
    $0.005 an hour. Default 1."""
    elastic_ip_allocation_ids: NotRequired[list[str]]
    """Your own Elastic IPs (allocation ids, eipalloc-…) instead of ones the stack allocates:
    publicAddresses of them per NAT, the NATs in availabilityZones order (the first AZ's first).
    The stack associates them and never releases them: `pulumi destroy` only disassociates. Each
    must be in this region and not associated with anything but this stack's NATs. Default: the
    stack allocates its own."""
    enable_ssm: NotRequired[bool]
    """Attach AmazonSSMManagedInstanceCore so the NATs are reachable through SSM without SSH
    (default true)."""
    conntrack: NotRequired[ConntrackArgs]
    """Connection-tracking tuning; every value has a sensible default."""


class AccessArgs(TypedDict):
    """Who may reach the NATs themselves (the guide's security-group table)."""

    ssh_cidr: NotRequired[str]
    """The operator network's public range allowed to SSH to the NATs (the guide's port 22 rule).
    Default: none, so no SSH rule at all."""
    allow_ssh_from_anywhere: NotRequired[bool]
    """Must be true to accept an sshCidr wider than /8 such as 0.0.0.0/0. Not recommended."""
    enable_test_rules: NotRequired[bool]
    """Add the guide's connectivity-test rules: ICMP in from the private ranges, ICMP out to
    anywhere, SSH out to the private ranges (the NAT as a bastion). Default false."""


class HighAvailabilityArgs(TypedDict):
    """Self-healing NATs and cross-AZ failover, with no NAT Gateway and no standby instance."""

    enabled: NotRequired[bool]
    """Run each NAT in an Auto Scaling group of one, on a network interface (with the AZ's Elastic
    IP) that outlives its instances, with an agent that tests the data path every second, moves
    an AZ's routes to a healthy NAT of another AZ within seconds, moves them back when the AZ's
    NAT is healthy again, and has a broken NAT replaced. Default false (the guide's plain NAT
    instances)."""
    health_check_targets: NotRequired[list[str]]
    """host:port endpoints each NAT reaches through its own forwarding path to prove it works (a
    TCP handshake a second; any one answering is enough). Default ["checkip.amazonaws.com:443",
    "aws.amazon.com:443"]."""
    failback_after_seconds: NotRequired[int]
    """How long an AZ's NAT must stay healthy before its AZ's routes come back to it, 10 to 3,600.
    Default 60."""
    keep_connections: NotRequired[bool]
    """Keep established connections and each AZ's public address when an AZ moves to another NAT
    (failover, failback, rollout): the NATs replicate connection state with conntrackd, each NAT
    keeps a standby private address for the AZ before it (AZ order), and the NAT that takes an
    AZ moves the AZ's Elastic IP there. Needs highAvailability, one public address per NAT and
    an interface with a spare IPv4 slot; adds one spare Elastic IP per stack. Default false."""


class MonitoringArgs(TypedDict):
    """CloudWatch metrics from each NAT's own counters, alarms, and a dashboard. The default costs
    about $1.10 per AZ a month (two metrics, four alarms, a fifth on burstable types); see the
    README for what each option adds."""

    enabled: NotRequired[bool]
    """Publish PacketsDropCount (every drop cause summed) and ActiveConnectionCount from each NAT,
    with alarms (default true)."""
    namespace: NotRequired[str]
    """CloudWatch namespace of the metrics. Default "NatInstance"; the dimensions are NatGroup
    (project/stack/component) and AvailabilityZone."""
    detailed_metrics: NotRequired[bool]
    """Also publish bytes and packets forwarded each way and drops by cause (about $1.20 more per
    AZ a month, and $0.30 per drop cause in a month it drops). Default false."""
    publish_interval_seconds: NotRequired[int]
    """How often each NAT sends its one-minute samples, 60 to 900, a multiple of 60. Default 300:
    one request per five minutes ($0.09 per AZ a month; 60 costs $0.44); alarms then look back
    far enough to see every batch."""
    alarms: NotRequired[bool]
    """Per AZ: drops, tracking table above 80 %, no free port, NAT silent, and CPU credits
    exhausted on burstable types (default true)."""
    dashboard: NotRequired[bool]
    """A CloudWatch dashboard for the stack ($3 a month beyond the account's three free ones).
    Default false."""
    alarm_topic_arn: NotRequired[str]
    """An existing SNS topic the alarms notify (alarm and OK)."""
    create_alarm_topic: NotRequired[bool]
    """Create an SNS topic for the alarms (subscribe to it yourself: its ARN is an output). Default
    false."""


class NatInstancesArgs(TypedDict):
    """Arguments of NatInstances: NAT instances for an existing VPC."""

    vpc_id: pulumi.Input[str]
    """The VPC, e.g. `vpc.vpcId` of an awsx.ec2.Vpc, or an aws.ec2.Vpc's id."""
    vpc_cidr_blocks: list[str]
    """Every IPv4 CIDR of the VPC whose hosts use the NATs: the primary and any secondary CIDR. The
    NATs forward and masquerade traffic from these ranges only; a host in a range not listed
    gets no egress."""
    availability_zones: list[str]
    """The AZs to serve, e.g. ["us-east-1a", "us-east-1b"]: the keys of publicSubnetIds and
    privateRouteTableIds."""
    public_subnet_ids: Mapping[str, pulumi.Input[str]]
    """AZ → the public subnet (routed to an internet gateway) where that AZ's NAT runs."""
    private_route_table_ids: Mapping[str, Sequence[pulumi.Input[str]]]
    """AZ → the route tables of that AZ's private subnets: each gets 0.0.0.0/0 → the NAT of its AZ.
    A route table must not already have a 0.0.0.0/0 route."""
    private_cidr_blocks: NotRequired[list[str]]
    """Sources the NAT security group admits on ports 80 and 443 (the guide's "private subnet
    CIDR(s)"). Default: vpcCidrBlocks."""
    instance: NotRequired[InstanceArgs]
    """How each NAT instance is launched."""
    access: NotRequired[AccessArgs]
    """Who may reach the NATs themselves."""
    single_nat: NotRequired[bool]
    """One NAT, in the first AZ, for every AZ: cheaper, but cross-AZ charges and that AZ's failure
    cuts egress for all. Default false."""
    high_availability: NotRequired[HighAvailabilityArgs]
    """Self-healing NATs and cross-AZ failover."""
    monitoring: NotRequired[MonitoringArgs]
    """Metrics, alarms and a dashboard (on by default, about $1.10 per AZ a month)."""
    tags: NotRequired[Mapping[str, str]]
    """Tags added to every resource the component creates."""


class NatInstanceVpcArgs(TypedDict):
    """Arguments of NatInstanceVpc: the AWS guide's whole network."""

    availability_zones: list[str]
    """The AZs, e.g. ["us-east-1a", "us-east-1b"]: one public subnet, one private subnet and
    (unless singleNat) one NAT each."""
    vpc_cidr: NotRequired[str]
    """VPC IPv4 CIDR, /16 to /28 (/24 or larger when subnets are derived). Default 10.0.0.0/16."""
    public_subnet_cidrs: NotRequired[list[str]]
    """One CIDR per AZ. Default: VPC prefix + 4 bits, blocks 0.. of the VPC (10.0.0.0/20,
    10.0.16.0/20 for 10.0.0.0/16)."""
    private_subnet_cidrs: NotRequired[list[str]]
    """One CIDR per AZ. Default: VPC prefix + 4 bits, from the second half of the VPC
    (10.0.128.0/20, 10.0.144.0/20 for 10.0.0.0/16)."""
    instance: NotRequired[InstanceArgs]
    """How each NAT instance is launched."""
    access: NotRequired[AccessArgs]
    """Who may reach the NATs themselves."""
    single_nat: NotRequired[bool]
    """One NAT, in the first AZ, for every AZ: cheaper, but cross-AZ charges and that AZ's failure
    cuts egress for all. Default false."""
    high_availability: NotRequired[HighAvailabilityArgs]
    """Self-healing NATs and cross-AZ failover."""
    monitoring: NotRequired[MonitoringArgs]
    """Metrics, alarms and a dashboard (on by default, about $1.10 per AZ a month)."""
    tags: NotRequired[Mapping[str, str]]
    """Tags added to every resource the component creates."""
