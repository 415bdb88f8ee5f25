"""The bootstrap script (the same file user data embeds) on a real Linux data path.

Each test builds the AWS topology out of network namespaces (testbed/topology.py), runs
nat/instance/nat-bootstrap.sh in the NAT's namespace with scratch /etc, /var and
/usr/local/sbin, and sends real traffic. Needs root; CI runs as root and must run these.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from nat.design import monitoring
from nat.design.userdata import (
    agent_script,
    bootstrap_script,
    decode_user_data,
    encode_user_data,
    render_user_data,
)
from nat.inputs.settings import MonitoringSettings
from nat.inputs.tuning import TuningOverrides
from nat.instance.agent import Settings as AgentSettings
from testbed.topology import (
    INTERNET_HOST,
    NAT_PRIVATE,
    NAT_PUBLIC,
    PRIVATE_HOST,
    TRANSIT_VPC,
    VPC_CIDR,
    Topology,
    run,
)
from tests import needs

pytestmark = pytest.mark.datapath

needs.network_namespaces("data-path tests")

MASQUERADE = re.compile(r"^-A NAT_POSTROUTING .*-o (\S+) -j MASQUERADE$", re.M)
GUIDE_ONLY = ("sysctl -q -w net.ipv4.ip_forward=1 && "
              "iptables -t nat -A POSTROUTING -o ens5 -j MASQUERADE && iptables -F FORWARD")


@pytest.fixture
def topology() -> Iterator[Topology]:
    with Topology() as built:
        yield built


def egress_address(topology: Topology) -> str:
    """What the internet host sees when the private host connects out ('' if it can't)."""
    result = topology.probe(topology.private, "whoami", INTERNET_HOST, "8080", wait=2)
    return result.stdout.strip() if result.returncode == 0 else ""


def bootstrapped(topology: Topology, **env: str) -> Topology:
    result = topology.bootstrap(env=env)
    assert result.returncode == 0, result.output
    topology.start(topology.internet, "serve", "8080")
    return topology


def test_private_host_reaches_the_internet_as_the_nat_public_address(
        topology: Topology) -> None:
    topology.start(topology.internet, "serve", "8080")
    assert egress_address(topology) == ""  # no NAT yet: the private host is cut off
    result = topology.bootstrap()
    assert result.returncode == 0, result.output
    assert egress_address(topology) == NAT_PUBLIC
    assert "nat-instance: NAT ready on ens5" in result.output
    log = topology.scratch_file("/var/log/nat-instance.log").read_text()
    assert "NAT ready on ens5" in log
    assert topology.scratch_file("/var/lib/nat-instance/ready").read_text().strip() == "ens5"


def test_the_internet_cannot_open_a_connection_to_the_private_host(topology: Topology) -> None:
    bootstrapped(topology)
    server = topology.start(topology.private, "serve", "9000")
    for target in (NAT_PUBLIC, PRIVATE_HOST):
        result = topology.probe(topology.internet, "whoami", target, "9000", wait=2)
        assert result.returncode == 1, result.stdout
    server.kill()
    assert "accepted" not in topology.finish(server)


def route_internet_to_private_via_nat(topology: Topology) -> None:
    """Deliver internet traffic for the private subnet to the NAT (a relay attempt)."""
    topology.ns(topology.router, "ip", "route", "add", "10.0.128.0/20", "via", "10.0.0.10",
                "table", "200")
    topology.ns(topology.router, "ip", "rule", "add", "iif", "to-igw", "to", "10.0.128.0/20",
                "lookup", "200")


def relayed_datagrams(topology: Topology) -> str:
    listener = topology.start(topology.private, "udp-listen", "5000", "2")
    for _ in range(3):
        topology.probe(topology.internet, "udp-send", PRIVATE_HOST, "5000")
    return topology.finish(listener)


def test_traffic_from_outside_the_vpc_is_not_forwarded() -> None:
    with Topology(filter_inbound=False) as topology:
        route_internet_to_private_via_nat(topology)
        assert topology.bootstrap().returncode == 0
        assert "from" not in relayed_datagrams(topology)
        counters = topology.ns(topology.nat, "iptables", "-L", "NAT_FORWARD", "-v", "-n",
                               "-x").stdout
        # dropped by the NAT's own rules (not merely lost): packets counted on its DROP rules
        dropped = sum(int(line.split()[0]) for line in counters.splitlines()
                      if line.split()[2:3] == ["DROP"] and "INVALID" not in line)
        assert dropped >= 3, counters


def test_the_guides_commands_alone_would_relay_it() -> None:
    """The contrast: why our FORWARD policy exists."""
    with Topology(filter_inbound=False) as topology:
        route_internet_to_private_via_nat(topology)
        assert topology.run_on_nat(GUIDE_ONLY).returncode == 0
        # delivered, and masqueraded as the NAT on the way: the sender is even hidden
        assert "from 10.0.0.10" in relayed_datagrams(topology)


@pytest.mark.parametrize("interface", ["eth0", "ens5", "enX0"])
def test_primary_interface_is_found_by_its_default_route(interface: str) -> None:
    with Topology(nat_interface=interface) as topology:
        bootstrapped(topology)
        assert MASQUERADE.findall(topology.rules()) == [interface]
        assert egress_address(topology) == NAT_PUBLIC


def test_no_default_route_fails_loudly_and_installs_nothing(topology: Topology) -> None:
    topology.ns(topology.nat, "ip", "route", "del", "default")
    result = topology.bootstrap(env={"NAT_ROUTE_WAIT": "1"})
    assert result.returncode != 0
    assert "nat-instance: FAILED: no IPv4 default route after 1s" in result.output
    log = topology.scratch_file("/var/log/nat-instance.log").read_text()
    assert "FAILED: no IPv4 default route" in log
    rules = topology.rules()
    assert "MASQUERADE" not in rules and '-o ""' not in rules
    assert not topology.scratch_file("/var/lib/nat-instance/ready").exists()


@pytest.mark.parametrize("typo", ["10.0.0.0/33", "10.0.0/16", "10.0.0.256/16", "vpc"])
def test_a_malformed_vpc_cidr_fails_loudly_and_installs_nothing(topology: Topology,
                                                                typo: str) -> None:
    result = topology.bootstrap(vpc_cidrs=f"{VPC_CIDR} {typo}")
    assert result.returncode != 0
    assert f"FAILED: NAT_VPC_CIDRS: '{typo}' is not an IPv4 CIDR" in result.output
    assert "MASQUERADE" not in topology.rules()
    assert not topology.scratch_file("/var/lib/nat-instance/ready").exists()


def test_missing_vpc_cidr_fails_loudly(topology: Topology) -> None:
    result = topology.run_on_nat(f"/bin/bash {topology.script} apply")
    assert result.returncode != 0
    assert "FAILED: NAT_VPC_CIDRS is not set" in result.output
    assert "MASQUERADE" not in topology.rules()


def test_running_twice_gives_the_identical_rule_set(topology: Topology) -> None:
    bootstrapped(topology)
    rules, chains = topology.rules(), topology.chains()
    sysctl_file = topology.scratch_file("/etc/sysctl.d/custom-ip-forwarding.conf").read_text()
    again = topology.bootstrap()
    assert again.returncode == 0, again.output
    assert topology.rules() == rules
    assert topology.chains() == chains
    assert topology.scratch_file("/etc/sysctl.d/custom-ip-forwarding.conf").read_text() == \
        sysctl_file
    assert rules.count("-j MASQUERADE") == 1 and rules.count("-j NAT_FORWARD") == 1
    assert egress_address(topology) == NAT_PUBLIC


def test_a_reboot_restores_nat_through_the_boot_unit(topology: Topology) -> None:
    bootstrapped(topology)
    rules_before = topology.rules()
    unit = topology.scratch_file("/etc/systemd/system/nat-instance.service").read_text()
    assert "WantedBy=multi-user.target" in unit
    assert "systemctl enable nat-instance.service" in topology.calls()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M)
    assert exec_start is not None
    # the reboot: rules and forwarding gone, only files on disk remain
    for table in ("filter", "nat", "mangle"):
        topology.ns(topology.nat, "iptables", "-t", table, "-F")
        topology.ns(topology.nat, "iptables", "-t", table, "-X")
    topology.ns(topology.nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    assert egress_address(topology) == ""
    # what systemd runs at boot: the unit's ExecStart, from the installed copy of the script
    booted = topology.run_on_nat(exec_start.group(1))
    assert booted.returncode == 0, booted.output
    assert topology.rules() == rules_before
    assert topology.ns(topology.nat, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert egress_address(topology) == NAT_PUBLIC


def test_redirects_are_off_and_conntrack_timeouts_set(topology: Topology) -> None:
    bootstrapped(topology)

    def value(key: str) -> str:
        return topology.ns(topology.nat, "sysctl", "-n", key).stdout.strip()

    assert value("net.ipv4.conf.all.send_redirects") == "0"
    assert value("net.ipv4.conf.ens5.send_redirects") == "0"
    assert value("net.netfilter.nf_conntrack_tcp_timeout_established") == "7440"
    assert value("net.netfilter.nf_conntrack_tcp_timeout_time_wait") == "30"


def test_large_transfers_complete_through_the_mss_clamp(topology: Topology) -> None:
    bootstrapped(topology)
    size = str(4 * 1024 * 1024)
    for direction in ("upload", "download"):
        result = topology.probe(topology.private, direction, INTERNET_HOST, "8080", size)
        assert result.stdout.strip() == f"ok {size}", (direction, result.stderr)


def test_without_the_clamp_large_transfers_stall_when_pmtud_is_blocked(
        topology: Topology) -> None:
    bootstrapped(topology, NAT_MSS="0")
    assert egress_address(topology) == NAT_PUBLIC  # small exchanges still work
    size = str(4 * 1024 * 1024)
    for direction in ("upload", "download"):
        result = topology.probe(topology.private, direction, INTERNET_HOST, "8080", size,
                                wait=3)
        assert result.returncode == 1 and "timed out" in result.stderr, direction


def test_installs_iptables_when_missing_and_retries_a_busy_package_manager(
        topology: Topology) -> None:
    (topology.fake_bin / "iptables").unlink()
    busy_once = topology.scratch / "busy-once"
    topology.write_stand_in("dnf", (
        f'#!/bin/sh\necho "dnf $*" >>{topology.calls_log}\n'
        f'if [ ! -e {busy_once} ]; then touch {busy_once}; echo "lock held" >&2; exit 1; fi\n'
        f'ln -s {run(["which", "iptables"]).stdout.strip()} {topology.fake_bin}/iptables\n'))
    result = topology.bootstrap()
    assert result.returncode == 0, result.output
    installs = [c for c in topology.calls() if c.startswith("dnf")]
    assert installs == ["dnf -y -q --setopt=install_weak_deps=False install iptables-nft"] * 2
    assert "failed (attempt 1/10), retrying" in result.output
    assert MASQUERADE.findall(topology.rules()) == ["ens5"]


def test_uses_the_amis_iptables_without_installing(topology: Topology) -> None:
    bootstrapped(topology)
    assert not [c for c in topology.calls() if c.startswith(("dnf", "yum"))]


def test_no_iptables_and_no_installer_fails_loudly(topology: Topology) -> None:
    for tool in ("iptables", "dnf", "yum"):
        (topology.fake_bin / tool).unlink()
    result = topology.bootstrap()
    assert result.returncode != 0
    assert "FAILED: iptables is missing and neither dnf nor yum is available" in result.output


# --- a VPC with a secondary CIDR ------------------------------------------------------------------
# Here the VPC is 10.0.0.0/17 (public subnet) plus a secondary 10.0.128.0/17 (private subnet).
def test_a_secondary_cidr_listed_in_the_settings_reaches_the_internet(
        topology: Topology) -> None:
    result = topology.bootstrap(vpc_cidrs="10.0.0.0/17 10.0.128.0/17")
    assert result.returncode == 0, result.output
    assert "VPC CIDRs: 10.0.0.0/17 10.0.128.0/17" in result.output
    topology.start(topology.internet, "serve", "8080")
    assert egress_address(topology) == NAT_PUBLIC


def test_a_secondary_cidr_not_listed_gets_no_egress_and_is_never_masqueraded(
        topology: Topology) -> None:
    result = topology.bootstrap(vpc_cidrs="10.0.0.0/17")
    assert result.returncode == 0, result.output
    topology.start(topology.internet, "serve", "8080")
    assert egress_address(topology) == ""
    masqueraded = topology.ns(topology.nat, "iptables", "-t", "nat", "-L", "NAT_POSTROUTING",
                              "-v", "-n", "-x").stdout
    assert all(int(line.split()[0]) == 0 for line in masqueraded.splitlines()
               if "MASQUERADE" in line), masqueraded


@pytest.mark.parametrize("cidrs", ["10.0.0.0/16 banana", "10.0.0.0/33", "10.0.0.0"])
def test_a_malformed_cidr_in_the_settings_stops_the_script(topology: Topology,
                                                           cidrs: str) -> None:
    result = topology.bootstrap(vpc_cidrs=cidrs)
    assert result.returncode != 0
    assert "nat-instance: FAILED: NAT_VPC_CIDRS: '" in result.output
    assert "MASQUERADE" not in topology.rules()


# --- what the NAT must never carry ------------------------------------------------------------
def test_vpc_to_vpc_traffic_is_neither_forwarded_nor_masqueraded(topology: Topology) -> None:
    """Sent to the NAT anyway (a route pointing VPC traffic at it), a flow to another VPC
    address goes nowhere: the NAT forwards only from the VPC to outside it."""
    peer = topology.add_host("peer", topology.router, "10.0.64.10", "10.0.64.1", 20)
    bootstrapped(topology)
    listener = topology.start(peer, "udp-listen", "5000", "2")
    for _ in range(3):  # the private table's default route: via the NAT
        topology.probe(topology.private, "udp-send", "10.0.64.10", "5000")
    assert "from" not in topology.finish(listener)


def leaked_from_the_vpc(topology: Topology) -> int:
    """Packets the internet gateway refused because they left the VPC un-masqueraded."""
    counters = topology.ns(topology.igw, "iptables", "-L", "FORWARD", "-v", "-n", "-x").stdout
    return sum(int(line.split()[0]) for line in counters.splitlines()
               if " DROP " in line and VPC_CIDR in line)


def test_invalid_packets_from_a_private_host_never_leave_the_nat(topology: Topology) -> None:
    """SYN and FIN together: connection tracking calls it INVALID, NAT rules never see it; a
    NAT that forwarded it would send it out with the private source address."""
    bootstrapped(topology)
    before = leaked_from_the_vpc(topology)
    for _ in range(3):
        result = topology.probe(topology.private, "raw-tcp", INTERNET_HOST, "8080", "SF")
        assert result.returncode == 0, result.stdout + result.stderr
    assert egress_address(topology) == NAT_PUBLIC  # the path itself works
    assert leaked_from_the_vpc(topology) == before


def internet_to_internet_via_the_nat(topology: Topology) -> str:
    """A host on the internet sends to another internet address by way of the NAT (the
    gateways route it there): what arrives at the other host."""
    far = topology.add_host("far", topology.igw, "203.0.113.130", "203.0.113.129", 25)
    topology.ns(topology.igw, "ip", "route", "add", "203.0.113.130", "via", TRANSIT_VPC,
                "table", "300")
    topology.ns(topology.igw, "ip", "rule", "add", "iif", "to-inet", "to", "203.0.113.130",
                "lookup", "300")
    topology.ns(topology.router, "ip", "route", "add", "203.0.113.130", "via", NAT_PRIVATE,
                "table", "301")
    topology.ns(topology.router, "ip", "rule", "add", "iif", "to-igw", "to", "203.0.113.130",
                "lookup", "301")
    listener = topology.start(far, "udp-listen", "5000", "2")
    for _ in range(3):
        topology.probe(topology.internet, "udp-send", "203.0.113.130", "5000")
    return topology.finish(listener)


def test_the_nat_is_no_open_relay_between_internet_hosts() -> None:
    with Topology(filter_inbound=False) as topology:
        assert topology.bootstrap().returncode == 0
        assert "from" not in internet_to_internet_via_the_nat(topology)


def test_the_guides_commands_alone_would_relay_between_internet_hosts() -> None:
    with Topology(filter_inbound=False) as topology:
        assert topology.run_on_nat(GUIDE_ONLY).returncode == 0
        # relayed, and masqueraded as the NAT on the way: the sender hidden behind it
        assert f"from {NAT_PRIVATE}" in internet_to_internet_via_the_nat(topology)


# --- the whole user data, as cloud-init runs it -------------------------------------------------
def rendered_user_data(topology: Topology) -> Path:
    """What the component renders for a plain NAT with monitoring on (its default)."""
    metrics = monitoring.agent_settings(MonitoringSettings(), "p/s/nat")
    text = render_user_data([IPv4Network(VPC_CIDR)],
                            TuningOverrides.from_values({"max_entries": 131072}),
                            AgentSettings("us-east-1", metrics=metrics))
    path = topology.scratch / "user-data"
    path.write_text(decode_user_data(encode_user_data(text)))  # through the gzip round trip
    path.chmod(0o700)  # cloud-init runs it by its own first line, as an executable
    return path


@pytest.mark.user_data_run
def test_the_whole_user_data_configures_the_nat(topology: Topology) -> None:
    result = topology.run_on_nat(str(rendered_user_data(topology)))
    assert result.returncode == 0, result.output
    topology.start(topology.internet, "serve", "8080")
    assert egress_address(topology) == NAT_PUBLIC
    script = topology.scratch_file("/usr/local/sbin/nat-bootstrap.sh")
    agent = topology.scratch_file("/usr/local/sbin/nat-agent")
    assert script.read_text() == bootstrap_script() and os.access(script, os.X_OK)
    assert agent.read_text() == agent_script() and os.access(agent, os.X_OK)
    etc = "/etc/nat-instance/"
    assert stat.S_IMODE(topology.scratch_file(etc + "agent.json").stat().st_mode) == 0o644
    assert topology.scratch_file(etc + "nat.env").read_text() == \
        f'NAT_VPC_CIDRS="{VPC_CIDR}"\n'
    assert "NAT_CONNTRACK_MAX=131072" in topology.scratch_file(etc + "tuning.env").read_text()
    settings = json.loads(topology.scratch_file(etc + "agent.json").read_text())
    assert settings["metrics"]["namespace"] == "NatInstance"
    assert "systemctl enable nat-instance.service" in topology.calls()
    assert "systemctl start --no-block nat-agent.service" in topology.calls()


@pytest.mark.user_data_run
def test_the_user_data_without_an_agent(topology: Topology) -> None:
    """Monitoring off and no high availability: the script alone, nothing of the agent's."""
    text = render_user_data([IPv4Network(VPC_CIDR)], TuningOverrides(), None)
    path = topology.scratch / "user-data"
    path.write_text(text)
    path.chmod(0o700)
    result = topology.run_on_nat(str(path))
    assert result.returncode == 0, result.output
    topology.start(topology.internet, "serve", "8080")
    assert egress_address(topology) == NAT_PUBLIC
    assert not topology.scratch_file("/usr/local/sbin/nat-agent").exists()
    assert not topology.scratch_file("/etc/nat-instance/agent.json").exists()
    assert "nat-agent" not in topology.calls()


@pytest.mark.user_data_run
def test_a_failed_step_stops_the_user_data(topology: Topology) -> None:
    topology.write_stand_in("install", "#!/bin/sh\necho 'install: read-only file system' >&2\n"
                                       "exit 1\n")
    result = topology.run_on_nat(str(rendered_user_data(topology)))
    assert result.returncode != 0
    assert "MASQUERADE" not in topology.rules()
    assert not topology.scratch_file("/usr/local/sbin/nat-bootstrap.sh").exists()
