"""Public addresses: what an instance type's interface holds, and the Elastic IP quota.

Pure: no Pulumi, no AWS.
"""

from __future__ import annotations

# Elastic IPs an account may hold per Region unless raised (Service Quotas "EC2-VPC Elastic
# IPs", L-0263D0A3)
EIP_DEFAULT_QUOTA = 5
EIP_QUOTA_CODE = "L-0263D0A3"


def address_limit_problem(count: int, instance_type: str, limit: int) -> tuple[str, str] | None:
    """(why, fix) when a NAT's interface cannot hold `count` addresses (its primary one and
    count - 1 secondary ones, each with an Elastic IP)."""
    if count <= limit:
        return None
    return (f"a {instance_type}'s network interface holds {limit} IPv4 address"
            f"{'es' if limit > 1 else ''} (AWS: maximumIpv4AddressesPerInterface)",
            f"give at most {limit}, or an instance type whose interface holds {count} "
            "(t4g.small and c7gn.medium: 4, t4g.medium: 6, c7gn.large: 10)")


def quota_warning(needed: int, others: int, region: str) -> str | None:
    """What to say before deploying when the stack's Elastic IPs (`needed`, the ones it holds
    already included) and the account's `others` in the Region pass the default quota."""
    if needed + others <= EIP_DEFAULT_QUOTA:
        return None
    return (f"this stack needs {needed} Elastic IPs and the account holds {others} others in "
            f"{region}: {needed + others} in all, past AWS's default quota of "
            f"{EIP_DEFAULT_QUOTA} per Region. Unless the account's quota was raised, `pulumi "
            "up` stops with AddressLimitExceeded when it allocates them. Fix: request more in "
            f"Service Quotas (EC2-VPC Elastic IPs, {EIP_QUOTA_CODE}) first, or fewer "
            "publicAddressesPerNat")
