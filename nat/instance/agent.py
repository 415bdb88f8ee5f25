#!/usr/bin/env python3
"""nat-agent: the NAT instance's own metrics, and what keeps its AZ online (high availability).

Runs on every NAT instance that publishes metrics or is highly available (user data installs
it as /usr/local/sbin/nat-agent with a systemd unit). Python 3.9+ standard library only:
Amazon Linux 2023 has python3 and nothing has to be installed at boot.

Metrics (a thread of their own, so a slow CloudWatch never delays a failover): every minute
it reads the drops the ENA driver counts when the instance exceeds its network allowances
(`ethtool -S`), the kernel's connection-tracking table (entries in use, "table full" drops)
and the bytes and packets the NAT's FORWARD rules accepted, and queues one data point per
metric; every few minutes it sends the queue with PutMetricData. When CloudWatch cannot be
reached it keeps the newest hour and retries; forwarding is the kernel's and never waits.

With high availability, each second it
  1. tests its own data path: a TCP handshake to an internet endpoint made from a private
     address of the VPC (the AZ's reserved "+3" address of its public subnet, in a small
     network namespace of its own) that the NAT must forward and masquerade, as it does the
     private subnets' traffic;
  2. asks every other NAT for its status over UDP (its own test result, and what it sees);
  3. moves private route tables (ReplaceRoute) when the NAT they point at is unhealthy, and
     back to their own AZ's NAT when it has been healthy for a while (hysteresis);
  4. asks its Auto Scaling group to replace it when its own data path stays broken, and
     rolls out a new launch template one AZ at a time, handing its routes over first.

Split-brain: a NAT takes over an AZ whose own NAT it cannot reach; it never takes a route
back from a NAT it cannot reach unless AWS says that NAT is gone. Two NATs that cannot see
each other therefore settle (each may end up serving the other's AZ, both working) and do
not oscillate. The decisions are pure functions (`decide`, `replacement_due`, `rollout_due`)
tested on their own; the rest is I/O.

  nat-agent run                the agent (systemd runs this)
  nat-agent probe-helper       inside the probe namespace: answers "connect HOST PORT" lines
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

CONFIG_PATH = os.environ.get("NAT_AGENT_CONFIG", "/etc/nat-instance/agent.json")
STATUS_PORT = 7654  # UDP, between the NATs only (the security group admits itself)
RELEASE_TAG = "nat-instance-vpc:release"  # on each Auto Scaling group, set by Pulumi
API_VERSIONS = {"ec2": "2016-11-15", "autoscaling": "2011-01-01", "monitoring": "2010-08-01"}


def log(message: str) -> None:
    print(f"nat-agent: {message}", flush=True)


# --- configuration ---------------------------------------------------------------------------
# agent.json is a contract between halves of the product: the components write it (through
# `to_document`, nat/design/ha.py and nat/design/monitoring.py build these dataclasses) and
# the agent reads it (`from_document`). The values of the user's options (failback, targets,
# metrics) come from the options table (nat/inputs/options.py), never from defaults here.
@dataclass
class MetricsSettings:
    namespace: str
    group: str  # the NatGroup dimension: project/stack/component
    detailed: bool  # traffic and drops by cause too (each metric is billed)
    publish_every: float
    sample_every: float = 60.0
    keep: int = 60  # samples queued while CloudWatch cannot be reached (the newest kept)

    def to_document(self) -> dict[str, Any]:
        document = {"namespace": self.namespace, "group": self.group,
                    "detailed": self.detailed, "sample_every": float(self.sample_every),
                    "publish_every": float(self.publish_every)}
        if self.keep != MetricsSettings.keep:
            document["keep"] = self.keep
        return document


# the agent's own timings: written to agent.json only when they differ (the test bed's)
TIMINGS = ("probe_interval", "unhealthy_after", "replace_after", "never_healthy_grace",
           "route_refresh", "rollout_check", "silence_limit", "stall_after", "address_settle")


@dataclass
class Settings:
    region: str
    nats: dict[str, dict[str, str]] = field(default_factory=dict)  # zone → {"eni", "address"}
    route_tables: dict[str, str] = field(default_factory=dict)  # table → zone of its NAT
    targets: list[str] = field(default_factory=list)  # "host:port" reached through the NAT
    # seconds the owner stays healthy before taking its AZ back (high availability only)
    failback_after: float | None = None
    release: str = ""  # fingerprint of this instance's launch template (AMI, type, user data)
    status_port: int = STATUS_PORT
    metrics: MetricsSettings | None = None
    probe_interval: float = 1.0
    unhealthy_after: int = 3  # consecutive failed probes (and missed peer answers)
    replace_after: float = 60.0  # seconds of a broken data path before asking for a new NAT
    never_healthy_grace: float = 600.0  # a NAT that never got healthy since boot
    route_refresh: float = 15.0  # seconds between reads of the route tables when all is quiet
    rollout_check: float = 60.0
    # a peer silent this long is taken over even though its kernel still answers (an agent
    # that does not come back is not a restart)
    silence_limit: float = 20.0
    stall_after: float = 5.0  # no probe for this long: this agent was stopped
    # keep connections and addresses across moves (nats then also carry "allocation": the
    # AZ's Elastic IP, "standby": the address on its interface kept for the AZ before it in
    # `order`, "private": the AZ's private CIDRs); `spare`: an Elastic IP lent to a NAT
    # whose own address another NAT carries, so it can boot and prove its data path
    handover: bool = False
    spare: str = ""
    # seconds a planned move waits between moving an Elastic IP and moving the route: AWS
    # applies an address move to the data path some seconds after the call (no published
    # figure; 5-6 s measured by NGINX)
    address_settle: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.metrics, dict):
            self.metrics = MetricsSettings(**self.metrics)
        if self.high_availability and self.failback_after is None:
            raise ValueError("agent.json: high availability without failback_after")

    @property
    def order(self) -> list[str]:
        return sorted(self.nats)

    @property
    def high_availability(self) -> bool:
        return bool(self.nats)

    def to_document(self) -> dict[str, Any]:
        """agent.json: without high availability, the region and the metrics only."""
        document: dict[str, Any] = {"region": self.region}
        if self.metrics is not None:
            document["metrics"] = self.metrics.to_document()
        if self.high_availability:
            assert self.failback_after is not None
            document.update(nats=self.nats, route_tables=self.route_tables,
                            targets=list(self.targets),
                            failback_after=float(self.failback_after),
                            status_port=self.status_port, release=self.release)
            if self.handover:
                document.update(handover=True, spare=self.spare)
        for name in TIMINGS:
            if getattr(self, name) != getattr(Settings, name):
                document[name] = getattr(self, name)
        return document

    @staticmethod
    def from_document(raw: Mapping[str, Any]) -> Settings:
        return Settings(**raw)

    @staticmethod
    def load(path: str = CONFIG_PATH) -> Settings:
        with open(path) as handle:
            return Settings.from_document(json.load(handle))


# --- the decisions (pure) ------------------------------------------------------------------------
@dataclass
class Change:
    route_table: str
    target: str  # zone of the NAT the route must point at
    reason: str


@dataclass
class View:
    """What one NAT knows at one moment."""

    me: str
    order: list[str]
    healthy: dict[str, bool]  # a NAT to send traffic to: says its data path works, and did now
    reachable: dict[str, bool]  # answers the status exchange
    sees_me: dict[str, bool]  # each peer's own view of me
    routes: dict[str, str | None]  # route table → zone of its target (None: no live NAT)
    owners: dict[str, str]
    failback_after: float  # seconds (the options table's failbackAfterSeconds)
    gone: dict[str, bool] = field(default_factory=dict)  # AWS says the NAT is no more
    my_healthy_for: float = 0.0
    # answers, and says its data path is broken (or it is stepping down): an AZ is taken
    # from a NAT for what it says, not for what it has not said yet (an agent starting)
    broken: dict[str, bool] = field(default_factory=dict)
    # silent, and either its kernel does not answer either or it has been silent too long:
    # an agent that stops talking is not a data path that stops forwarding
    dead: dict[str, bool] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)  # probes passed, recent window
    # how long each peer has seen me healthy, without a break: failback counts from there
    seen_healthy_for: dict[str, float] = field(default_factory=dict)
    # each NAT → the NATs in trouble it has passed a probe since it saw them so; a NAT not
    # listed (an agent of an earlier release) is taken at its word
    vouches: dict[str, frozenset[str]] = field(default_factory=dict)


DEGRADED_MARGIN = 0.2  # a NAT passing this much less of its probes than another is left


def degraded(view: View, zone: str, other: str) -> bool:
    """`zone` loses clearly more of its probes than `other` (which is healthy)."""
    return view.ratio.get(zone, 1.0) + DEGRADED_MARGIN <= view.ratio.get(other, 1.0) and \
        bool(view.healthy.get(other)) and not view.healthy.get(zone)


def vouched(view: View, target: str, zone: str) -> bool:
    """`target` has passed a probe since it saw `zone` in trouble. One upstream failure is
    seen by two NATs a moment apart (their probes are not in step): a NAT whose last good
    probe predates the fault is no place to move to yet."""
    said = view.vouches.get(target)
    return said is None or zone in said


def desired_target(owner: str, order: Sequence[str], healthy: dict[str, bool]) -> str | None:
    """The owner when healthy, else the next healthy NAT after it (the same for everyone
    who sees the same health), else None: nowhere better to go."""
    if healthy.get(owner):
        return owner
    start = list(order).index(owner)
    for zone in list(order[start + 1:]) + list(order[:start]):
        if healthy.get(zone):
            return zone
    return None


def decide(view: View) -> list[Change]:
    """The route changes this NAT makes now.

    A route is moved only for a reason: its NAT says its data path is broken, loses clearly
    more probes than a healthy one, is dead (silent, and its kernel silent too, or silent for
    long) or gone (AWS says so); or its owner is back (failback, once the NAT holding the
    route has seen it healthy for failbackAfterSeconds). The NAT that becomes the target
    makes the change, and a NAT handing its own routes over pushes them; anyone else waits,
    so concurrent writes agree. A NAT that has not yet judged its data path (an agent just
    started) is neither a reason to move nor a place to move to, nor is one that has not
    probed since it saw the fault (`vouched`). With no healthy NAT, every route stays where
    it is.
    """
    changes = []
    # A NAT cut off from most others does not take their AZs for their silence alone (it
    # would gather every route to itself); with two NATs, one is enough.
    quorum = sum(bool(view.reachable.get(z)) for z in view.order) * 2 >= len(view.order)
    for table, owner in sorted(view.owners.items()):
        current = view.routes.get(table)
        target = desired_target(owner, view.order, view.healthy)
        if target is None or target == current:
            continue
        reason = None
        troubled = current  # the NAT the route leaves for a fault of its own
        if current is None:
            reason = "its route leads to no live NAT"
        elif current == owner:
            if view.reachable.get(owner) and view.broken.get(owner):
                reason = f"the NAT in {owner} is unhealthy"
            elif view.reachable.get(owner) and degraded(view, owner, target):
                reason = (f"the NAT in {owner} passes {view.ratio.get(owner, 0):.0%} of its "
                          f"probes, the one in {target} {view.ratio.get(target, 0):.0%}")
            elif not view.reachable.get(owner) and quorum and view.dead.get(owner):
                reason = f"the NAT in {owner} does not answer"
        elif current == view.me and (view.broken.get(view.me) or
                                     degraded(view, view.me, target)):
            reason = "handing over"
        elif view.reachable.get(current) and (view.broken.get(current) or
                                              degraded(view, current, target)):
            reason = f"the NAT in {current} reports a broken data path"
        elif not view.reachable.get(current) and view.gone.get(current):
            reason = f"the NAT in {current} is gone"
        elif target == owner == view.me and view.reachable.get(current) and \
                view.sees_me.get(current) and min(
                    view.my_healthy_for,
                    view.seen_healthy_for.get(current, view.my_healthy_for)) >= \
                view.failback_after:
            reason = f"failback: healthy for {view.my_healthy_for:.0f} s"
            troubled = None
        if reason is not None and view.me in (target, current) and (
                troubled is None or vouched(view, target, troubled)):
            changes.append(Change(table, target, reason))
    return changes


def replacement_due(unhealthy_for: float, ever_healthy: bool, up_for: float,
                    peer_healthy: bool, direct_ok: bool, settings: Settings) -> bool:
    """Ask for a new instance only when the fault is this NAT's: a peer still works, or this
    instance reaches the internet itself but not through its forwarding path. When every
    path is down (the internet, a shared route table), replacing NATs would only churn."""
    if not (peer_healthy or direct_ok):
        return False
    if ever_healthy:
        return unhealthy_for >= settings.replace_after
    return up_for >= settings.never_healthy_grace


def peers_up_to_date(wanted: str, reports: Mapping[str, Mapping[str, Any]]) -> dict[str, bool]:
    """Which other NATs run the release `wanted` (one release for the whole stack). Judged by
    the release each one runs, not by its own up_to_date: that is as old as its last look at
    its group's tag, and a NAT that has not yet looked would pass for updated, letting two
    NATs step down at once."""
    return {zone: bool(wanted) and report.get("release") == wanted
            for zone, report in reports.items()}


def rollout_due(me: str, order: Sequence[str], up_to_date: dict[str, bool],
                healthy: dict[str, bool]) -> bool:
    """A NAT on an old launch template steps down when every other NAT is healthy and every
    NAT before it (AZ order) is up to date: one AZ at a time. A lone NAT never steps down
    for an update (its AZ would be dark)."""
    if up_to_date.get(me, True):
        return False
    others = [zone for zone in order if zone != me]
    if not others or not all(healthy.get(zone) for zone in others):
        return False
    return all(up_to_date.get(zone) for zone in order[:list(order).index(me)])


STARTING, HEALTHY, DEGRADED, BROKEN = "starting", "healthy", "degraded", "broken"


class Health:
    """This NAT's data path, judged probe by probe.

    starting: no verdict yet (an agent just started or woke up: its NAT may well forward);
    the first probe that passes makes it healthy, `threshold` failures in a row broken.
    healthy → broken on `threshold` failures in a row; broken → healthy on `threshold`
    passes in a row. Over the last `window` probes, a NAT passing fewer than `degraded_below`
    is degraded (it loses connections, though not every probe), and healthy again from
    `recovered_above`: one lost probe never changes anything.
    """

    def __init__(self, threshold: int, window: int = 20, degraded_below: float = 0.85,
                 recovered_above: float = 0.95, state: str = STARTING) -> None:
        self.threshold = threshold
        self.results: collections.deque[bool] = collections.deque(maxlen=window)
        self.degraded_below, self.recovered_above = degraded_below, recovered_above
        self.state = state
        self.streak = 0  # results in a row that disagree with the state
        self.since = time.monotonic()
        self.ever_healthy = state == HEALTHY
        self.last_ok = state == HEALTHY

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY

    @property
    def ratio(self) -> float:
        return sum(self.results) / len(self.results) if self.results else 1.0

    def _become(self, state: str, now: float) -> bool:
        changed = state != self.state
        if changed:
            self.state, self.since, self.streak = state, now, 0
            self.ever_healthy = self.ever_healthy or state == HEALTHY
        return changed

    def update(self, ok: bool, now: float) -> bool:
        """Record one probe; True when the state changed."""
        self.results.append(ok)
        self.last_ok = ok
        full = len(self.results) == self.results.maxlen
        if self.state == STARTING:
            if ok:
                return self._become(HEALTHY, now)
            self.streak += 1
            return self._become(BROKEN, now) if self.streak >= self.threshold else False
        if self.state == BROKEN:
            self.streak = self.streak + 1 if ok else 0
            if self.streak < self.threshold:
                return False
            return self._become(DEGRADED if full and self.ratio < self.recovered_above
                                else HEALTHY, now)
        self.streak = 0 if ok else self.streak + 1
        if self.streak >= self.threshold:
            return self._become(BROKEN, now)
        if self.state == HEALTHY and full and self.ratio < self.degraded_below:
            return self._become(DEGRADED, now)
        if self.state == DEGRADED and self.ratio >= self.recovered_above:
            return self._become(HEALTHY, now)
        return False

    def restart(self, now: float) -> None:
        """After a stall (the agent frozen): what was seen before counts for nothing."""
        self._become(STARTING, now)
        self.results.clear()
        self.last_ok = False

    def lasted(self, now: float) -> float:
        return now - self.since


# --- AWS: signed Query API calls and instance metadata, standard library only --------------------
class AwsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def strip_namespaces(element: ElementTree.Element) -> ElementTree.Element:
    for node in element.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    return element


class Metadata:
    """IMDSv2 (the NATs require it)."""

    def __init__(self, endpoint: str | None = None) -> None:
        self.endpoint = (endpoint or os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                         or "http://169.254.169.254").rstrip("/")
        self._token = ""
        self._token_until = 0.0

    def _fresh_token(self) -> str:
        if time.monotonic() < self._token_until:
            return self._token
        request = urllib.request.Request(f"{self.endpoint}/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
        with urllib.request.urlopen(request, timeout=2) as response:
            self._token = response.read().decode()
        self._token_until = time.monotonic() + 240
        return self._token

    def get(self, path: str) -> str | None:
        request = urllib.request.Request(f"{self.endpoint}/latest/{path}",
                                         headers={"X-aws-ec2-metadata-token":
                                                  self._fresh_token()})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise


class Credentials:
    """From the environment, else the instance profile (refreshed before they expire)."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata
        self._cached: tuple[str, str, str] = ("", "", "")
        self._until = 0.0

    def get(self) -> tuple[str, str, str]:
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            return (os.environ["AWS_ACCESS_KEY_ID"], os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                    os.environ.get("AWS_SESSION_TOKEN", ""))
        if time.monotonic() < self._until:
            return self._cached
        role = (self.metadata.get("meta-data/iam/security-credentials/") or "").split()[0]
        document = json.loads(self.metadata.get(
            f"meta-data/iam/security-credentials/{role}") or "{}")
        self._cached = (document["AccessKeyId"], document["SecretAccessKey"],
                        document.get("Token", ""))
        self._until = time.monotonic() + 600  # instance profile keys last hours
        return self._cached


def sign(method: str, url: str, region: str, service: str, body: bytes,
         credentials: tuple[str, str, str], now: datetime.datetime) -> dict[str, str]:
    """Signature Version 4 headers for a form-encoded Query API request."""
    access_key, secret_key, token = credentials
    parsed = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
               "host": parsed.netloc, "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join([method, parsed.path or "/", parsed.query,
                           "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


# what one HTTP exchange with an API can raise: the connection (OSError: refused, reset,
# timed out), the HTTP layer (a body cut short: IncompleteRead), the answer (not XML, not
# text)
CALL_FAILURES = (OSError, urllib.error.URLError, http.client.HTTPException,
                 ElementTree.ParseError, ValueError, UnicodeError)


class Aws:
    """EC2, Auto Scaling and CloudWatch Query APIs (XML answers)."""

    def __init__(self, region: str, credentials: Credentials, timeout: float = 5) -> None:
        self.region = region
        self.credentials = credentials
        self.timeout = timeout
        self.override = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")

    def endpoint(self, service: str) -> str:
        if self.override:
            return self.override + "/"
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"https://{service}.{self.region}.{suffix}/"

    def call(self, service: str, action: str, params: dict[str, str]) -> ElementTree.Element:
        """One API call. Every way it can fail (refused, reset, cut short, timed out, an
        answer that is not XML, throttled, no credentials) raises AwsError: one failed step
        for the caller, never a crash of the agent."""
        try:
            return self._call(service, action, params)
        except AwsError:
            raise
        except CALL_FAILURES as error:
            raise AwsError("RequestFailed", f"{action}: {type(error).__name__}: "
                           f"{str(error)[:200]}") from None

    def _call(self, service: str, action: str, params: dict[str, str]) -> ElementTree.Element:
        body = urllib.parse.urlencode({"Action": action, "Version": API_VERSIONS[service],
                                       **params}).encode()
        url = self.endpoint(service)
        headers = sign("POST", url, self.region, service, body, self.credentials.get(),
                       datetime.datetime.now(datetime.timezone.utc))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return strip_namespaces(ElementTree.fromstring(response.read()))
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                root = strip_namespaces(ElementTree.fromstring(text))
                code = root.findtext(".//Code") or str(error.code)
                message = root.findtext(".//Message") or ""
            except ElementTree.ParseError:
                code, message = str(error.code), text[:200].decode(errors="replace")
            raise AwsError(code, message) from None

    # EC2 ------------------------------------------------------------------------------------
    def route_targets(self, tables: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Route table → (the 0.0.0.0/0 route's network interface or instance, its state)."""
        params = {f"RouteTableId.{i + 1}": table for i, table in enumerate(tables)}
        root = self.call("ec2", "DescribeRouteTables", params)
        found = {}
        for table in root.iter("item"):
            table_id = table.findtext("routeTableId")
            if not table_id:
                continue
            for route in table.iterfind("routeSet/item"):
                if route.findtext("destinationCidrBlock") == "0.0.0.0/0":
                    target = (route.findtext("networkInterfaceId") or
                              route.findtext("instanceId") or route.findtext("gatewayId") or "")
                    found[table_id] = (target, route.findtext("state") or "")
        return found

    def replace_route(self, table: str, interface: str) -> None:
        self.call("ec2", "ReplaceRoute", {"RouteTableId": table,
                                          "DestinationCidrBlock": "0.0.0.0/0",
                                          "NetworkInterfaceId": interface})

    def interface_instance(self, interface: str) -> str | None:
        """The instance a network interface is attached to, None when it is free."""
        root = self.call("ec2", "DescribeNetworkInterfaces", {"NetworkInterfaceId.1": interface})
        attachment = root.find(".//networkInterfaceSet/item/attachment")
        if attachment is None or attachment.findtext("status") not in ("attached", "attaching"):
            return None
        return attachment.findtext("instanceId")

    def instance_state(self, instance: str) -> str:
        root = self.call("ec2", "DescribeInstances", {"InstanceId.1": instance})
        return root.findtext(".//instancesSet/item/instanceState/name") or "unknown"

    # Auto Scaling ---------------------------------------------------------------------------
    def group_instance(self, instance: str) -> dict[str, str]:
        """The group and health of an instance of an Auto Scaling group ({} if none)."""
        root = self.call("autoscaling", "DescribeAutoScalingInstances",
                         {"InstanceIds.member.1": instance})
        member = root.find(".//AutoScalingInstances/member")
        if member is None:
            return {}
        return {"group": member.findtext("AutoScalingGroupName") or "",
                "health": member.findtext("HealthStatus") or ""}

    def group_tag(self, group: str, key: str) -> str:
        root = self.call("autoscaling", "DescribeAutoScalingGroups",
                         {"AutoScalingGroupNames.member.1": group})
        for tag in root.iterfind(".//AutoScalingGroups/member/Tags/member"):
            if tag.findtext("Key") == key:
                return tag.findtext("Value") or ""
        return ""

    def set_unhealthy(self, instance: str) -> None:
        """The group replaces the instance at once (no grace period)."""
        self.call("autoscaling", "SetInstanceHealth", {"InstanceId": instance,
                                                       "HealthStatus": "Unhealthy",
                                                       "ShouldRespectGracePeriod": "false"})


# --- the data-path test --------------------------------------------------------------------------
def reserved_address(interface_cidr: str) -> str:
    """AWS reserves the fourth address of every subnet (network + 3) and never assigns it:
    a private source inside the VPC that no host has, for the probe namespace."""
    network = ipaddress.ip_interface(interface_cidr).network
    return str(network.network_address + 3)


def run(*command: str, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(list(command), capture_output=True, text=True, check=check,
                          timeout=10, input=stdin)


class ProbeNamespace:
    """A one-address network namespace behind the NAT: what it sends to the internet must be
    forwarded and masqueraded like a private host's traffic. The namespace lives as long as
    its helper process (`unshare --net`): nothing is left behind when the agent stops."""

    HOST_SIDE, INSIDE = "natprobe0", "natprobe1"
    GATEWAY = "169.254.99.1"

    def __init__(self) -> None:
        self.helper: subprocess.Popen | None = None  # type: ignore[type-arg]
        self.source = ""

    @staticmethod
    def primary() -> tuple[str, str]:
        """(interface, address/prefix) of the default route's interface."""
        route = run("ip", "-o", "-4", "route", "show", "to", "default").stdout.split()
        interface = route[route.index("dev") + 1]
        address = run("ip", "-o", "-4", "addr", "show", "dev", interface).stdout.split()
        return interface, address[address.index("inet") + 1]

    def setup(self) -> str:
        self.teardown()
        _, cidr = self.primary()
        self.source = reserved_address(cidr)
        helper = subprocess.Popen(["unshare", "--net", "--", sys.executable,
                                   os.path.abspath(__file__), "probe-helper"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        self.helper = helper
        assert helper.stdout is not None
        if helper.stdout.readline().strip() != "ready":  # in its own namespace by now
            raise OSError("the probe helper did not start")
        pid = str(helper.pid)
        run("ip", "link", "add", self.HOST_SIDE, "type", "veth", "peer", "name", self.INSIDE,
            "netns", pid)
        run("ip", "addr", "add", f"{self.GATEWAY}/32", "dev", self.HOST_SIDE)
        run("ip", "link", "set", self.HOST_SIDE, "up")
        run("ip", "route", "replace", f"{self.source}/32", "dev", self.HOST_SIDE)
        inside = ("nsenter", "-t", pid, "-n")
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "addr", "add", f"{self.source}/32", "dev", self.INSIDE)
        run(*inside, "ip", "link", "set", self.INSIDE, "up")
        run(*inside, "ip", "route", "add", self.GATEWAY, "dev", self.INSIDE)
        run(*inside, "ip", "route", "add", "default", "via", self.GATEWAY)
        return self.source

    def alive(self) -> bool:
        return self.helper is not None and self.helper.poll() is None

    def teardown(self) -> None:
        if self.helper is not None:
            self.helper.kill()
            self.helper.wait()
            self.helper = None
        run("ip", "link", "del", self.HOST_SIDE, check=False)

    def reach(self, targets: Sequence[tuple[str, int]], timeout: float) -> bool:
        """A TCP handshake with one of `targets`, through the NAT's forwarding path."""
        helper = self.helper
        if helper is None or helper.poll() is not None or helper.stdin is None or \
                helper.stdout is None:
            return False
        for host, port in targets:
            helper.stdin.write(f"connect {host} {port} {timeout}\n")
            helper.stdin.flush()
            ready, _, _ = select.select([helper.stdout], [], [], timeout + 1)
            if ready and helper.stdout.readline().strip() == "ok":
                return True
        return False


def connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_helper() -> int:
    """Inside the probe namespace: one "connect HOST PORT TIMEOUT" per line, "ok" or "fail".
    Ends quietly when the agent has gone (its pipe closed), as when it hands its instance
    back to the Auto Scaling group."""
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if len(words) != 4 or words[0] != "connect":
                print("fail", flush=True)
                continue
            print("ok" if connect(words[1], int(words[2]), float(words[3])) else "fail",
                  flush=True)
    except (BrokenPipeError, ValueError, OSError):
        pass
    # no flush of a closed pipe at exit
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def resolve(targets: Sequence[str], inside: Sequence[ipaddress.IPv4Network]
            ) -> list[tuple[str, int]]:
    """host:port → (address, port), leaving out addresses inside the VPC (an endpoint
    reached privately tests nothing of the internet path)."""
    resolved = []
    for target in targets:
        host, _, port = target.rpartition(":")
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, int(port),
                                                                          socket.AF_INET)}
        except OSError:
            continue
        for address in sorted(addresses):
            if not any(ipaddress.ip_address(address) in net for net in inside):
                resolved.append((address, int(port)))
    return resolved


# --- talking to the other NATs -------------------------------------------------------------------
class Peers:
    """UDP status exchange: each round asks every other NAT, answers theirs."""

    def __init__(self, me: str, nats: dict[str, dict[str, str]], threshold: int,
                 status: Callable[[], dict[str, Any]], port: int = STATUS_PORT) -> None:
        self.me = me
        self.addresses = {zone: nat["address"] for zone, nat in nats.items() if zone != me}
        self.threshold = threshold
        self.status = status
        self.misses = dict.fromkeys(self.addresses, threshold)  # unknown until they answer
        self.reports: dict[str, dict[str, Any]] = {}
        self.heard: dict[str, float] = {}  # zone → when its last report arrived
        self.counted_at = -1.0  # when `collect` last counted
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("0.0.0.0", port))
        self.port = port
        self._lock = threading.Lock()
        # called when a peer's report says something new about its health (pushed at once)
        self.on_news: Callable[[], None] = lambda: None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        by_address = {address: zone for zone, address in self.addresses.items()}
        while True:
            try:
                data, (address, port) = self.socket.recvfrom(65535)
                message = json.loads(data.decode())
            except (OSError, ValueError):
                if self.socket.fileno() < 0:
                    return  # closed
                continue
            if message.get("ask"):
                reply = json.dumps({"report": self.status()}).encode()
                with contextlib.suppress(OSError):
                    self.socket.sendto(reply, (address, port))
            elif "report" in message and address in by_address:
                zone = by_address[address]
                with self._lock:
                    before = self.reports.get(zone, {})
                    self.reports[zone] = message["report"]
                    self.heard[zone] = time.monotonic()
                if message["report"].get("state") != before.get("state") or \
                        message["report"].get("retiring") != before.get("retiring"):
                    self.on_news()

    def tell(self, report: dict[str, Any]) -> None:
        """Push this NAT's status to every other NAT, unasked (its health just changed)."""
        data = json.dumps({"report": report}).encode()
        for address in self.addresses.values():
            with contextlib.suppress(OSError):
                self.socket.sendto(data, (address, self.port))

    def ask(self) -> None:
        """Ask every other NAT for its status; answers arrive on the listening thread."""
        for address in self.addresses.values():
            with contextlib.suppress(OSError):
                self.socket.sendto(b'{"ask": true}', (address, self.port))

    def collect(self) -> None:
        """Count who did not answer since the last count. An answer that comes after its
        round was counted (a busy peer or network) counts in the next: the peer is alive."""
        with self._lock:
            for zone in self.addresses:
                answered = self.heard.get(zone, -2.0) > self.counted_at
                self.misses[zone] = 0 if answered else self.misses[zone] + 1
            self.counted_at = time.monotonic()

    def reachable(self, zone: str) -> bool:
        return self.misses.get(zone, self.threshold) < self.threshold

    def report(self, zone: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.reports.get(zone, {}))


# --- metrics -------------------------------------------------------------------------------------
# Names as NAT Gateway's where one corresponds (nat/design/monitoring.py documents each and
# builds the alarms and the dashboard on these names).
METRIC_UNITS = {
    "PacketsDropCount": "Count", "ActiveConnectionCount": "Count",
    "BytesOutToDestination": "Bytes", "BytesInFromDestination": "Bytes",
    "PacketsOutToDestination": "Count", "PacketsInFromDestination": "Count",
    "PacketsDropBandwidthIn": "Count", "PacketsDropBandwidthOut": "Count",
    "PacketsDropPps": "Count", "PacketsDropConntrackAllowance": "Count",
    "PacketsDropLinkLocal": "Count", "PacketsDropTableFull": "Count",
    "FailoverCount": "Count", "ErrorPortAllocation": "Count",
}
DROP_CAUSES = {  # counter → its own metric; together they make PacketsDropCount
    "bw_in_allowance_exceeded": "PacketsDropBandwidthIn",
    "bw_out_allowance_exceeded": "PacketsDropBandwidthOut",
    "pps_allowance_exceeded": "PacketsDropPps",
    "conntrack_allowance_exceeded": "PacketsDropConntrackAllowance",
    "linklocal_allowance_exceeded": "PacketsDropLinkLocal",
    "table_full": "PacketsDropTableFull",  # the kernel's tracking table, not the ENA's
}
TRAFFIC = {"bytes_out": "BytesOutToDestination", "bytes_in": "BytesInFromDestination",
           "packets_out": "PacketsOutToDestination", "packets_in": "PacketsInFromDestination"}
CONNTRACK_COUNT = "/proc/sys/net/netfilter/nf_conntrack_count"
CONNTRACK_STAT = "/proc/net/stat/nf_conntrack"
CONNTRACK_COLUMNS = {"drop": "table_full", "insert_failed": "port_allocation"}
PUT_METRIC_DATA_BATCH = 500  # data points per request (CloudWatch takes up to 1,000)
# RequestFailed: the call itself failed (no connection, cut short, not an answer): try again
TRANSIENT = {"RequestFailed", "Throttling", "ThrottlingException", "RequestLimitExceeded",
             "ServiceUnavailable",
             "InternalFailure", "InternalServiceError", "RequestExpired", "ExpiredToken",
             "ExpiredTokenException", "RequestTimeout", "IncompleteSignature"}


def parse_ethtool(text: str) -> dict[str, int]:
    """The ENA allowance counters of `ethtool -S` ("     name: value" lines), by name."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(":")
        if name in DROP_CAUSES and value.strip().isdigit():
            found[name] = int(value)
    return found


def parse_conntrack_stat(text: str) -> dict[str, int]:
    """From /proc/net/stat/nf_conntrack (hexadecimal, one row per CPU), summed: new flows
    dropped because their translated tuple was taken, i.e. no free port on the chosen address
    (`insert_failed`: "port_allocation"), and the other drops, mostly a full tracking table
    (`drop` less those: "table_full"). Columns this kernel lacks are left out."""
    lines = text.split("\n")
    header = lines[0].split() if lines else []
    columns = {name: header.index(column) for column, name in CONNTRACK_COLUMNS.items()
               if column in header}
    totals = dict.fromkeys(columns, 0)
    for line in lines[1:]:
        values = line.split()
        if len(values) == len(header):
            for name, column in columns.items():
                totals[name] += int(values[column], 16)
    if "table_full" in totals and "port_allocation" in totals:
        # the kernel counts a failed insert as a drop too: the table was not full then
        totals["table_full"] = max(totals["table_full"] - totals["port_allocation"], 0)
    return totals


def parse_forward_counters(text: str) -> dict[str, int]:
    """Bytes and packets the NAT forwarded, from `iptables -nvxL NAT_FORWARD`: new flows from
    the VPC and their later packets are "out" (to the destination), replies are "in"."""
    totals = dict.fromkeys(TRAFFIC, 0)
    for line in text.splitlines():
        words = line.split()
        if len(words) < 9 or not words[0].isdigit() or words[2] != "ACCEPT":
            continue
        packets, size, rest = int(words[0]), int(words[1]), " ".join(words[9:])
        direction = "in" if "ctdir REPLY" in rest else "out"
        totals[f"packets_{direction}"] += packets
        totals[f"bytes_{direction}"] += size
    return totals


def counter_deltas(previous: dict[str, int], current: dict[str, int]) -> dict[str, int]:
    """What each counter added since the last reading. A counter that went down was reset
    (the ENA driver resets its counters; rebuilt rules start at zero): count from zero."""
    return {name: value - previous[name] if value >= previous[name] else value
            for name, value in current.items() if name in previous}


def datums(deltas: dict[str, int], connections: int | None, detailed: bool, failovers: int,
           timestamp: str) -> list[dict[str, Any]]:
    """One sample's data points. PacketsDropCount and ActiveConnectionCount always (0 drops
    too: the "NAT silent" alarm counts them); traffic with `detailed`; a drop cause or a
    failover only when it happened (a metric costs only in hours it gets data)."""
    points: list[tuple[str, float]] = []
    drops = [deltas[cause] for cause in DROP_CAUSES if cause in deltas]
    if drops or connections is not None:
        points.append(("PacketsDropCount", sum(drops)))
    if connections is not None:
        points.append(("ActiveConnectionCount", connections))
    if detailed:
        points += [(metric, deltas[name]) for name, metric in TRAFFIC.items() if name in deltas]
        points += [(metric, deltas[cause]) for cause, metric in DROP_CAUSES.items()
                   if deltas.get(cause)]
    if deltas.get("port_allocation"):  # NAT Gateway's name; only in minutes it happens
        points.append(("ErrorPortAllocation", deltas["port_allocation"]))
    if failovers:
        points.append(("FailoverCount", failovers))
    return [{"MetricName": name, "Value": value, "Unit": METRIC_UNITS[name],
             "Timestamp": timestamp} for name, value in points]


def put_metric_data_params(namespace: str, dimensions: dict[str, str],
                           points: Sequence[dict[str, Any]]) -> dict[str, str]:
    """PutMetricData's Query parameters."""
    params = {"Namespace": namespace}
    for i, point in enumerate(points, 1):
        prefix = f"MetricData.member.{i}"
        params.update({f"{prefix}.MetricName": point["MetricName"],
                       f"{prefix}.Value": repr(float(point["Value"])),
                       f"{prefix}.Unit": point["Unit"],
                       f"{prefix}.Timestamp": point["Timestamp"],
                       f"{prefix}.StorageResolution": "60"})
        for j, (name, value) in enumerate(dimensions.items(), 1):  # as the alarms list them
            params[f"{prefix}.Dimensions.member.{j}.Name"] = name
            params[f"{prefix}.Dimensions.member.{j}.Value"] = value
    return params


class Counters:
    """Reads the NAT's counters (each source may be missing: it is then left out)."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.missing: set[str] = set()

    def _say_once(self, source: str, error: object) -> None:
        if source not in self.missing:
            self.missing.add(source)
            log(f"metrics: cannot read {source} ({error}): left out")

    def read(self) -> tuple[dict[str, int], int | None]:
        counters: dict[str, int] = {}
        try:
            counters.update(parse_ethtool(run("ethtool", "-S", self.interface).stdout))
        except (OSError, subprocess.SubprocessError) as error:
            self._say_once(f"ethtool -S {self.interface}", error)
        try:
            with open(CONNTRACK_STAT) as handle:
                counters.update(parse_conntrack_stat(handle.read()))
        except (OSError, ValueError) as error:
            self._say_once(CONNTRACK_STAT, error)
        try:
            counters.update(parse_forward_counters(
                run("iptables", "-w", "-nvxL", "NAT_FORWARD").stdout))
        except (OSError, subprocess.SubprocessError) as error:
            self._say_once("iptables NAT_FORWARD", error)
        connections = None
        try:
            with open(CONNTRACK_COUNT) as handle:
                connections = int(handle.read())
        except (OSError, ValueError) as error:
            self._say_once(CONNTRACK_COUNT, error)
        return counters, connections


class Tally:
    """A count one thread adds to and another takes (failovers, for the metrics thread)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._count += count

    def take(self) -> int:
        with self._lock:
            count, self._count = self._count, 0
            return count


class Collector:
    """Samples every `sample_every` seconds, publishes the queue every `publish_every`.

    The queue holds at most `keep` samples: while CloudWatch cannot be reached the oldest go,
    so memory stays flat however long the outage. A request CloudWatch refuses for its
    content (not for throttling or an outage) is dropped and logged, never retried forever.
    """

    def __init__(self, settings: MetricsSettings, zone: str,
                 read: Callable[[], tuple[dict[str, int], int | None]],
                 put: Callable[[dict[str, str]], object], failovers: Tally) -> None:
        self.settings = settings
        self.dimensions = {"NatGroup": settings.group, "AvailabilityZone": zone}
        self.read = read
        self.put = put
        self.failovers = failovers
        self.queue: collections.deque[list[dict[str, Any]]] = collections.deque(
            maxlen=settings.keep)
        self.previous: dict[str, int] | None = None
        self.dropped = 0  # samples lost to a long outage or refused by CloudWatch
        self.failing_since: float | None = None

    def sample(self, wall_time: float) -> None:
        counters, connections = self.read()
        previous, self.previous = self.previous, counters
        if previous is None:
            return  # the first reading is the baseline for the counters
        stamp = datetime.datetime.fromtimestamp(wall_time, datetime.timezone.utc)
        points = datums(counter_deltas(previous, counters), connections,
                        self.settings.detailed, self.failovers.take(),
                        stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if points:
            if len(self.queue) == self.queue.maxlen:
                self.dropped += 1
            self.queue.append(points)

    def publish(self, now: float) -> None:
        while self.queue:
            batch: list[dict[str, Any]] = []
            count = 0
            for sample in self.queue:
                if batch and len(batch) + len(sample) > PUT_METRIC_DATA_BATCH:
                    break
                batch += sample
                count += 1
            try:
                self.put(put_metric_data_params(self.settings.namespace, self.dimensions,
                                                batch))
            except AwsError as error:
                if error.code in TRANSIENT or error.code.startswith("5"):
                    self._failing(now, error)
                    return
                log(f"metrics: CloudWatch refused {count} samples, dropped: {error}")
                self.dropped += count
            except (OSError, urllib.error.URLError, ValueError) as error:
                self._failing(now, error)
                return
            else:
                if self.failing_since is not None:
                    log(f"metrics: CloudWatch reachable again after "
                        f"{now - self.failing_since:.0f} s")
                    self.failing_since = None
            for _ in range(count):
                self.queue.popleft()

    def _failing(self, now: float, error: object) -> None:
        if self.failing_since is None:
            self.failing_since = now
            log(f"metrics: cannot publish ({error}); keeping the newest "
                f"{self.settings.keep} samples and retrying")

    def run(self) -> None:
        log(f"metrics: {self.settings.namespace} {self.dimensions}, a sample every "
            f"{self.settings.sample_every:.0f} s, sent every {self.settings.publish_every:.0f} s")
        next_sample = next_publish = time.monotonic()
        next_publish += self.settings.publish_every
        while True:
            now = time.monotonic()
            if now >= next_sample:
                next_sample += self.settings.sample_every
                try:
                    self.sample(time.time())
                except Exception as error:  # metrics must never stop the agent
                    log(f"metrics: sample failed: {error!r}")
            if now >= next_publish:
                next_publish += self.settings.publish_every
                try:
                    self.publish(now)
                except Exception as error:  # likewise
                    log(f"metrics: publish failed: {error!r}")
            time.sleep(max(0.0, min(next_sample, next_publish) - time.monotonic()))


# --- keeping connections and addresses across moves (handover) ---------------------------------
# HANDOVER-BEGIN: user data carries what lies between these markers only with keepConnections
# Each AZ owns its Elastic IP; its traffic is always translated to its own NAT's primary
# address (the "home" address), on whichever NAT carries it. The NAT after an AZ in `order`
# (the one `desired_target` picks when that AZ's NAT fails) keeps a standby address on its
# interface for it: taking the AZ, it moves the AZ's Elastic IP there and rewrites home ↔
# standby statelessly, so the connections conntrackd replicated from the AZ's NAT (their
# translation is to the home address) carry on, and new ones leave from the same address.
SYNC_PORT = 3780  # conntrackd, UDP, between the NATs only (the security group admits itself)
SYNC_LINKS = 6  # ports SYNC_PORT.. for the links of a ring of up to 6 AZs' NATs
METRIC_UNITS["ReplicationErrors"] = "Count"  # published by the handover code alone
STATE_DIR = os.environ.get("NAT_STATE_DIR", "/var/lib/nat-instance")
HANDOVER_TABLE = "nat_handover"


def associate_address(aws: Aws, allocation: str, interface: str, private: str) -> None:
    aws.call("ec2", "AssociateAddress", {"AllocationId": allocation,
                                         "NetworkInterfaceId": interface,
                                         "PrivateIpAddress": private,
                                         "AllowReassociation": "true"})


def private_cidrs(aws: Aws, tables: Sequence[str]) -> list[str]:
    """The CIDRs of the subnets associated with route tables (an AZ's private ones)."""
    params = {f"RouteTableId.{i + 1}": table for i, table in enumerate(tables)}
    subnets = sorted({node.text for node in aws.call("ec2", "DescribeRouteTables", params)
                      .iter("subnetId") if node.text})
    if not subnets:
        return []
    root = aws.call("ec2", "DescribeSubnets", {f"SubnetId.{i + 1}": subnet
                                               for i, subnet in enumerate(subnets)})
    return sorted({node.text for node in root.iter("cidrBlock") if node.text})


def neighbours(order: Sequence[str], me: str) -> list[str]:
    """The AZs next to `me` in the ring of `order`: conntrackd syncs with one peer per
    daemon, and a NAT needs the states of the AZ before it (it takes that AZ over) and gives
    its own to the one after it."""
    at = list(order).index(me)
    return sorted({order[at - 1], order[(at + 1) % len(order)]} - {me})


def sync_port(order: Sequence[str], one: str, other: str) -> int:
    """The same port on both ends of a link of the ring, a different one per link."""
    a, b = sorted((list(order).index(one), list(order).index(other)))
    return SYNC_PORT + (b if (a, b) == (0, len(order) - 1) and len(order) > 2 else a)


def conntrackd_config(local: str, peer: str, port: int, interface: str, name: str) -> str:
    """FTFW (acknowledged, resent) over unicast UDP; the peer's states kept in an external
    cache until a takeover commits them to the kernel."""
    return "\n".join([
        'Sync {',
        '  Mode FTFW {',
        '    DisableExternalCache off',
        '  }',
        '  UDP {',
        f'    IPv4_address {local}',
        f'    IPv4_Destination_Address {peer}',
        f'    Port {port}',
        f'    Interface {interface}',
        '    SndSocketBuffer 1249280',
        '    RcvSocketBuffer 1249280',
        '    Checksum on',
        '  }',
        '}',
        'General {',
        '  HashSize 32768',
        '  HashLimit 524288',
        f'  LogFile {STATE_DIR}/{name}.log',
        '  Syslog off',
        f'  LockFile {STATE_DIR}/{name}.lock',
        '  UNIX {',
        f'    Path {STATE_DIR}/{name}.ctl',
        '  }',
        '  NetlinkBufferSize 2097152',
        '  NetlinkBufferSizeMaxGrowth 8388608',
        '  NetlinkOverrunResync on',
        '  NetlinkEventsReliable off',
        '  Filter From Userspace {',
        '    Protocol Accept {',
        '      TCP',
        '      UDP',
        '    }',
        '    Address Ignore {',
        '      IPv4_address 127.0.0.1',
        '    }',
        '  }',
        '}',
        '',
    ])


def handover_rules(interface: str, home: str, standby: str, private: Sequence[str]) -> str:
    """nftables: the AZ before this NAT in the ring leaves from its home address, rewritten
    to the standby address that carries its Elastic IP here (and back on the way in, before
    connection tracking sees it)."""
    sources = ", ".join(private)
    return "\n".join([
        f'table ip {HANDOVER_TABLE}',
        f'delete table ip {HANDOVER_TABLE}',
        f'table ip {HANDOVER_TABLE} {{',
        '  chain translate { type nat hook postrouting priority srcnat - 10; policy accept;',
        f'    oifname "{interface}" ip saddr {{ {sources} }} snat to {home}',
        '  }',
        '  chain outbound { type filter hook postrouting priority srcnat + 10; policy accept;',
        f'    oifname "{interface}" ip saddr {home} ip saddr set {standby}',
        '  }',
        '  chain inbound { type filter hook prerouting priority raw; policy accept;',
        f'    iifname "{interface}" ip daddr {standby} ip daddr set {home}',
        '  }',
        '}',
        '',
    ])


def carried_flows(listing: str, sources: Sequence[str], home: str
                  ) -> list[tuple[str, int, str, int]]:
    """TCP flows of `conntrack -L` from the AZ's private CIDRs translated to its home
    address: (private address, port, remote address, port)."""
    networks = [ipaddress.ip_network(cidr) for cidr in sources]
    flows = []
    for line in listing.splitlines():
        words = line.split()
        if not words or words[0] != "tcp":
            continue
        values: dict[str, list[str]] = {}
        for word in words:
            key, _, value = word.partition("=")
            values.setdefault(key, []).append(value)
        try:
            source, remote, replied_to = values["src"][0], values["dst"][0], values["dst"][1]
            if replied_to == home and any(ipaddress.ip_address(source) in n for n in networks):
                flows.append((source, int(values["sport"][0]), remote,
                              int(values["dport"][0])))
        except (KeyError, IndexError, ValueError):
            continue
    return flows


def tcp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def bare_ack(source: str, sport: int, destination: str, dport: int) -> bytes:
    """An IPv4 packet: a TCP ACK outside any window (the far end answers it with an ACK of
    its own, RFC 793/5961), as if from the private host."""
    import struct
    header = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x10, 0, 0, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(source), socket.inet_aton(destination),
                         0, socket.IPPROTO_TCP, len(header))
    header = header[:16] + struct.pack("!H", tcp_checksum(pseudo + header)) + header[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(header), 0, 0x4000, 64,
                     socket.IPPROTO_TCP, 0, socket.inet_aton(source),
                     socket.inet_aton(destination))
    return ip + header


def packets_received(statistics: str) -> int | None:
    """conntrackd -s: the packets its sync link received (the peer's daemon sends one every
    second even when it has nothing to say), None when it does not say."""
    for line in statistics.splitlines():
        words = line.split()
        if words[-2:] == ["Pckts", "recv"] and words[-3].isdigit():
            return int(words[-3])
    return None


CHANNEL_CHECK = 30.0  # seconds between looks at what each sync link received


class Handover:
    """conntrackd per neighbour, the address rules, and the moves of Elastic IPs."""

    def __init__(self, settings: Settings, me: str, aws: Aws, interface: str) -> None:
        self.settings, self.me, self.aws, self.interface = settings, me, aws, interface
        order = settings.order
        self.before = order[order.index(me) - 1]  # the AZ this NAT keeps a standby for
        self.daemons = {peer: os.path.join(STATE_DIR, f"conntrackd-{peer}.conf")
                        for peer in neighbours(order, me)}
        self.processes: list[subprocess.Popen] = []  # type: ignore[type-arg]
        self.lent_to = ""  # the AZ the spare address was lent to
        self.private: dict[str, list[str]] = {}  # AZ → its private CIDRs (the one before)
        self.rules, self.rules_on = "", False
        self.errors, self.published = 0, 0.0  # conntrackd and address failures, unsent
        self.received: dict[str, int] = {}  # peer → packets its sync link had received
        self.channel_down: set[str] = set()
        self.checked = time.monotonic()

    def nat(self, zone: str) -> dict[str, str]:
        return self.settings.nats[zone]

    def start(self) -> None:
        os.makedirs(STATE_DIR, exist_ok=True)
        if shutil.which("conntrackd") is None:  # Amazon Linux: not in the AMI
            run("dnf", "-y", "-q", "install", "conntrack-tools", check=False)
        mine = self.nat(self.me)
        for peer, path in self.daemons.items():
            with open(path, "w") as handle:
                handle.write(conntrackd_config(
                    mine["address"], self.nat(peer)["address"],
                    sync_port(self.settings.order, self.me, peer), self.interface,
                    f"conntrackd-{peer}"))
            run("conntrackd", "-C", path, "-k", check=False)  # one left by an earlier agent
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(STATE_DIR, f"conntrackd-{peer}.lock"))
            self.processes.append(subprocess.Popen(
                ["conntrackd", "-C", path], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # what the peers hold now (a daemon started anew has nothing of theirs)
        threading.Thread(target=self.resync, daemon=True).start()
        before = self.nat(self.before)
        private = before.get("private", "").split() or private_cidrs(
            self.aws, [table for table, zone in self.settings.route_tables.items()
                       if zone == self.before])
        self.private[self.before] = private
        self.private[self.me] = self.nat(self.me).get("private", "").split() or private_cidrs(
            self.aws, [table for table, zone in self.settings.route_tables.items()
                       if zone == self.me])
        if self.before != self.me and mine.get("standby") and private:
            self.rules = handover_rules(self.interface, before["address"], mine["standby"],
                                        private)
            run("nft", "-f", "-", check=True, stdin=self.rules)
            self.rules_on = True
        log(f"handover: conntrackd with {', '.join(self.daemons) or 'no one'}; standby "
            f"{mine.get('standby') or 'none'} for {self.before}")

    def resync(self) -> None:
        time.sleep(2)
        for path in self.daemons.values():
            run("conntrackd", "-C", path, "-n", check=False)

    def commit(self, holder: str | None, planned: bool) -> None:
        """The connections of the NAT an AZ leaves, into this kernel, before its traffic
        comes here: a packet that came first would be translated anew."""
        path = self.daemons.get(holder or "")
        if path is None:
            return
        if planned:  # the holder is alive: ask it for everything, then take it
            run("conntrackd", "-C", path, "-n", check=False)
            time.sleep(0.5)
        result = run("conntrackd", "-C", path, "-c", check=False)
        log(f"handover: committed {holder}'s connections ({result.returncode})")
        self.errors += result.returncode != 0

    def carry(self, zone: str) -> bool:
        """The AZ's Elastic IP to this NAT: its primary address for its own AZ, the standby
        for the AZ before it; any other AZ leaves from this NAT's own address."""
        mine = self.nat(self.me)
        private = mine["address"] if zone == self.me else \
            mine.get("standby") if zone == self.before else None
        allocation = self.nat(zone).get("allocation")
        if not private or not allocation:
            return False
        associate_address(self.aws, allocation, mine["eni"], private)
        log(f"handover: {zone}'s Elastic IP → {private}")
        if zone == self.before and self.rules and not self.rules_on:
            run("nft", "-f", "-", check=True, stdin=self.rules)
            self.rules_on = True
        return True

    def fall_back(self, zone: str, error: AwsError) -> None:
        """The AZ's address could not move here: its new connections leave from this NAT's
        own address (the home rules off), its carried ones are lost."""
        self.errors += 1
        if zone == self.before:
            run("nft", "flush", "table", "ip", HANDOVER_TABLE, check=False)
            self.rules_on = False
        log(f"handover: FAILED to move {zone}'s Elastic IP here ({error}): its traffic "
            "leaves from this NAT's own address, its connections are reset")

    def nudge(self, zone: str) -> int:
        """Security groups track connections per interface: on this NAT's, an AZ's flow
        taken over is unknown, and what the internet side sends is dropped until the flow
        sends something out. For each TCP flow of the AZ this NAT now translates, one bare
        ACK leaves as the private host's (translated like its packets); the far end's
        answer then passes. Returns how many were sent."""
        sources = self.private.get(zone, [])
        if not sources:
            return 0
        listing = run("conntrack", "-L", "-p", "tcp", check=False).stdout
        flows = carried_flows(listing, sources, self.nat(zone)["address"])
        sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with contextlib.closing(sender):
            for source, sport, remote, dport in flows:
                with contextlib.suppress(OSError):
                    sender.sendto(bare_ack(source, sport, remote, dport), (remote, 0))
        return len(flows)

    def nudge_soon(self, zone: str, after: Sequence[float]) -> None:
        threading.Thread(target=self.nudges, args=(zone, after), daemon=True).start()

    def nudges(self, zone: str, after: Sequence[float]) -> None:
        for delay in after:
            time.sleep(delay)
            log(f"handover: {self.nudge(zone)} of {zone}'s connections announced on this "
                "interface")

    def lend_spare(self, zone: str) -> None:
        """The AZ's NAT is back (booting) while this NAT carries its address: the spare
        address lets it reach the internet and prove its data path before failback."""
        if not self.settings.spare or self.lent_to == zone:
            return
        nat = self.nat(zone)
        associate_address(self.aws, self.settings.spare, nat["eni"], nat["address"])
        self.lent_to = zone
        log(f"handover: spare Elastic IP lent to {zone}'s NAT")

    def take(self, agent: Agent, change: Change, carried: set[str]) -> bool:
        """Before a route comes here: the connections, then the address. False: the change
        is not this NAT's to make (the NAT that takes an AZ moves its connections: it pulls)."""
        owner = self.settings.route_tables[change.route_table]
        if change.target != self.me:
            return False
        if owner not in carried:
            holder = agent.routes.get(change.route_table)
            planned = holder is not None and agent.peers.reachable(holder)
            self.commit(holder, planned)
            try:
                moved = self.carry(owner)
            except AwsError as error:  # availability first: the AZ moves without its address
                moved = False
                self.fall_back(owner, error)
            if moved and planned:
                # the holder forwards on meanwhile; then the connections it opened since
                time.sleep(self.settings.address_settle)
                self.commit(holder, planned)
            if moved:  # now, and once the address move has surely reached the data path
                self.nudge_soon(owner, (0.5, self.settings.address_settle))
            carried.add(owner)
        return True

    def tend(self, agent: Agent) -> None:
        """Each step of the main loop: conntrackd running, the failures counted and sent to
        CloudWatch (ReplicationErrors, in minutes they happen), the spare address lent."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                peer, path = list(self.daemons.items())[index]
                log(f"handover: conntrackd for {peer} exited ({process.returncode}): started "
                    "again")
                self.errors += 1
                self.processes[index] = subprocess.Popen(
                    ["conntrackd", "-C", path], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if time.monotonic() - self.checked >= CHANNEL_CHECK:
            self.checked = time.monotonic()
            self.check_channels(agent)
        metrics = self.settings.metrics
        if self.errors and metrics is not None and time.monotonic() - self.published > 60:
            self.published = time.monotonic()
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            with contextlib.suppress(AwsError):  # counted again next minute
                self.aws.call("monitoring", "PutMetricData", put_metric_data_params(
                    metrics.namespace, {"NatGroup": metrics.group, "AvailabilityZone": self.me},
                    [{"MetricName": "ReplicationErrors", "Value": self.errors,
                      "Unit": "Count", "Timestamp": stamp}]))
                self.errors = 0
        self.lend_when_due(agent)

    def check_channels(self, agent: Agent) -> None:
        """A sync link that received nothing since the last look while its peer answers the
        status exchange is down (a security group rule gone, conntrackd stopped over there):
        said once, and counted as a replication error each time it is seen."""
        for peer, path in self.daemons.items():
            received = packets_received(run("conntrackd", "-C", path, "-s",
                                             check=False).stdout)
            before = self.received.get(peer)
            if received is None:
                continue
            self.received[peer] = received
            if before is None or not agent.peers.reachable(peer):
                continue
            if received == before:
                self.errors += 1
                if peer not in self.channel_down:
                    self.channel_down.add(peer)
                    log(f"handover: FAILED: nothing received from {peer}'s conntrackd in "
                        f"{CHANNEL_CHECK:.0f} s though its NAT answers: its connections would "
                        f"be reset if it failed. Fix: the NAT security group must admit UDP "
                        f"{SYNC_PORT}-{SYNC_PORT + SYNC_LINKS - 1} from itself; conntrackd "
                        f"must run on {peer}'s NAT")
            elif peer in self.channel_down:
                self.channel_down.discard(peer)
                log(f"handover: the sync link with {peer} works again")

    def lend_when_due(self, agent: Agent) -> None:
        """While this NAT carries the address of the AZ before it, that AZ's NAT, when it is
        back, borrows the spare address (it has none of its own until failback)."""
        zone = self.before
        if not any(agent.routes.get(table) == self.me
                   for table, owner in self.settings.route_tables.items() if owner == zone):
            self.lent_to = ""
        elif self.lent_to != zone and (agent.peers.reachable(zone) or
                                       agent.kernel_answers(zone)):
            self.lend_spare(zone)
# HANDOVER-END


# --- the agent -----------------------------------------------------------------------------------
class FailureLog:
    """A failed step is logged once: the same failure again is only counted, and said with
    the line that tells it has ended (a flaky API must not flood the journal)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.last = ""
        self.repeats = 0

    def failed(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        if text == self.last:
            self.repeats += 1
            return
        self._said_again()
        log(f"{self.what} failed, trying again: {text}")
        self.last = text

    def succeeded(self) -> None:
        if self.last:
            self._said_again()
            log(f"{self.what} works again")
            self.last = ""

    def _said_again(self) -> None:
        if self.repeats:
            log(f"{self.what}: the same failure {self.repeats} more time(s)")
        self.repeats = 0


class Agent:
    """Two threads: the prober judges this NAT's data path and talks to the peers every
    second and never waits on AWS; the main loop reads and moves routes, checks rollouts and
    asks for replacements (AWS calls, which may be slow or fail while the internet side is
    down), woken at once when any NAT's health changes."""

    def __init__(self, settings: Settings, aws: Aws, metadata: Metadata,
                 probe: ProbeNamespace, failovers: Tally | None = None) -> None:
        self.settings = settings
        self.failovers = failovers or Tally()
        self.aws = aws
        self.metadata = metadata
        self.probe = probe
        self.started = time.monotonic()
        self.instance = metadata.get("meta-data/instance-id") or ""
        interface, cidr = probe.primary()
        address = cidr.split("/")[0]
        mine = [zone for zone, nat in settings.nats.items() if nat["address"] == address]
        if not mine:
            raise SystemExit(f"nat-agent: my address {address} is none of the NATs' "
                             f"({settings.nats}): wrong agent.json")
        self.me = mine[0]
        self.eni_zone = {nat["eni"]: zone for zone, nat in settings.nats.items()}
        self.lock = threading.Lock()
        self.health = Health(settings.unhealthy_after)
        self.health_changed = threading.Event()
        self.retiring = False
        self.up_to_date: bool | None = None  # unknown until this NAT has asked its group
        self.pending_logged = False
        self.routes: dict[str, str | None] = {}
        self.routes_read = 0.0
        self.foreign: set[str] = set()  # route tables pointed elsewhere by hand (logged once)
        self.retiring_since = 0.0
        self.round_number = 0
        self.last_round = time.monotonic()
        self.gone: dict[str, tuple[float, bool]] = {}
        self.dead: dict[str, bool] = {}  # silent peers judged dead (prober's latest)
        self.seen_healthy_since: dict[str, float] = {}  # peer → since when seen healthy
        self.trouble_seen: dict[str, float] = {}  # peer → since when seen in trouble
        self.passed_at = 0.0  # when this NAT's last passing probe ended
        self.probe_soon = threading.Event()  # a peer fell into trouble: probe again now
        self.direct_ok = True
        self.asked_for_replacement = False
        self.peers = Peers(self.me, settings.nats, settings.unhealthy_after, self.status,
                           settings.status_port)
        self.peers.on_news = self.probe_soon.set  # a peer's new verdict: judge this NAT now
        self.handover = Handover(settings, self.me, aws, interface) \
            if settings.handover else None

    # --- what this NAT knows and tells ---------------------------------------------------------
    def _mine(self) -> tuple[str, bool, float, float]:
        """(state, last probe passed, ratio, since) of this NAT's data path."""
        with self.lock:
            return self.health.state, self.health.last_ok, self.health.ratio, self.health.since

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        state, last_ok, ratio, since = self._mine()
        healthy = state == HEALTHY and not self.retiring
        view = {zone: round(self._seen_healthy_for(zone, now), 1)
                for zone in self.settings.order}
        # "healthy", "up_to_date" and a view's truth are what agents of earlier releases read
        return {"zone": self.me, "instance": self.instance, "retiring": self.retiring,
                "healthy": healthy, "state": state, "last_ok": last_ok,
                "ratio": round(ratio, 3), "healthy_for": now - since if healthy else 0.0,
                "up_to_date": self.up_to_date, "release": self.settings.release, "view": view,
                "vouches": sorted(self.vouches())}

    def vouches(self) -> frozenset[str]:
        """The peers in trouble (a judged fault, or silence) this NAT has passed a probe
        since it saw them so."""
        with self.lock:
            return frozenset(zone for zone, since in self.trouble_seen.items()
                             if self.passed_at > since)

    def _seen_healthy_for(self, zone: str, now: float) -> float:
        if zone == self.me:
            state, _, _, since = self._mine()
            return now - since if state == HEALTHY and not self.retiring else 0.0
        seen = self.seen_healthy_since.get(zone)
        return 0.0 if seen is None else now - seen

    def _peer(self, zone: str) -> tuple[str, bool, float, bool]:
        """(state, last probe passed, ratio, retiring) as the peer last told them; an agent
        of an earlier release says healthy or not."""
        report = self.peers.report(zone)
        state = report.get("state") or (HEALTHY if report.get("healthy") else BROKEN)
        return (str(state), bool(report.get("last_ok", True)),
                float(report.get("ratio", 1.0)), bool(report.get("retiring")))

    def _healthy(self, zone: str) -> bool:
        """A NAT to send traffic to: healthy, its last probe passed, not stepping down."""
        if zone == self.me:
            state, last_ok, _, _ = self._mine()
            return state == HEALTHY and last_ok and not self.retiring
        state, last_ok, _, retiring = self._peer(zone)
        return self.peers.reachable(zone) and state == HEALTHY and last_ok and not retiring

    def _broken(self, zone: str) -> bool:
        if zone == self.me:
            return self._mine()[0] == BROKEN or self.retiring
        state, _, _, retiring = self._peer(zone)
        return self.peers.reachable(zone) and (state == BROKEN or retiring)

    def _ratio(self, zone: str) -> float:
        return self._mine()[2] if zone == self.me else self._peer(zone)[2]

    def _health_key(self) -> tuple[Any, ...]:
        return (*[(self._healthy(z), self._broken(z), self.dead.get(z, False))
                  for z in self.settings.order], self.vouches())

    def kernel_answers(self, zone: str) -> bool:
        """A TCP handshake, or its refusal, from the peer's kernel on the status port: the
        instance is up and its network works, whatever its agent does."""
        address = (self.settings.nats[zone]["address"], self.settings.status_port)
        try:
            with socket.create_connection(address, timeout=0.3):
                return True
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    def _observe_peers(self, now: float) -> None:
        for zone in self.settings.order:
            if zone == self.me:
                continue
            state, _, _, retiring = self._peer(zone)
            if self.peers.reachable(zone) and state == HEALTHY and not retiring:
                self.seen_healthy_since.setdefault(zone, now)
            else:
                self.seen_healthy_since.pop(zone, None)
            self._note_trouble(zone, now)
            if self.peers.reachable(zone):
                self.dead[zone] = False
                # AWS's word on a NAT not yet heard (its interface not yet attached, at
                # boot) is stale once it answers: a later silence asks AWS afresh
                self.gone.pop(zone, None)
                continue
            silent_for = now - self.peers.heard.get(zone, self.started)
            self.dead[zone] = silent_for >= self.settings.silence_limit or \
                not self.kernel_answers(zone)

    def _note_trouble(self, zone: str, now: float) -> None:
        """Trouble is a judged fault (broken, degraded, stepping down) or silence; one failed
        probe is not: a vouch must come from a probe made after the peer's verdict, or a NAT
        that the same fault reaches a moment later would vouch on a pass made before it."""
        state, _, _, retiring = self._peer(zone)
        in_trouble = not self.peers.reachable(zone) or retiring or state in (BROKEN, DEGRADED)
        with self.lock:
            if not in_trouble:
                self.trouble_seen.pop(zone, None)
            elif zone not in self.trouble_seen:
                self.trouble_seen[zone] = now
                self.probe_soon.set()  # its AZ may come here: judge this NAT afresh

    def read_routes(self) -> None:
        """Each route table's 0.0.0.0/0 target as a NAT's zone; None for a blackhole (its
        NAT's interface is detached). A table missing, without the route, or pointed
        elsewhere by hand (a NAT Gateway, say) is left out: not ours to move."""
        routes: dict[str, str | None] = {}
        for table, (target, state) in self.aws.route_targets(
                sorted(self.settings.route_tables)).items():
            if state == "blackhole":
                routes[table] = None
            elif target in self.eni_zone:
                routes[table] = self.eni_zone[target]
            elif table not in self.foreign:
                self.foreign.add(table)
                log(f"route table {table} points at {target}, not a NAT of this stack: "
                    "left alone")
        self.routes = routes
        self.routes_read = time.monotonic()

    def is_gone(self, zone: str) -> bool:
        """AWS's word on a NAT this one cannot reach (cached 10 s)."""
        checked_at, gone = self.gone.get(zone, (0.0, False))
        if time.monotonic() - checked_at < 10:
            return gone
        interface = self.settings.nats[zone]["eni"]
        instance = self.aws.interface_instance(interface)
        gone = instance is None or self.aws.instance_state(instance) in (
            "shutting-down", "terminated", "stopping", "stopped") or \
            self.aws.group_instance(instance).get("health") == "Unhealthy"
        self.gone[zone] = (time.monotonic(), gone)
        return gone

    def view(self) -> View:
        now = time.monotonic()
        order = self.settings.order
        reachable = {zone: zone == self.me or self.peers.reachable(zone) for zone in order}
        holders = {zone for zone in self.routes.values() if zone}
        gone = {zone: self.is_gone(zone) for zone in holders
                if zone != self.me and not reachable[zone]}
        seen: dict[str, float] = {}
        for zone in order:
            if zone == self.me:
                continue
            told = self.peers.report(zone).get("view", {}).get(self.me)
            # an agent of an earlier release says only whether it sees this NAT healthy
            seen[zone] = float("inf") if told is True else float(told or 0.0)
        return View(me=self.me, order=order,
                    healthy={zone: self._healthy(zone) for zone in order},
                    reachable=reachable,
                    sees_me={zone: bool(self.peers.report(zone).get("view", {}).get(self.me))
                             for zone in order if zone != self.me},
                    routes=dict(self.routes),
                    # only tables whose route was read: no knowledge, no move
                    owners={table: owner for table, owner in self.settings.route_tables.items()
                            if table in self.routes},
                    gone=gone, my_healthy_for=self._seen_healthy_for(self.me, now),
                    failback_after=float(self.settings.failback_after or 0),
                    broken={zone: self._broken(zone) for zone in order},
                    dead={zone: self.dead.get(zone, False) for zone in order},
                    ratio={zone: self._ratio(zone) for zone in order},
                    seen_healthy_for=seen, vouches=self._vouches_by_zone())

    def _vouches_by_zone(self) -> dict[str, frozenset[str]]:
        vouches = {self.me: self.vouches()}
        for zone in self.peers.addresses:
            said = self.peers.report(zone).get("vouches")
            if isinstance(said, list):  # an agent of an earlier release does not say
                vouches[zone] = frozenset(str(z) for z in said)
        return vouches

    def apply(self, changes: list[Change]) -> None:
        carried: set[str] = set()
        for change in changes:
            if self.handover is not None and not self.handover.take(self, change, carried):
                continue
            interface = self.settings.nats[change.target]["eni"]
            self.aws.replace_route(change.route_table, interface)
            self.failovers.add()
            log(f"route table {change.route_table} → the NAT in {change.target} "
                f"({interface}): {change.reason}")
        if changes:
            self.read_routes()

    def check_rollout(self) -> None:
        """Pulumi tags the group with the release its launch template carries; an instance
        whose release differs was launched from an older template."""
        mine = self.aws.group_instance(self.instance)
        if not mine.get("group"):
            return
        wanted = self.aws.group_tag(mine["group"], RELEASE_TAG)
        self.up_to_date = not wanted or wanted == self.settings.release
        reports = {zone: self.peers.report(zone) for zone in self.settings.order
                   if zone != self.me}
        up_to_date = peers_up_to_date(wanted, reports)
        up_to_date[self.me] = self.up_to_date is not False
        healthy = {zone: self._healthy(zone) for zone in self.settings.order}
        if not self.retiring and rollout_due(self.me, self.settings.order, up_to_date, healthy):
            log(f"release {wanted} replaces {self.settings.release}: handing this AZ over, "
                "then asking for a new instance")
            self.retiring = True
            self.retiring_since = time.monotonic()
            self.health_changed.set()
        elif not self.up_to_date and not self.retiring and not self.pending_logged:
            log(f"release {wanted} pending: waiting for the other NATs to be healthy and the "
                "AZs before this one to be updated")
            self.pending_logged = True

    # --- the prober: every second, no AWS calls ------------------------------------------------
    def probe_round(self, now: float, targets: Sequence[tuple[str, int]]) -> None:
        """Ask the peers, test the data path while they answer, count who answered."""
        stalled = now - self.last_round
        self.last_round = now
        if stalled > self.settings.stall_after:
            with self.lock:
                self.health.restart(now)
            self.seen_healthy_since.clear()
            log(f"no probe for {stalled:.0f} s (the agent was stopped): judging the data path "
                "afresh")
        before = self._health_key()
        for zone in self.settings.order:  # what the peers have said (or pushed) so far
            if zone != self.me:
                self._note_trouble(zone, now)
        self.peers.ask()
        self.round_number += 1
        if not self.probe.alive():
            log("the probe helper is gone: starting it again")
            self.probe.setup()
        # two targets a round, starting from a different one each time: one endpoint down
        # does not make the NAT unhealthy
        rotated = [targets[(self.round_number + i) % len(targets)]
                   for i in range(min(2, len(targets)))] if targets else []
        ok = self.probe.reach(rotated, timeout=min(0.4, self.settings.probe_interval / 3))
        vouched = self.vouches()
        with self.lock:
            if ok:
                self.passed_at = time.monotonic()
            changed = self.health.update(ok, now)
            state, ratio = self.health.state, self.health.ratio
        if changed:
            log(f"data path {'works' if state == HEALTHY else state} ({ratio:.0%} of the last "
                f"{len(self.health.results)} probes passed)")
            self.peers.tell(self.status())  # the peers act on it now, not at their next ask
        if changed or self.vouches() != vouched:
            self.health_changed.set()  # decide now, on the reports in hand
        if state == BROKEN:
            self.direct_ok = any(connect(host, port, 0.4) for host, port in rotated)
        time.sleep(max(0.0, min(0.5, self.settings.probe_interval / 2) -
                       (time.monotonic() - now)))
        self.peers.collect()
        self._observe_peers(time.monotonic())
        if self._health_key() != before:
            self.health_changed.set()

    # --- the main loop: routes, rollout, replacement (AWS) -------------------------------------
    def act(self, now: float) -> None:
        if self.health_changed.is_set():
            self.health_changed.clear()
            self.routes_read = 0.0  # health changed: act on fresh routes
        if now - self.routes_read >= self.settings.route_refresh:
            self.read_routes()
        self.apply(decide(self.view()))
        if self.handover is not None:
            self.handover.tend(self)
        if self.retiring:
            # handed over: every route this NAT owns read back, pointing at another NAT, and
            # none pointing here (an unread or missing route is not handed over)
            mine = [t for t, owner in self.settings.route_tables.items() if owner == self.me]
            handed_over = all(self.routes.get(t) not in (None, self.me) for t in mine) and \
                self.me not in self.routes.values()
            if handed_over or now - self.retiring_since > 30:
                self.replace("rolling out a new launch template" + (
                    ": routes handed over" if handed_over else ": routes not handed over in "
                    "30 s, the other NATs will take them when this one is gone"))
            return
        with self.lock:
            broken_for = self.health.lasted(now) if self.health.state == BROKEN else None
            ever_healthy = self.health.ever_healthy
        if broken_for is not None and not self.asked_for_replacement:
            peer_ok = any(self._healthy(zone) for zone in self.settings.order if zone != self.me)
            if replacement_due(broken_for, ever_healthy, now - self.started, peer_ok,
                               self.direct_ok, self.settings):
                self.replace("data path broken")

    def replace(self, why: str) -> None:
        if self.asked_for_replacement or not self.instance:
            return
        log(f"asking the Auto Scaling group for a new instance: {why}")
        self.aws.set_unhealthy(self.instance)
        self.asked_for_replacement = True

    def _probe_forever(self, targets: list[tuple[str, int]]) -> None:
        inside = [ipaddress.IPv4Network(c) for c in self._vpc_cidrs()]
        resolved_at = time.monotonic()
        failures = FailureLog("probing")
        while True:
            now = time.monotonic()
            self.probe_soon.clear()
            try:
                if now - resolved_at > 300 or not targets:
                    targets = resolve(self.settings.targets, inside) or targets
                    resolved_at = now
                self.probe_round(now, targets)
                failures.succeeded()
            except Exception as error:  # never an exit: the next round tries
                failures.failed(error)
            self.probe_soon.wait(max(0.0, self.settings.probe_interval -
                                     (time.monotonic() - now)))

    def run(self) -> None:
        inside = [ipaddress.IPv4Network(c) for c in self._vpc_cidrs()]
        targets = resolve(self.settings.targets, inside)
        log(f"in {self.me}, probing {targets} from the probe namespace")
        if self.handover is not None:
            self.handover.start()
        threading.Thread(target=self._probe_forever, args=(targets,), daemon=True).start()
        rollout_at = 0.0
        failures = FailureLog("a step (routes, rollout)")
        while True:
            now = time.monotonic()
            try:
                self.act(now)
                if now - rollout_at >= self.settings.rollout_check:
                    rollout_at = now
                    self.check_rollout()
                failures.succeeded()
            except Exception as error:  # never an exit: the next step tries
                failures.failed(error)
            # the next step in a second, or at once when some NAT's health changes
            self.health_changed.wait(max(0.0, self.settings.probe_interval -
                                         (time.monotonic() - now)))

    def _vpc_cidrs(self) -> list[str]:
        try:
            with open("/etc/nat-instance/nat.env") as handle:
                for line in handle:
                    if line.startswith("NAT_VPC_CIDRS="):
                        return line.split("=", 1)[1].strip().strip('"').split()
        except OSError:
            pass
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nat-agent")
    parser.add_argument("command", choices=["run", "probe-helper"])
    args = parser.parse_args(argv)
    if args.command == "probe-helper":
        return probe_helper()
    try:
        settings = Settings.load()
    except (OSError, ValueError, TypeError) as error:
        log(f"FAILED: cannot read {CONFIG_PATH}: {error}")
        return 1
    metadata = Metadata()
    credentials = Credentials(metadata)
    failovers = Tally()
    if settings.metrics is not None:
        threading.Thread(target=publish_metrics, daemon=True,
                         args=(settings, metadata, credentials, failovers)).start()
    if not settings.high_availability:
        threading.Event().wait()  # metrics only: the thread does the work
        return 0
    probe = ProbeNamespace()
    source = probe.setup()
    log(f"probe namespace up: the data-path test comes from {source}")
    try:
        Agent(settings, Aws(settings.region, credentials), metadata, probe, failovers).run()
    finally:
        probe.teardown()
    return 0


def publish_metrics(settings: Settings, metadata: Metadata, credentials: Credentials,
                    failovers: Tally) -> None:
    """The metrics thread: its own AWS client, so it never holds up the failover loop."""
    assert settings.metrics is not None
    while True:  # the AZ names the data points: wait for the metadata service if need be
        try:
            zone = metadata.get("meta-data/placement/availability-zone")
            interface, _ = ProbeNamespace.primary()
            if zone:
                break
        except (OSError, urllib.error.URLError, ValueError, subprocess.SubprocessError) as error:
            log(f"metrics: waiting for the instance's AZ and interface: {error}")
        time.sleep(5)
    aws = Aws(settings.region, credentials)
    Collector(settings.metrics, zone, Counters(interface).read,
              lambda params: aws.call("monitoring", "PutMetricData", params), failovers).run()


if __name__ == "__main__":
    sys.exit(main())
