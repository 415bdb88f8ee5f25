"""Kernel tuning knobs of the NAT bootstrap script that stack config may override.

The script computes the defaults from the instance's memory when run on its own (bake-ami, by
hand); the components write the table size they computed by the same rule from the instance
type (nat.design.monitoring.conntrack_max, tested equal to the script's), so the alarm and
the kernel agree. The knobs, their bounds and their names on the instance are the table's
(nat/inputs/options.py); this module writes the overrides given (as `NAME=value` lines of
/etc/nat-instance/tuning.env, written by user data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nat.inputs.options import OPTIONS, Option

# the knobs: the table's options that the bootstrap script reads from tuning.env
TUNING_OPTIONS: tuple[Option, ...] = tuple(entry for entry in OPTIONS if entry.environment)


@dataclass(frozen=True)
class TuningOverrides:
    """Overrides by field name (max_entries…); what is not here the script computes."""

    values: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[str, int]) -> TuningOverrides:
        return cls(dict(sorted(values.items())))

    def environment_lines(self) -> list[str]:
        by_name = {entry.field: entry.environment for entry in TUNING_OPTIONS}
        return [f"{by_name[name]}={value}" for name, value in self.values.items()]
