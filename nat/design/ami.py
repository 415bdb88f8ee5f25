"""Which AMI a NAT boots: a pinned id, or AWS's latest Amazon Linux 2023 for the architecture."""

from __future__ import annotations

AL2023_PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"


def al2023_ssm_parameter(architecture: str) -> str:
    """AWS's public SSM parameter holding the latest AL2023 AMI id for `arm64` or `x86_64`."""
    if architecture not in ("arm64", "x86_64"):
        raise ValueError(f"unknown architecture {architecture!r}: expected arm64 or x86_64")
    return AL2023_PARAMETER_PREFIX + architecture
