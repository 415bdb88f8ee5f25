"""Two AZs of the high-availability topology in network namespaces, with moto_server as AWS.

    private host a ─┐                     ┌─ NAT a (ens5 10.0.0.10, EIP 203.0.113.10)
    10.0.128.10     ├─ VPC router ────────┤
    private host b ─┘  tables: a → 100,   └─ NAT b (ens5 10.0.16.10, EIP 203.0.113.11)
    10.0.144.10           b → 101          │
                       └── internet gateway (1:1 for both EIPs) ── internet host 198.51.100.20
                                                                   (echo server, moto_server)

Each NAT runs its rendered user data as cloud-init would (the bootstrap script, and the agent
as user data carries it), then the agent as its systemd unit says, with a stand-in instance
metadata service on 169.254.169.254 and a stand-in `ethtool` that prints an ENA interface's
statistics (testbed/ena-ethtool-S.txt; a test can raise its allowance counters). With
`high_availability=False` the NATs are the plain kind: routes stay put, the agent only
publishes metrics (when `metrics` is given). The agents call "AWS" (moto_server on the
internet host) through their own public path, as real NATs reach the EC2 API. The route
applier plays the VPC router's side: it reads the private route tables from moto_server every
100 ms and points each private subnet's table at the NAT whose interface the route names.

Where moto is unlike AWS, the test bed does what AWS documents, in the open:
- a launch template's existing network interface is not attached by moto: the test bed
  attaches the AZ's static interface to the group's instance;
- SetInstanceHealth(Unhealthy) replaces nothing in moto: `replace_instance` terminates the
  instance and starts the group's new one on the same interface, as the group would;
- route state is always "active" in moto: the agent's "gone" check reads the interface's
  attachment and the instance state instead, which moto does keep.

Only addresses of these namespaces: 10.0.0.0/16, 198.51.100.0/24, 203.0.113.0/24 (the test
process reaches moto_server over a veth at 203.0.113.252/30). Needs root, iproute2, iptables,
nftables, util-linux; close() removes everything, also after a failure.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import boto3

from nat.design import monitoring
from nat.design.ha import agent_settings
from nat.design.userdata import (
    AgentObject,
    agent_object_key,
    agent_script,
    render_user_data,
)
from nat.inputs.settings import HighAvailabilitySettings
from nat.inputs.tuning import TuningOverrides
from nat.instance.agent import MetricsSettings
from nat.instance.agent import Settings as AgentSettings
from testbed.topology import (
    INTERNET_HOST,
    PROBE,
    SCRATCH_MOUNTS,
    VPC_CIDR,
    ZONE_A,
    Network,
    Zone,
    run,
)

IMDS = str(Path(__file__).with_name("imds.py"))
ENA_STATISTICS = Path(__file__).with_name("ena-ethtool-S.txt")
LAB_METRICS = MetricsSettings(namespace="NatInstance", group="nat-instance-vpc/lab/nat",
                              detailed=True, sample_every=1.0,
                              publish_every=3.0)  # production: 60 s and 300 s
MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
REGION = "us-east-1"
ECHO_PORT = 8080
# the agents' health-check targets: two, as in production (any one answering is enough)
TARGET_PORTS = (8080, 8081)
API_PORT = 5000
FLOWS = str(Path(__file__).with_name("flows.py"))
FLOWS_PORT = 9000
PROXY_PORT = 5001  # what the agents call: testbed/apiproxy.py in front of moto_server
API_PROXY = str(Path(__file__).with_name("apiproxy.py"))
API_FROM_TESTS = "203.0.113.253"  # the internet host's side of the test process's veth
TEST_SIDE = "203.0.113.254"
_serial = itertools.count()


ZONES = {
    "a": ZONE_A,
    "b": Zone("us-east-1b", "b", "10.0.16.0/20", "10.0.144.0/20", "10.0.16.10", "10.0.16.1",
              "10.0.144.10", "10.0.144.1", "203.0.113.11", "101"),
}


@dataclass
class Nat:
    """One NAT instance: its namespace, processes and scratch directories."""

    zone: Zone
    namespace: str
    instance_id: str
    release: str
    scratch: Path
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.scratch / "agent.log"


PUBLIC_IPS = {zone.public_ip for zone in ZONES.values()}
# handover: the address each NAT's interface keeps for the AZ before it in the ring (as the
# component reserves a secondary private IP), and the stack's spare Elastic IP
STANDBY = {"a": "10.0.0.20", "b": "10.0.16.20"}
SPARE_PUBLIC_IP = "203.0.113.12"


@dataclass
class Watch:
    """A private host's egress, probe by probe: (start time, address seen or ""). Only an
    answer seen from a NAT's public address is egress; anything else would be a leak of the
    test bed and is kept apart (`leaks`)."""

    attempts: list[tuple[float, str]]

    def __post_init__(self) -> None:
        self.leaks = [(t, seen) for t, seen in self.attempts if seen and seen not in PUBLIC_IPS]
        self.attempts = [(t, seen if seen in PUBLIC_IPS else "") for t, seen in self.attempts]

    def successes(self, after: float = 0.0) -> list[tuple[float, str]]:
        return [(t, seen) for t, seen in self.attempts if seen and t >= after]

    def longest_gap(self, start: float = 0.0, end: float = float("inf")) -> float:
        """The longest time between two successful probes started in [start, end]."""
        times = [t for t, seen in self.attempts if seen and start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))

    def gap_around(self, moment: float, horizon: float = 30.0) -> float:
        """The longest egress gap from just before `moment` (an event: a NAT killed, a route
        switched) to `horizon` seconds after it; infinite if egress never came back."""
        if not self.successes(moment + 0.5):
            return float("inf")
        return self.longest_gap(moment - 1.0, moment + horizon)

    def seen_after(self, moment: float) -> set[str]:
        return {seen for t, seen in self.attempts if seen and t > moment}


def end(process: subprocess.Popen[str]) -> None:
    """Kill a process and, if it leads a session, everything in it (a NAT's supervisor leaves
    no agent behind)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if process.poll() is None:
            process.kill()


class HaLab:
    """Two AZs' NATs as Auto Scaling groups see them: the shared test bed (testbed.topology
    Network) with both zones, moto_server as AWS on the internet host, and a NAT boot helper
    that runs the rendered user data and the agent in a namespace per instance."""

    def __init__(self, failback_after: float = 5, replace_after: float = 5,
                 propagation: float = 0.0, high_availability: bool = True,
                 metrics: MetricsSettings | None = None,
                 rollout_check: float | None = None, handover: bool = False,
                 address_delay: float = 0.0, group_tracking: bool = False) -> None:
        """The agents run with their production timings for everything that detects a
        fault (probes, peers, route reads); what only waits is shorter: failback and
        replacement after 5 s, and the rollout check when a test sets it."""
        self.failback_after, self.replace_after = failback_after, replace_after
        self.rollout_check = rollout_check
        self.propagation = propagation
        # handover: connections and Elastic IPs follow an AZ's traffic; the internet gateway
        # applies an address move `address_delay` s after the API call (AWS publishes no
        # figure; the one measurement found is 5-6 s)
        self.handover, self.address_delay = handover, address_delay
        self.address_events: list[tuple[float, str, str]] = []  # (time, public, private)
        # security groups track connections per interface (the guide's rules admit no
        # inbound from the internet): a flow's inbound packets pass only after an outbound
        # packet of the flow passed the same interface (AWS documents the tracking, not
        # what a flow new to an interface meets: modelled conservatively)
        self.group_tracking = group_tracking
        self.high_availability = high_availability
        self.metrics = metrics
        self.nats: dict[str, Nat] = {}
        self.processes: list[subprocess.Popen[str]] = []
        self.route_events: list[tuple[float, str, str]] = []  # (time, private AZ, NAT AZ)
        self.applied: dict[str, str] = {}
        self._stop = threading.Event()
        self.network = Network(list(ZONES.values()), "ha", internet_host_mtu=1500,
                               block_pmtud=False)
        self.tag, self.scratch = self.network.tag, self.network.scratch
        self.fake_bin = self.network.fake_bin
        self.names = {"router": self.network.router, "igw": self.network.igw,
                      "inet": self.network.internet,
                      **{f"priv-{z}": host for z, host in self.network.private_hosts.items()}}
        self.test_link = f"{self.tag}aws"
        try:
            self._connect_tests()
            if group_tracking:
                self._track_connections()
            self._start_internet()
            self._make_aws()
            self._applier = threading.Thread(target=self._apply_routes, daemon=True)
            self._applier.start()
            if handover:
                threading.Thread(target=self._apply_addresses, daemon=True).start()
            for letter in ZONES:
                self.start_nat(letter)
        except BaseException:
            self.close()
            raise

    # --- the network ---------------------------------------------------------------------------
    def ns(self, name: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.names.get(name, name), *command], check=check)

    def _connect_tests(self) -> None:
        """The test process's own way to the "AWS API" on the internet host (one lab at a
        time)."""
        if run(["ip", "-o", "addr", "show", "to", TEST_SIDE]).stdout.strip():
            raise RuntimeError(f"another HaLab holds {TEST_SIDE}: close it first (one lab at "
                               "a time: they share the test process's way to the API)")
        run(["ip", "link", "add", self.test_link, "type", "veth", "peer", "name",
             f"{self.tag}r"])
        run(["ip", "link", "set", f"{self.tag}r", "netns", self.names["inet"], "name", "aws0"])
        run(["ip", "addr", "add", f"{TEST_SIDE}/30", "dev", self.test_link])
        run(["ip", "link", "set", self.test_link, "up"])
        self.ns("inet", "ip", "addr", "add", f"{API_FROM_TESTS}/30", "dev", "aws0")
        self.ns("inet", "ip", "link", "set", "aws0", "up")

    def _start_internet(self) -> None:
        for port in TARGET_PORTS:
            self.processes.append(self._background("inet", [sys.executable, PROBE, "serve",
                                                            str(port)], "listening"))
        self.processes.append(self._background("inet", [sys.executable, FLOWS, "serve",
                                                        str(FLOWS_PORT)], "listening"))
        # the agents call "AWS" through a proxy that can cut its answers short
        self.api_fault = self.scratch / "api-fault"
        self.associations = self.scratch / "associations.jsonl"
        self.processes.append(self._background("inet", [
            sys.executable, API_PROXY, str(PROXY_PORT), str(self.api_fault),
            f"http://127.0.0.1:{API_PORT}", str(self.associations)], "listening"))
        moto = subprocess.Popen(["ip", "netns", "exec", self.names["inet"], MOTO_SERVER, "-H",
                                 "0.0.0.0", "-p", str(API_PORT)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True)
        self.processes.append(moto)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((API_FROM_TESTS, API_PORT), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or moto.poll() is not None:
                    raise RuntimeError("moto_server did not start in the internet "
                                       "namespace") from None
                time.sleep(0.2)

    def _background(self, namespace: str, command: list[str],
                    ready: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(["ip", "netns", "exec", self.names.get(namespace, namespace),
                                    *command], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        if ready not in line:
            process.kill()
            raise RuntimeError(f"{command} did not start: {line}")
        return process

    def _track_connections(self) -> None:
        """The NAT interfaces' security group tracking, at the internet gateway: the key of a
        flow is the private address it leaves from (each address here belongs to one
        interface), the remote end, the protocol and both ports."""
        rules = "\n".join([
            "table ip security_groups {",
            "  set flows { type ipv4_addr . ipv4_addr . inet_proto . inet_service . "
            "inet_service; flags dynamic, timeout; timeout 350s; }",
            "  chain forward { type filter hook forward priority -150; policy accept;",
            '    iifname "to-vpc" oifname "to-inet" meta l4proto { tcp, udp } update @flows '
            "{ ip saddr . ip daddr . meta l4proto . th sport . th dport }",
            '    iifname "to-inet" oifname "to-vpc" meta l4proto { tcp, udp } ip daddr . ip saddr '
            ". meta l4proto . th dport . th sport != @flows counter drop",
            "  }", "}", ""])
        run(["ip", "netns", "exec", self.names["igw"], "nft", "-f", "-"], input=rules)

    def group_flows(self, private: str) -> int:
        """Flows the security group model tracks for a private address (its interface)."""
        listed = self.ns("igw", "nft", "list", "set", "ip", "security_groups", "flows").stdout
        return listed.count(f"{private} . ")

    # --- "AWS" ---------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION,  # type: ignore[call-overload]
                            endpoint_url=f"http://{API_FROM_TESTS}:{API_PORT}",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _make_aws(self) -> None:
        ec2, groups = self.client("ec2"), self.client("autoscaling")
        vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
        image = ec2.describe_images(Owners=["amazon"], Filters=[
            {"Name": "name", "Values": ["al2023*"]}])["Images"][0]["ImageId"]
        self.eni: dict[str, str] = {}
        self.tables: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.allocations: dict[str, str] = {}
        self.public_of: dict[str, str] = {}
        for letter, zone in ZONES.items():
            public = ec2.create_subnet(VpcId=vpc, CidrBlock=zone.public_cidr,
                                       AvailabilityZone=zone.name)["Subnet"]["SubnetId"]
            private = ec2.create_subnet(VpcId=vpc, CidrBlock=zone.private_cidr,
                                        AvailabilityZone=zone.name)["Subnet"]["SubnetId"]
            addresses = [{"PrivateIpAddress": zone.nat_address, "Primary": True}] + (
                [{"PrivateIpAddress": STANDBY[letter], "Primary": False}]
                if self.handover else [])
            self.eni[letter] = ec2.create_network_interface(
                SubnetId=public, PrivateIpAddresses=addresses)["NetworkInterface"][
                "NetworkInterfaceId"]
            if self.handover:
                self.network.admit(STANDBY[letter])
                self._allocate(ec2, letter, zone.public_ip, self.eni[letter], zone.nat_address)
            table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.associate_route_table(RouteTableId=table, SubnetId=private)
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                             NetworkInterfaceId=self.eni[letter])
            self.tables[letter] = table
            template = ec2.create_launch_template(
                LaunchTemplateName=f"nat-{letter}", LaunchTemplateData={
                    "ImageId": image, "InstanceType": "t4g.nano",
                    "NetworkInterfaces": [{"DeviceIndex": 0,
                                           "NetworkInterfaceId": self.eni[letter],
                                           "DeleteOnTermination": False}]})["LaunchTemplate"]
            group = f"nat-{letter}"
            groups.create_auto_scaling_group(
                AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
                VPCZoneIdentifier=public,
                LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"],
                                "Version": "1"},
                Tags=[{"Key": "nat-instance-vpc:release", "Value": "r1",
                       "PropagateAtLaunch": False, "ResourceId": group,
                       "ResourceType": "auto-scaling-group"}])
            self.groups[letter] = group
        self.agent_object: AgentObject | None = None
        if self.handover:
            self._allocate(ec2, "spare", SPARE_PUBLIC_IP)
            # the agent as the component stores it: user data carries the loader
            text = agent_script(handover=True)
            key, digest = agent_object_key(text)
            s3 = self.client("s3")
            s3.create_bucket(Bucket="nat-agent-lab")
            s3.put_object(Bucket="nat-agent-lab", Key=key, Body=text.encode())
            self.agent_object = AgentObject("nat-agent-lab", key, REGION, digest)

    def _allocate(self, ec2: Any, name: str, public_ip: str, interface: str | None = None,
                  private: str | None = None) -> None:
        """An Elastic IP (moto picks its own address: the test bed's is `public_ip`)."""
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        self.allocations[name] = allocation
        self.public_of[allocation] = public_ip
        if interface is not None:
            ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=interface,
                                  PrivateIpAddress=private)

    def address_of(self, name: str) -> str:
        """The private address AZ `name`'s Elastic IP (or "spare") is associated with now, as
        AWS would have it."""
        allocation = self.allocations[name]
        found = self.client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        interface, named = self._asked_associations().get(allocation, ("", ""))
        if found.get("PrivateIpAddress") and interface == found.get("NetworkInterfaceId") \
                and named:
            return named
        return str(found.get("PrivateIpAddress", ""))

    def _apply_addresses(self) -> None:
        """The internet gateway follows the Elastic IP associations (every 100 ms), each move
        `address_delay` s after it shows in the API. Where two addresses name one private
        address, the later association wins (AWS replaces the earlier one; moto keeps
        both)."""
        ec2 = self.client("ec2")
        seen: dict[str, tuple[str, float]] = {}  # allocation → (private, since)
        applied: list[tuple[str, str]] = []
        while not self._stop.wait(0.1):
            try:
                found = ec2.describe_addresses(
                    AllocationIds=list(self.allocations.values()))["Addresses"]
            except Exception:
                continue
            now = time.monotonic()
            asked = self._asked_associations()
            for address in found:
                private = address.get("PrivateIpAddress", "")
                interface, named = asked.get(address["AllocationId"], ("", ""))
                if private and interface == address.get("NetworkInterfaceId") and named:
                    private = named  # AWS's: the address the call named
                if seen.get(address["AllocationId"], ("?",))[0] != private:
                    seen[address["AllocationId"]] = (private, now)
            live = sorted(((since, private, allocation)
                           for allocation, (private, since) in seen.items()
                           if private and now - since >= self.address_delay))
            by_private = {private: self.public_of[allocation] for _, private, allocation in live}
            pairs = sorted(by_private.items())
            if pairs != applied:
                self.network.map_public(pairs, drop_unmapped=True)
                for private, public in pairs:
                    if (private, public) not in applied:
                        self.address_events.append((time.monotonic(), public, private))
                applied = pairs

    def _asked_associations(self) -> dict[str, tuple[str, str]]:
        """Allocation → (interface, private address) of the last AssociateAddress the agents
        made (the API proxy's journal)."""
        asked: dict[str, tuple[str, str]] = {}
        if self.associations.exists():
            for line in self.associations.read_text().splitlines():
                call = json.loads(line)
                asked[call["AllocationId"]] = (call.get("NetworkInterfaceId", ""),
                                               call.get("PrivateIpAddress", ""))
        return asked

    def route_target(self, letter: str) -> str:
        """The AZ whose NAT AZ `letter`'s private route table names, as "AWS" has it now."""
        table = self.client("ec2").describe_route_tables(
            RouteTableIds=[self.tables[letter]])["RouteTables"][0]
        route = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        return next(z for z, eni in self.eni.items() if eni == route.get("NetworkInterfaceId"))

    def group_instance(self, letter: str) -> str:
        instances = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.groups[letter]])["AutoScalingGroups"][0]["Instances"]
        return str(instances[0]["InstanceId"])

    def instance_health(self, instance_id: str) -> str:
        found = self.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[instance_id])["AutoScalingInstances"]
        return str(found[0]["HealthStatus"]) if found else "gone"

    def set_release(self, letter: str, release: str) -> None:
        """What `pulumi up` does to a group when its launch template changes."""
        self.client("autoscaling").create_or_update_tags(Tags=[{
            "Key": "nat-instance-vpc:release", "Value": release, "PropagateAtLaunch": False,
            "ResourceId": self.groups[letter], "ResourceType": "auto-scaling-group"}])

    def _attach(self, letter: str, instance_id: str) -> None:
        """The group's instance takes the AZ's static interface (moto leaves it free)."""
        ec2 = self.client("ec2")
        attachment = ec2.describe_network_interfaces(NetworkInterfaceIds=[self.eni[letter]])[
            "NetworkInterfaces"][0].get("Attachment")
        if attachment and attachment.get("Status") == "attached":
            ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True)
        ec2.attach_network_interface(NetworkInterfaceId=self.eni[letter],
                                     InstanceId=instance_id, DeviceIndex=1)

    def _apply_routes(self) -> None:
        """The VPC router follows the private route tables (every 100 ms)."""
        ec2 = self.client("ec2")
        zone_of_eni = {eni: letter for letter, eni in self.eni.items()}
        seen_since: dict[str, tuple[str, float]] = {}
        while not self._stop.wait(0.1):
            try:
                tables = ec2.describe_route_tables(
                    RouteTableIds=list(self.tables.values()))["RouteTables"]
            except Exception:
                continue
            for table in tables:
                private = next(z for z, t in self.tables.items() if t == table["RouteTableId"])
                route = next(r for r in table["Routes"]
                             if r.get("DestinationCidrBlock") == "0.0.0.0/0")
                target = zone_of_eni.get(route.get("NetworkInterfaceId", ""), "")
                first_seen = seen_since.get(private)
                if first_seen is None or first_seen[0] != target:
                    seen_since[private] = (target, time.monotonic())
                    first_seen = seen_since[private]
                if self.applied.get(private) == target or \
                        time.monotonic() - first_seen[1] < self.propagation:
                    continue
                result = self.network.route_private(ZONES[private], ZONES[target],
                                                    check=False)
                if result.returncode == 0:
                    if private in self.applied:
                        self.route_events.append((time.monotonic(), private, target))
                    self.applied[private] = target

    # --- NAT instances -------------------------------------------------------------------------
    def agent_settings(self, release: str) -> AgentSettings | None:
        """What the component writes (nat.design.ha.agent_settings), with the test bed's targets and
        shorter waits."""
        if not self.high_availability:
            return None if self.metrics is None else AgentSettings(REGION, metrics=self.metrics)
        settings = agent_settings(
            REGION, {z.name: (self.eni[letter], z.nat_address) for letter, z in ZONES.items()},
            [(self.tables[letter], z.name) for letter, z in ZONES.items()],
            HighAvailabilitySettings(True, tuple(f"{INTERNET_HOST}:{port}"
                                                 for port in TARGET_PORTS),
                                     int(self.failback_after)), release, self.metrics)
        settings = replace(settings, replace_after=self.replace_after, never_healthy_grace=60)
        if self.handover:
            settings = replace(settings, handover=True, spare=self.allocations["spare"],
                               address_settle=self.address_delay + 1, nats={
                z.name: {**settings.nats[z.name], "allocation": self.allocations[letter],
                         "standby": STANDBY[letter]}
                for letter, z in ZONES.items()})
        if self.rollout_check is not None:
            settings = replace(settings, rollout_check=self.rollout_check)
        return settings

    def start_nat(self, letter: str) -> Nat:
        """A NAT instance boots in AZ `letter`: the group's current instance on the AZ's
        interface, the bootstrap script, then the agent."""
        zone = ZONES[letter]
        instance_id = self.group_instance(letter)
        self._attach(letter, instance_id)
        groups = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.groups[letter]])["AutoScalingGroups"][0]
        release = next(t["Value"] for t in groups["Tags"]
                       if t["Key"] == "nat-instance-vpc:release")
        namespace = f"{self.tag}-nat{letter}{next(_serial)}"
        scratch = Path(tempfile.mkdtemp(prefix=f"{namespace}-", dir=self.scratch))
        nat = Nat(zone, namespace, instance_id, release, scratch)
        (scratch / "ethtool-S.txt").write_text(ENA_STATISTICS.read_text())
        self.nats[letter] = nat
        self.network.add_namespace(namespace)
        self.ns(namespace, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
        self.network.attach_nat(zone, namespace)
        if self.handover:  # as amazon-ec2-net-utils adds a secondary private IP
            self.ns(namespace, "ip", "addr", "add", f"{STANDBY[letter]}/32", "dev", "ens5")
        self.applied.pop(letter, None)  # the router's route through the old link is gone
        nat.processes.append(self._background(namespace, [sys.executable, IMDS, instance_id,
                                                          zone.name], "listening"))
        # what cloud-init does: the rendered user data as a root shell script, then what
        # systemd does with the unit it installed (the agent's ExecStart)
        user_data = nat.scratch / "user-data"
        user_data.write_text(render_user_data([IPv4Network(VPC_CIDR)], TuningOverrides(),
                                              self.agent_settings(release), self.agent_object))
        mounts = " && ".join(
            f"mount -t overlay overlay -o lowerdir={target},upperdir={self._upper(nat, target)},"
            f"workdir={self._work(nat, target)} {target}" for target in SCRATCH_MOUNTS)
        environment = {"PATH": f"{self.fake_bin}:/usr/sbin:/usr/bin:/sbin:/bin",
                       "NAT_CONSOLE": "/dev/null", "NAT_ROUTE_WAIT": "2",
                       "PYTHONUNBUFFERED": "1",
                       "AWS_ENDPOINT_URL": f"http://{INTERNET_HOST}:{PROXY_PORT}",
                       "NAT_TESTBED_ETHTOOL": str(scratch / "ethtool-S.txt"),
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        exports = " ".join(f"{k}='{v}'" for k, v in environment.items())
        agent = self.agent_settings(release) is not None
        # what systemd does with the unit user data installed: ExecStart, and Restart=always
        # after RestartSec (the unit's, or what a test sets: 0 is `systemctl restart`)
        restart_sec = nat.scratch / "restart-sec"
        shell = f"{mounts} && export {exports} && /bin/bash {user_data}" + (
            " && unit=/etc/systemd/system/nat-agent.service"
            " && command=$(sed -n 's/^ExecStart=//p' $unit)"
            " && while :; do $command; echo \"nat-agent exited ($?)\";"
            f" sleep $(cat {restart_sec} 2>/dev/null || sed -n 's/^RestartSec=//p' $unit);"
            " done" if agent else " && exec sleep infinity")
        with nat.log.open("w") as log:
            # a session of its own: the instance's every process (the supervisor, the agent,
            # its probe helper) ends together, as an instance's do
            booted = subprocess.Popen(["ip", "netns", "exec", namespace, "unshare", "--mount",
                                       "--propagation", "private", "/bin/bash", "-c", shell],
                                      stdout=log, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True)
        nat.processes.append(booted)
        self._wait_for(nat, "probe namespace up" if self.high_availability else
                       "metrics: " if agent else "NAT ready")
        return nat

    # --- what a NAT measures -------------------------------------------------------------------
    def set_ena_counter(self, letter: str, name: str, value: int) -> None:
        """What the ENA driver would count: one allowance counter of NAT `letter`."""
        path = self.nats[letter].scratch / "ethtool-S.txt"
        lines = [f"     {name}: {value}" if line.strip().startswith(f"{name}:") else line
                 for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")

    def metric(self, zone: str, name: str, statistic: str, minutes: int = 15) -> list[float]:
        """The one-minute values of one of AZ `zone`'s metrics in "CloudWatch", oldest first."""
        assert self.metrics is not None
        end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)
        answer = self.client("cloudwatch").get_metric_data(
            StartTime=end - datetime.timedelta(minutes=minutes), EndTime=end,
            ScanBy="TimestampAscending", MetricDataQueries=[{
                "Id": "m", "MetricStat": {"Metric": {
                    "Namespace": self.metrics.namespace, "MetricName": name,
                    "Dimensions": [{"Name": key, "Value": value} for key, value in
                                   monitoring.dimensions(self.metrics.group,
                                                         zone).items()]},
                    "Period": 60, "Stat": statistic}}])
        return [float(v) for v in answer["MetricDataResults"][0]["Values"]]

    def _upper(self, nat: Nat, target: str) -> Path:
        path = nat.scratch / "upper" / target.strip("/").replace("/", "-")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _work(self, nat: Nat, target: str) -> Path:
        path = nat.scratch / "work" / target.strip("/").replace("/", "-")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _wait_for(self, nat: Nat, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in nat.log.read_text():
            if time.monotonic() > deadline or nat.processes[-1].poll() is not None:
                raise RuntimeError(f"NAT {nat.zone.letter} never said {text!r}:\n"
                                   f"{nat.log.read_text()}")
            time.sleep(0.1)

    def kill_nat(self, letter: str) -> float:
        """The instance is gone at once (its namespace deleted); returns when."""
        nat = self.nats[letter]
        moment = time.monotonic()
        for process in nat.processes:
            end(process)
        run(["ip", "netns", "del", nat.namespace], check=False)
        for process in nat.processes:
            process.wait()
        return moment

    def stop_forwarding(self, letter: str) -> float:
        """The NAT keeps answering, but forwards nothing."""
        moment = time.monotonic()
        self.ns(self.nats[letter].namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        return moment

    def replace_instance(self, letter: str) -> Nat:
        """What the Auto Scaling group does with an unhealthy instance (moto does not): it
        terminates it, launches the group's current template, and the static interface moves
        to the new instance."""
        old = self.nats[letter]
        self.kill_nat(letter)
        self.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=old.instance_id, ShouldDecrementDesiredCapacity=False)
        return self.start_nat(letter)

    @contextmanager
    def partition(self) -> Iterator[float]:
        """The NATs cannot reach each other at all (cut at the router); each still reaches
        the internet."""
        a, b = (zone.nat_address for zone in ZONES.values())
        rules = [["FORWARD", "-s", a, "-d", b, "-j", "DROP"],
                 ["FORWARD", "-s", b, "-d", a, "-j", "DROP"]]
        for rule in rules:
            self.ns("router", "iptables", "-I", *rule)
        try:
            yield time.monotonic()
        finally:
            for rule in rules:
                self.ns("router", "iptables", "-D", *rule)

    # --- faults of the agent and of what it talks to --------------------------------------
    def agent_pid(self, letter: str) -> int:
        """The running agent of AZ `letter`'s NAT (the supervisor's child)."""
        supervisor = self.nats[letter].processes[-1].pid
        found = run(["pgrep", "-f", "nat-agent run"], check=False).stdout.split()
        for pid in found:
            parents = run(["ps", "-o", "ppid=", "-p", pid], check=False).stdout.split()
            if parents and self._descends(int(parents[0]), supervisor):
                return int(pid)
        raise RuntimeError(f"no agent runs on NAT {letter}")

    @staticmethod
    def _descends(pid: int, ancestor: int) -> bool:
        while pid > 1:
            if pid == ancestor:
                return True
            parents = run(["ps", "-o", "ppid=", "-p", str(pid)], check=False).stdout.split()
            if not parents:
                return False
            pid = int(parents[0])
        return False

    def restart_agent(self, letter: str, after: float | None = None) -> float:
        """The agent dies (SIGKILL: a crash, an OOM kill); the supervisor starts it again
        after `after` seconds (None: the unit's RestartSec; 0: `systemctl restart`). Its NAT
        forwards on all the while. Returns when it died."""
        nat = self.nats[letter]
        restart_sec = nat.scratch / "restart-sec"
        if after is None:
            restart_sec.unlink(missing_ok=True)
        else:
            restart_sec.write_text(f"{after}\n")
        pid = self.agent_pid(letter)
        moment = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        return moment

    @contextmanager
    def frozen_agent(self, letter: str) -> Iterator[float]:
        """The agent stopped (SIGSTOP), then resumed; its NAT forwards on."""
        pid = self.agent_pid(letter)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield time.monotonic()
        finally:
            os.kill(pid, signal.SIGCONT)

    @contextmanager
    def api_answers_cut_short(self) -> Iterator[float]:
        """Every API call the agents make gets HTTP 200 and 30 bytes of its answer."""
        self.api_fault.write_text("truncate\n")
        try:
            yield time.monotonic()
        finally:
            self.api_fault.unlink(missing_ok=True)

    def _gateway_rules(self, letter: str, match: list[str]) -> list[list[str]]:
        address = ZONES[letter].nat_address
        return [["FORWARD", "-o", "to-inet", "-s", address, *match],
                ["FORWARD", "-i", "to-inet", "-d", address, *match]]

    @contextmanager
    def internet_cut(self, *letters: str) -> Iterator[float]:
        """The NATs' internet side is cut at the internet gateway (their private side and
        the link between them stay up; the API, on the internet, is cut for them too)."""
        rules = [rule for letter in letters for rule in self._gateway_rules(letter,
                                                                            ["-j", "DROP"])]
        for rule in rules:
            self.ns("igw", "iptables", "-I", *rule)
        try:
            yield time.monotonic()
        finally:
            for rule in rules:
                self.ns("igw", "iptables", "-D", *rule)

    @contextmanager
    def lossy_internet(self, letter: str, percent: int) -> Iterator[float]:
        """`percent` of the packets lost each way on the NAT's internet side (nftables'
        numgen: this kernel has no netem)."""
        address = ZONES[letter].nat_address
        table = f"loss_{letter}"
        run(["ip", "netns", "exec", self.names["igw"], "nft", "-f", "-"], input=(
            f"table ip {table} {{\n"
            "  chain forward { type filter hook forward priority -10; policy accept;\n"
            f'    oifname "to-inet" ip saddr {address} numgen random mod 100 < {percent} drop\n'
            f'    iifname "to-inet" ip daddr {address} numgen random mod 100 < {percent} drop\n'
            "  }\n}\n"))
        try:
            yield time.monotonic()
        finally:
            run(["ip", "netns", "exec", self.names["igw"], "nft", "delete", "table", "ip",
                 table], check=False)

    def flows(self, letter: str, count: int, seconds: float,
              mode: str = "echo") -> subprocess.Popen[str]:
        """`count` long-lived flows (testbed/flows.py) from AZ `letter`'s private host to the
        internet host, for `seconds` once all are open (returns then)."""
        return self._background(f"priv-{letter}", [sys.executable, FLOWS, "run", INTERNET_HOST,
                                                   str(FLOWS_PORT), str(count), str(seconds),
                                                   mode], "listening")

    @staticmethod
    def flows_report(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
        output, _ = process.communicate(timeout=timeout)
        report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return report

    def agent_log(self, letter: str) -> str:
        return self.nats[letter].log.read_text()

    def watch(self, letter: str, seconds: float) -> subprocess.Popen[str]:
        """The private host of AZ `letter` probes the internet host every 100 ms."""
        return self._background(f"priv-{letter}", [sys.executable, PROBE, "watch",
                                                   INTERNET_HOST, str(ECHO_PORT),
                                                   str(seconds)], "listening")

    @staticmethod
    def watched(process: subprocess.Popen[str]) -> Watch:
        """What a watch saw, up to now (it prints each attempt as it ends)."""
        process.terminate()
        output, _ = process.communicate(timeout=30)
        attempts = []
        for line in output.splitlines():
            words = line.split()
            if len(words) >= 2 and words[1] in ("ok", "fail"):
                attempts.append((float(words[0]), words[2] if words[1] == "ok" else ""))
        return Watch(sorted(attempts))

    def wait_until(self, condition: Any, timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- NAT {n.zone.letter}\n{n.log.read_text()[-3000:]}"
                                 for n in self.nats.values())
                raise AssertionError(f"not within {timeout} s: {what}\n{logs}")
            time.sleep(0.1)
        return time.monotonic()

    def healthy(self, letter: str) -> bool:
        return "data path works" in self.nats[letter].log.read_text()

    def close(self) -> None:
        self._stop.set()
        for nat in self.nats.values():
            for process in nat.processes:
                end(process)
                process.wait()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.network.close()
        run(["ip", "link", "del", self.test_link], check=False)

    def __enter__(self) -> HaLab:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
