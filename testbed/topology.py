"""The AWS NAT-instance topology out of Linux network namespaces, for tests and the benchmark.

    private host ──(9001)── VPC router ──(9001)── NAT instance (one interface, public subnet)
    10.0.128.10            │  private route table: 0.0.0.0/0 → NAT
                           └──(internet MTU)── internet gateway ──(9001)── internet host
                                               1:1 203.0.113.10 ↔ 10.0.0.10   198.51.100.20

The internet gateway maps the NAT's private address 1:1 to its public one, statelessly, and,
like AWS's, passes nothing else between the VPC and the internet. Only addresses inside these
namespaces are used: 10.0.0.0/16 (VPC), 198.51.100.0/24 and 203.0.113.0/24 (internet).
Needs root, iproute2, iptables and nftables. Every namespace is removed by `close()`, also on
failure.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nat.design.userdata import bootstrap_script

PROBE = str(Path(__file__).with_name("probe.py"))

VPC_CIDR = "10.0.0.0/16"
PRIVATE_HOST = "10.0.128.10"
PRIVATE_GATEWAY = "10.0.128.1"
NAT_PRIVATE = "10.0.0.10"
PUBLIC_GATEWAY = "10.0.0.1"
NAT_PUBLIC = "203.0.113.10"
INTERNET_HOST = "198.51.100.20"
INTERNET_GATEWAY_OUTSIDE = "198.51.100.1"
TRANSIT_VPC, TRANSIT_IGW = "10.0.255.1", "10.0.255.2"
PRIVATE_TABLE = "100"
PRIVATE_SUBNET = "10.0.128.0/20"
# What the bootstrap script may write on the "instance": overlays over the host's own.
SCRATCH_MOUNTS = ("/etc", "/var/log", "/var/lib", "/usr/local/sbin")
_serial = itertools.count()


def run(command: Sequence[str], check: bool = True, timeout: float = 30,
        env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                            env=env, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    return result


def missing_requirements() -> str | None:
    """Why the data-path topology cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "nft", "sysctl", "unshare", "mount"):
        if shutil.which(tool) is None:
            return (f"{tool} is not installed (apt-get install iproute2 iptables nftables "
                    "procps util-linux)")
    return None


def script_tuning(memory_kib: int, settings_dir: Path | None = None) -> dict[str, int]:
    """The tuning `nat-bootstrap.sh print-tuning` computes for a machine of `memory_kib`,
    with the settings (tuning.env) in `settings_dir`, if any. Needs no root."""
    with tempfile.TemporaryDirectory() as scratch:
        meminfo = Path(scratch) / "meminfo"
        meminfo.write_text(f"MemTotal:       {memory_kib} kB\nMemFree:        1000 kB\n")
        result = run(["bash", str(shipped_script(Path(scratch))), "print-tuning"], env={
            "PATH": os.environ["PATH"], "NAT_PROC_MEMINFO": str(meminfo),
            "NAT_ETC": str(settings_dir or Path(scratch) / "no-settings"),
            "NAT_LOG": str(Path(scratch) / "log"), "NAT_CONSOLE": "/dev/null"})
    return {k: int(v) for k, v in (line.split("=") for line in result.stdout.split())}


def shipped_script(directory: Path) -> Path:
    """nat-bootstrap.sh as user data carries it (nat.design.userdata.bootstrap_script), written to
    `directory`: what the tests run is what boots."""
    path = directory / "nat-bootstrap.sh"
    path.write_text(bootstrap_script())
    path.chmod(0o755)
    return path


@dataclass
class ScriptRun:
    returncode: int
    output: str


def veth(tag: str, left: tuple[str, str], right: tuple[str, str], mtu: int) -> None:
    """A veth pair between two namespaces, each end (namespace, interface name) up. Made in
    the host's namespace first, under names of the test bed `tag`, so that two test processes
    (mutation testing runs two) never make the same one at once."""
    temporary = {left: f"{tag}l", right: f"{tag}r"}
    run(["ip", "link", "add", temporary[left], "mtu", str(mtu), "type", "veth",
         "peer", "name", temporary[right], "mtu", str(mtu)])
    for namespace, interface in (left, right):
        run(["ip", "link", "set", temporary[(namespace, interface)], "netns", namespace,
             "name", interface])
        run(["ip", "netns", "exec", namespace, "ip", "link", "set", interface, "up"])


@dataclass(frozen=True)
class Zone:
    """One AZ of the test bed: its public subnet (where its NAT attaches), its private subnet
    and host, the public address the internet gateway maps to its NAT, and the VPC router's
    table that stands for the AZ's private route table."""

    name: str
    letter: str
    public_cidr: str
    private_cidr: str
    nat_address: str
    public_gateway: str
    private_host: str
    private_gateway: str
    public_ip: str
    table: str
    # more (private, public) address pairs of the NAT's interface: secondary private IPs,
    # each with an Elastic IP (instance.public_addresses)
    secondary: tuple[tuple[str, str], ...] = ()

    @property
    def address_pairs(self) -> tuple[tuple[str, str], ...]:
        return ((self.nat_address, self.public_ip), *self.secondary)

    def with_addresses(self, count: int) -> Zone:
        """This zone with a NAT of `count` public addresses (.11, .12… beside .10)."""
        private_base, public_base = self.nat_address.rsplit(".", 1), \
            self.public_ip.rsplit(".", 1)
        return dataclasses.replace(self, secondary=tuple(
            (f"{private_base[0]}.{int(private_base[1]) + i}",
             f"{public_base[0]}.{int(public_base[1]) + i}") for i in range(1, count)))


ZONE_A = Zone("us-east-1a", "a", "10.0.0.0/20", PRIVATE_SUBNET, NAT_PRIVATE, PUBLIC_GATEWAY,
              PRIVATE_HOST, PRIVATE_GATEWAY, NAT_PUBLIC, PRIVATE_TABLE)


class Network:
    """The VPC and the internet around NAT instances, for any list of zones: a private host
    per zone, the VPC router (one table per zone's private subnet), the internet gateway (the
    zones' 1:1 public mappings, stateless, as AWS's), the internet host. NATs attach with
    `attach_nat`; private route tables point at them with `route_private`. Every namespace is
    removed by `close()`, also when building fails."""

    def __init__(self, zones: Sequence[Zone], prefix: str = "nt", internet_mtu: int = 1500,
                 internet_host_mtu: int = 9001, block_pmtud: bool = True,
                 filter_inbound: bool = True) -> None:
        self.zones = list(zones)
        self.tag = tag = f"{prefix}{os.getpid() % 100000}x{next(_serial)}"
        self.router, self.igw, self.internet = f"{tag}-vpc", f"{tag}-igw", f"{tag}-inet"
        self.private_hosts = {zone.letter: f"{tag}-priv{zone.letter}" for zone in self.zones}
        self.namespaces = [self.router, self.igw, self.internet, *self.private_hosts.values()]
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        self.fake_bin = self.scratch / "bin"
        self.calls_log = self.scratch / "calls.log"
        self._processes: list[subprocess.Popen[str]] = []
        try:
            self._build(internet_mtu, internet_host_mtu, block_pmtud, filter_inbound)
            self._make_stand_ins()
        except BaseException:
            self.close()
            raise

    # --- building ------------------------------------------------------------------------------
    def ns(self, namespace: str, *command: str, check: bool = True,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", namespace, *command], check=check, timeout=timeout)

    def _link(self, left_ns: str, left_if: str, right_ns: str, right_if: str, mtu: int) -> None:
        veth(self.tag, (left_ns, left_if), (right_ns, right_if), mtu)

    def _address(self, namespace: str, interface: str, cidr: str) -> None:
        self.ns(namespace, "ip", "addr", "add", cidr, "dev", interface)

    def add_namespace(self, namespace: str) -> None:
        run(["ip", "netns", "add", namespace])
        self.namespaces.append(namespace)
        self.ns(namespace, "ip", "link", "set", "lo", "up")

    def _build(self, internet_mtu: int, internet_host_mtu: int, block_pmtud: bool,
               filter_inbound: bool) -> None:
        for namespace in list(self.namespaces):
            self.namespaces.remove(namespace)
            self.add_namespace(namespace)
        router = self.router
        for zone in self.zones:
            host = self.private_hosts[zone.letter]
            self._link(host, "eth0", router, f"to-priv-{zone.letter}", 9001)
            self._address(host, "eth0", f"{zone.private_host}/20")
            self._address(router, f"to-priv-{zone.letter}", f"{zone.private_gateway}/20")
            self.ns(host, "ip", "route", "add", "default", "via", zone.private_gateway)
        for zone in self.zones:
            # the zone's private route table: the VPC's private subnets, then 0.0.0.0/0 → a
            # NAT (route_private); a NAT that is gone leaves a blackhole, as AWS's does,
            # never a fall-through to the public subnets' table
            for other in self.zones:
                self.ns(router, "ip", "route", "add", other.private_cidr, "dev",
                        f"to-priv-{other.letter}", "table", zone.table)
            self.ns(router, "ip", "route", "add", "unreachable", "default", "metric", "9999",
                    "table", zone.table)
            self.ns(router, "ip", "rule", "add", "iif", f"to-priv-{zone.letter}", "lookup",
                    zone.table)
        self._link(router, "to-igw", self.igw, "to-vpc", internet_mtu)
        self._link(self.igw, "to-inet", self.internet, "eth0", internet_host_mtu)
        self._address(router, "to-igw", f"{TRANSIT_VPC}/30")
        self._address(self.igw, "to-vpc", f"{TRANSIT_IGW}/30")
        self._address(self.igw, "to-inet", f"{INTERNET_GATEWAY_OUTSIDE}/24")
        self._address(self.internet, "eth0", f"{INTERNET_HOST}/24")
        self.ns(self.internet, "ip", "route", "add", "default", "via", INTERNET_GATEWAY_OUTSIDE)
        for namespace in (router, self.igw):
            self.ns(namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        # the public subnets' table (main): 0.0.0.0/0 → the internet gateway
        self.ns(router, "ip", "route", "add", "default", "via", TRANSIT_IGW)
        self.ns(self.igw, "ip", "route", "add", VPC_CIDR, "via", TRANSIT_VPC)

        self.map_public([pair for z in self.zones for pair in z.address_pairs])
        # like AWS's: only addresses with a public mapping pass between the VPC and the
        # internet (a private host never reaches it unless a NAT masquerades it)
        for zone in self.zones:
            for private, _ in zone.address_pairs:
                self.ns(self.igw, "iptables", "-A", "FORWARD", "-o", "to-inet", "-s",
                        private, "-j", "ACCEPT")
                if filter_inbound:
                    self.ns(self.igw, "iptables", "-A", "FORWARD", "-i", "to-inet", "-d",
                            private, "-j", "ACCEPT")
        self.ns(self.igw, "iptables", "-A", "FORWARD", "-o", "to-inet", "-s", VPC_CIDR,
                "-j", "DROP")
        if filter_inbound:
            self.ns(self.igw, "iptables", "-A", "FORWARD", "-i", "to-inet", "-j", "DROP")
        if block_pmtud:
            # Where the path narrows, "fragmentation needed" never reaches the sender.
            for namespace in (router, self.igw):
                self.ns(namespace, "iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type",
                        "fragmentation-needed", "-j", "DROP")

    def map_public(self, pairs: Sequence[tuple[str, str]], drop_unmapped: bool = False) -> None:
        """The internet gateway's 1:1 mappings (private, public), replaced at once: stateless,
        as AWS's is; with no connection tracking here, the NAT's table is the only one on
        the path. `drop_unmapped`: a VPC address without a mapping goes nowhere (where
        mappings move, the gateway's accept list names addresses that may have none)."""
        rules = ["table ip internet_gateway", "delete table ip internet_gateway",
                 "table ip internet_gateway {",
                 "  chain inbound { type filter hook prerouting priority -300; policy accept;"]
        rules += [f"    ip daddr {public} notrack ip daddr set {private}"
                  for private, public in pairs]
        rules += ["  }",
                  "  chain outbound { type filter hook postrouting priority 100; policy accept;"]
        rules += [f'    oifname "to-inet" ip saddr {private} ip saddr set {public}'
                  for private, public in pairs]
        if drop_unmapped:  # AWS's gateway drops it
            rules.append(f'    oifname "to-inet" ip saddr {VPC_CIDR} drop')
        rules += ["  }", "}"]
        run(["ip", "netns", "exec", self.igw, "nft", "-f", "-"], input="\n".join(rules) + "\n")

    def admit(self, private: str) -> None:
        """The gateway passes a private address's traffic (one that may get a mapping)."""
        self.ns(self.igw, "iptables", "-I", "FORWARD", "-o", "to-inet", "-s", private, "-j",
                "ACCEPT")
        self.ns(self.igw, "iptables", "-I", "FORWARD", "-i", "to-inet", "-d", private, "-j",
                "ACCEPT")

    def attach_nat(self, zone: Zone, namespace: str, interface: str = "ens5") -> None:
        """A NAT instance's namespace joins the zone's public subnet (a link that died with
        an earlier NAT's namespace is replaced)."""
        self.ns(self.router, "ip", "link", "del", f"to-nat-{zone.letter}", check=False)
        self._link(namespace, interface, self.router, f"to-nat-{zone.letter}", 9001)
        self._address(namespace, interface, f"{zone.nat_address}/20")
        for private, _ in zone.secondary:  # as amazon-ec2-net-utils adds them
            self._address(namespace, interface, f"{private}/32")
        self.ns(namespace, "ip", "route", "add", "default", "via", zone.public_gateway)
        self._address(self.router, f"to-nat-{zone.letter}", f"{zone.public_gateway}/20")

    def route_private(self, zone: Zone, nat_zone: Zone, check: bool = True
                      ) -> subprocess.CompletedProcess[str]:
        """The zone's private route table: 0.0.0.0/0 → the NAT of `nat_zone`."""
        return self.ns(self.router, "ip", "route", "replace", "default", "via",
                       nat_zone.nat_address, "dev", f"to-nat-{nat_zone.letter}", "metric", "0",
                       "table", zone.table, check=check)

    def add_host(self, suffix: str, attach_to: str, host: str, gateway: str,
                 prefix: int) -> str:
        """Another host, in a namespace of its own, on a new link to `attach_to` (a router of
        this topology): `host`/`prefix` on its side, `gateway`/`prefix` on the router's, its
        default route via the gateway. Removed with the rest by `close()`."""
        namespace = f"{self.tag}-{suffix}"
        self.add_namespace(namespace)
        self._link(namespace, "eth0", attach_to, f"to-{suffix}", 1500)
        self._address(namespace, "eth0", f"{host}/{prefix}")
        self._address(attach_to, f"to-{suffix}", f"{gateway}/{prefix}")
        self.ns(namespace, "ip", "route", "add", "default", "via", gateway)
        return namespace

    def _make_stand_ins(self) -> None:
        """PATH for the NATs: real ip/sysctl/iptables, recording stand-ins for the package
        manager and systemd, and an ethtool that prints the NAT's copy of recorded ENA
        statistics (NAT_TESTBED_ETHTOOL, which a test may change)."""
        self.fake_bin.mkdir()
        for tool in ("ip", "sysctl", "iptables"):
            (self.fake_bin / tool).symlink_to(shutil.which(tool) or tool)
        recorder = f'#!/bin/sh\necho "$(basename "$0") $*" >>{self.calls_log}\n'
        for tool in ("systemctl", "dnf", "yum"):
            self.write_stand_in(tool, recorder)
        self.write_stand_in("ethtool", '#!/bin/sh\n[ "$1" = -S ] || { echo "test bed ethtool: '
                            '-S only" >&2; exit 1; }\nexec cat "$NAT_TESTBED_ETHTOOL"\n')

    def write_stand_in(self, tool: str, body: str) -> None:
        path = self.fake_bin / tool
        path.write_text(body)
        path.chmod(0o755)

    def calls(self) -> list[str]:
        return self.calls_log.read_text().splitlines() if self.calls_log.exists() else []

    # --- traffic ----------------------------------------------------------------------------
    def start(self, namespace: str, *probe_args: str) -> subprocess.Popen[str]:
        """Start a probe in the background; waits until it says it is listening."""
        process = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, PROBE,
                                    *probe_args], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        self._processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"probe {probe_args} did not start: {line}")
        return process

    def probe(self, namespace: str, *probe_args: str,
              wait: float = 5) -> subprocess.CompletedProcess[str]:
        """Run a probe client; `wait` is how long it waits for the peer before giving up."""
        return run(["ip", "netns", "exec", namespace, "env", f"PROBE_TIMEOUT={wait}",
                    sys.executable, PROBE, *probe_args], check=False, timeout=wait * 20 + 30)

    @staticmethod
    def finish(process: subprocess.Popen[str], grace: float = 10) -> str:
        """Wait for a bounded probe to end (or stop it) and return what it printed."""
        try:
            output, _ = process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return output

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for namespace in self.namespaces:
            run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Topology(Network):
    """One AZ with one NAT instance (a namespace with a single interface, routed to at once):
    the bed the data-path tests and the benchmark run the bootstrap script in."""

    def __init__(self, nat_interface: str = "ens5", internet_mtu: int = 1500,
                 block_pmtud: bool = True, filter_inbound: bool = True,
                 public_addresses: int = 1) -> None:
        self.zone = ZONE_A.with_addresses(public_addresses)
        super().__init__([self.zone], "nt", internet_mtu=internet_mtu,
                         block_pmtud=block_pmtud, filter_inbound=filter_inbound)
        self.nat_interface = nat_interface
        self.nat, self.private = f"{self.tag}-nat", self.private_hosts[ZONE_A.letter]
        self.nat_link = f"to-nat-{ZONE_A.letter}"  # the router's side of the NAT's link
        try:
            self.add_namespace(self.nat)
            self.attach_nat(self.zone, self.nat, nat_interface)
            self.route_private(self.zone, self.zone)
            self.script = shipped_script(self.scratch)
        except BaseException:
            self.close()
            raise

    # --- running the bootstrap script on the "instance" ------------------------------------------
    def run_on_nat(self, shell: str, env: dict[str, str] | None = None,
                   timeout: float = 60) -> ScriptRun:
        """Run `shell` in the NAT's namespace with scratch /etc, /var and /usr/local/sbin."""
        mounts = []
        for target in SCRATCH_MOUNTS:
            upper, work = self._upper(target), self.scratch / "work" / self._upper(target).name
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},"
                          f"workdir={work} {target}")
        variables = {"PATH": f"{self.fake_bin}:/usr/bin:/bin", "NAT_CONSOLE": "/dev/null",
                     "NAT_RETRY_DELAY": "0", "NAT_ROUTE_WAIT": "2", **(env or {})}
        exports = " ".join(f"{k}='{v}'" for k, v in variables.items())
        inner = " && ".join(mounts) + f" && export {exports} && {shell}"
        result = run(["ip", "netns", "exec", self.nat, "unshare", "--mount",
                      "--propagation", "private", "/bin/bash", "-c", inner],
                     check=False, timeout=timeout)
        return ScriptRun(result.returncode, result.stdout + result.stderr)

    def bootstrap(self, command: str = "install", env: dict[str, str] | None = None,
                  vpc_cidrs: str = VPC_CIDR) -> ScriptRun:
        """What user data does: settings into /etc/nat-instance, then the script."""
        return self.run_on_nat(
            f"mkdir -p /etc/nat-instance && echo 'NAT_VPC_CIDRS=\"{vpc_cidrs}\"' "
            f">/etc/nat-instance/nat.env && /bin/bash {self.script} {command}", env)

    def _upper(self, target: str) -> Path:
        """Where writes under the scratch mount `target` land (its overlay upper dir)."""
        return self.scratch / "upper" / target.strip("/").replace("/", "-")

    def scratch_file(self, path: str) -> Path:
        """A file the script wrote under one of the scratch mounts."""
        for target in SCRATCH_MOUNTS:
            if path.startswith(target + "/"):
                return self._upper(target) / path[len(target) + 1:]
        raise ValueError(path)

    def rules(self) -> str:
        """The NAT's rule set without counters: what must not change on a re-run."""
        dump = self.ns(self.nat, "iptables-save").stdout
        return "\n".join(line for line in dump.splitlines()
                         if not line.startswith("#") and not line.startswith(":"))

    def chains(self) -> str:
        dump = self.ns(self.nat, "iptables-save").stdout
        return "\n".join(line.split(" [")[0] for line in dump.splitlines()
                         if line.startswith(":"))


    def __enter__(self) -> Topology:
        return self
