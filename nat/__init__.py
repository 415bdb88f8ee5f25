"""nat-instance-vpc: private subnets reach the internet through EC2 NAT instances.

The components, importable from Python programs:

    from nat import NatInstances, NatInstanceVpc, NatInstancesArgs, HighAvailabilityArgs

The package is typed (py.typed): mypy and pyright check the args' keys.
`nat.testing.NatMocks` answers the lookups the components make, for a program's unit tests.

They load on first use, so the pure modules (config, rules, settings…) stay quick to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
PACKAGE_NAME = "nat"  # the Pulumi package: type tokens are nat:index:<Component>

if TYPE_CHECKING:
    from nat.components.nat_instances import NatInstances
    from nat.components.vpc import NatInstanceVpc
    from nat.inputs.args import (
        AccessArgs,
        ConntrackArgs,
        HighAvailabilityArgs,
        InstanceArgs,
        MonitoringArgs,
        NatInstancesArgs,
        NatInstanceVpcArgs,
    )

_EXPORTS = {
    "NatInstances": "nat.components.nat_instances", "NatInstanceVpc": "nat.components.vpc",
    **dict.fromkeys(("NatInstancesArgs", "NatInstanceVpcArgs", "InstanceArgs", "AccessArgs",
                     "ConntrackArgs", "HighAvailabilityArgs", "MonitoringArgs"),
                    "nat.inputs.args"),
}
__all__ = ["AccessArgs", "ConntrackArgs", "HighAvailabilityArgs", "InstanceArgs",
           "MonitoringArgs", "NatInstanceVpc", "NatInstanceVpcArgs", "NatInstances",
           "NatInstancesArgs"]

if not TYPE_CHECKING:  # type checkers see the imports above: a wrong name is an error there
    def __getattr__(name: str) -> Any:
        if name not in _EXPORTS:
            raise AttributeError(f"module 'nat' has no attribute {name!r}")
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
