"""Kernel tuning knobs of the NAT bootstrap script that stack config may override.

The script computes the defaults from the instance's memory when run on its own (bake-ami, by
hand); the components write the table size they computed by the same rule from the instance
type (nat.monitoring.conntrack_max, tested equal to the script's), so the alarm and the kernel
agree. This module names the knobs, their bounds and how they reach the instance (as
`NAME=value` lines of /etc/nat-instance/tuning.env, written by user data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TuningKey:
    field: str  # in the components' `instance.conntrack` argument
    config_name: str
    environment_name: str
    minimum: int
    maximum: int
    description: str


TUNING_KEYS: tuple[TuningKey, ...] = (
    TuningKey("max_entries", "conntrackMax", "NAT_CONNTRACK_MAX", 4096, 4194304,
              "Connection-tracking table size (net.netfilter.nf_conntrack_max). Default: 256 "
              "entries per MiB of the instance type's memory, 65,536 to 2,097,152 (131,072 on "
              "a t4g.nano), the bootstrap script's rule; the tracking-table alarm follows it."),
    TuningKey("tcp_established_timeout", "conntrackTcpEstablishedTimeout",
              "NAT_TCP_ESTABLISHED_TIMEOUT", 300, 432000,
              "Seconds an idle established TCP flow stays tracked. Default 7440 (RFC 5382's "
              "2 h 4 min minimum) instead of the kernel's 5 days."),
    TuningKey("tcp_time_wait_timeout", "conntrackTcpTimeWaitTimeout",
              "NAT_TCP_TIME_WAIT_TIMEOUT", 1, 120,
              "Seconds a closed TCP flow stays tracked in TIME_WAIT. Default 30 instead of 120, "
              "so connection churn does not fill the table."),
)


@dataclass(frozen=True)
class TuningOverrides:
    """Overrides by field name (max_entries…); what is not here the script computes."""

    values: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[str, int]) -> TuningOverrides:
        return cls(dict(sorted(values.items())))

    def environment_lines(self) -> list[str]:
        by_name = {key.field: key for key in TUNING_KEYS}
        return [f"{by_name[name].environment_name}={value}" for name, value in self.values.items()]
