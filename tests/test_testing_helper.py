"""nat.testing, the mocks the package ships for its users' unit tests: used as the README
shows (Pulumi's own API, none of the project's helpers), and what a user without it is told."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from nat import NatInstances
from nat.testing import NatMocks


@pytest.fixture(autouse=True)
def fresh_loop() -> Iterator[None]:
    """Each test its own event loop and root stack, as Pulumi's mocks need."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.settings.ROOT.set(None)
    yield
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()


def nat_for_a_plain_vpc(zones: list[str]) -> NatInstances:
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    public, tables = {}, {}
    for index, zone in enumerate(zones):
        public[zone] = aws.ec2.Subnet(f"public-{zone}", vpc_id=vpc.id, availability_zone=zone,
                                      cidr_block=f"10.0.{index}.0/24").id
        tables[zone] = [aws.ec2.RouteTable(f"private-{zone}", vpc_id=vpc.id).id]
    return NatInstances("edge", {"vpc_id": vpc.id, "vpc_cidr_blocks": ["10.0.0.0/16"],
                                 "availability_zones": zones, "public_subnet_ids": public,
                                 "private_route_table_ids": tables,
                                 "instance": {"instance_type": "c7gn.large"}})


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])
def test_a_users_program_runs_under_nat_mocks(region: str) -> None:
    zones = [f"{region}a", f"{region}b"]
    pulumi.runtime.set_mocks(NatMocks(region), preview=False)
    seen: list[Any] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def check() -> pulumi.Output[Any]:
        nat = nat_for_a_plain_vpc(zones)
        return pulumi.Output.all(nat.nat_public_ips, nat.connection_table_sizes).apply(
            seen.extend)
    check()
    ips, table_sizes = seen  # the apply ran: the test waited for it
    assert sorted(ips) == zones
    # a large has 8 GiB in the mocks: 256 entries per MiB, capped at 2,097,152
    assert table_sizes == dict.fromkeys(zones, 2097152)


class StandardMocks(pulumi.runtime.Mocks):
    """What Pulumi's docs show: every lookup answered with nothing."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        return {}


def test_standard_mocks_get_a_message_naming_the_lookup_and_its_field() -> None:
    pulumi.runtime.set_mocks(StandardMocks(), preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def check() -> None:
        NatInstances("edge", {"vpc_id": "vpc-0123456789abcdef0",
                              "vpc_cidr_blocks": ["10.0.0.0/16"],
                              "availability_zones": ["us-east-1a"],
                              "public_subnet_ids": {"us-east-1a": "subnet-0123456789abcdef0"},
                              "private_route_table_ids": {"us-east-1a": ["rtb-0123456789abcdef0"]}})
    with pytest.raises(pulumi.RunError) as raised:
        check()
    assert str(raised.value) == (
        "aws.ec2.getSubnet answered without vpcId for subnet-0123456789abcdef0: a test's mocks "
        "must answer it (nat.testing.NatMocks answers every lookup the components make)")


def test_the_instance_type_lookup_names_memory_size() -> None:
    class NoInstanceTypes(NatMocks):
        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
            if args.token == "aws:ec2/getInstanceType:getInstanceType":
                return {}
            return super().call(args)
    pulumi.runtime.set_mocks(NoInstanceTypes("us-east-1"), preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def check() -> None:
        nat_for_a_plain_vpc(["us-east-1a"])
    with pytest.raises(pulumi.RunError, match=r"^aws\.ec2\.getInstanceType answered without "
                                              r"memorySize for c7gn\.large: a test's mocks"):
        check()


def test_nat_mocks_name_an_id_they_never_saw() -> None:
    with pytest.raises(KeyError, match=r"NatMocks knows no subnet-0123456789abcdef0: make it "
                                       r"under these mocks, or add it to NatMocks\.subnets"):
        NatMocks().call(pulumi.runtime.MockCallArgs(
            "aws:ec2/getSubnet:getSubnet", {"id": "subnet-0123456789abcdef0"}, ""))
