"""Several public addresses per NAT (instance.publicAddresses) in the resource graph, under
Pulumi's mocks: the interface's secondary IPs, one Elastic IP and association per address,
what the NAT is told, the outputs, the refusals, and what `plan` says."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from nat import NatInstances
from nat.design.userdata import decode_user_data, parse_user_data
from natctl.offline import Graph, ProgramError, Resource, run_under_mocks
from natctl.plan import plan_stack
from tests.test_nat_instances import EXISTING, existing_vpc_mocks
from tests.test_plan import stack_dir

INSTANCE, ENI = "aws:ec2/instance:Instance", "aws:ec2/networkInterface:NetworkInterface"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EIP, ASSOCIATION = "aws:ec2/eip:Eip", "aws:ec2/eipAssociation:EipAssociation"
A, B = "us-east-1a", "us-east-1b"


def tuning(user_data_base64: str) -> tuple[str, ...]:
    return parse_user_data(decode_user_data(user_data_base64)).tuning


def associations_of(graph: Graph, interface: Resource) -> list[Resource]:
    return sorted((a for a in graph.of_type(ASSOCIATION)
                   if a.inputs.get("networkInterfaceId") == interface.id),
                  key=lambda a: a.name)


def check_addresses(graph: Graph, zone: str, count: int) -> Resource:
    """The zone's interface holds `count` addresses, each with its own Elastic IP."""
    [interface] = [e for e in graph.of_type(ENI) if e.name.endswith(zone)]
    assert interface.inputs["privateIpsCount"] == count - 1
    secondary = sorted((ip for ip in interface.inputs["privateIps"]
                        if ip != interface.inputs["privateIp"]), key=ipaddress.IPv4Address)
    linked = associations_of(graph, interface)
    assert len(linked) == count
    # the first on the primary address (as with one address), the others one each
    assert "privateIpAddress" not in linked[0].inputs
    assert [a.inputs["privateIpAddress"] for a in linked[1:]] == secondary
    eips = {e.id: e for e in graph.of_type(EIP)}
    assert len({a.inputs["allocationId"] for a in linked}) == count
    assert all(a.inputs["allocationId"] in eips for a in linked)
    public = graph.exports["nat_public_ip_lists"][zone]
    assert public == [eips[a.inputs["allocationId"]].inputs["publicIp"] for a in linked]
    assert public[0] == graph.exports["nat_public_ips"][zone] and len(set(public)) == count
    return interface


def test_plain_nats_boot_on_an_interface_with_every_address(run: Any) -> None:
    graph = run(azCount=2, natInstanceType="t4g.small", publicAddressesPerNat=4)
    for zone in (A, B):
        interface = check_addresses(graph, zone, 4)
        [nat] = [n for n in graph.of_type(INSTANCE) if n.name.endswith(zone)]
        assert nat.inputs["primaryNetworkInterface"] == {"networkInterfaceId": interface.id}
        assert "subnetId" not in nat.inputs and "associatePublicIpAddress" not in nat.inputs
        assert interface.inputs["sourceDestCheck"] is False
        # it boots with its addresses in place: the script waits for all of them
        assert {a.urn for a in associations_of(graph, interface)} <= set(nat.dependencies)
        assert "NAT_PUBLIC_ADDRESSES=4" in tuning(nat.inputs["userDataBase64"])
    assert graph.exports["nat_network_interface_ids"][A] == \
        next(e.id for e in graph.of_type(ENI) if e.name.endswith(A))


def test_with_high_availability_the_interface_keeps_every_address(run: Any) -> None:
    graph = run(stack="ha", azCount=2, highAvailability=True, natInstanceType="t4g.micro",
                publicAddressesPerNat=2)
    for zone in (A, B):
        check_addresses(graph, zone, 2)
    for template in graph.of_type(TEMPLATE):
        assert "NAT_PUBLIC_ADDRESSES=2" in tuning(template.inputs["userData"])


def test_one_address_changes_nothing(run: Any) -> None:
    graph = run(azCount=1)
    [nat] = graph.of_type(INSTANCE)
    assert "subnetId" in nat.inputs and "primaryNetworkInterface" not in nat.inputs
    assert not graph.of_type(ENI) and len(graph.of_type(EIP)) == 1
    assert not any(line.startswith("NAT_PUBLIC_ADDRESSES")
                   for line in tuning(nat.inputs["userDataBase64"]))
    assert graph.exports["nat_public_ip_lists"] == {
        A: [graph.exports["nat_public_ips"][A]]}


@pytest.mark.parametrize(("keys", "expected"), [
    ({"publicAddressesPerNat": 0}, "publicAddressesPerNat = 0: out of range 1..50"),
    ({"publicAddressesPerNat": 51}, "publicAddressesPerNat = 51: out of range 1..50"),
    ({"publicAddressesPerNat": 2, "useElasticIp": False},
     "each public address is an Elastic IP"),
    # t4g.nano: 2 addresses per interface
    ({"publicAddressesPerNat": 3},
     "nat-instance-vpc:publicAddressesPerNat = 3: a t4g.nano's network interface holds 2 "
     "IPv4 addresses "
     "(AWS: maximumIpv4AddressesPerInterface). Fix: give at most 2, or an instance type whose "
     "interface holds 3"),
    ({"publicAddressesPerNat": 11, "natInstanceType": "c7gn.large"},
     "a c7gn.large's network interface holds 10 IPv4 addresses"),
])
def test_impossible_counts_stop_before_any_resource(run: Any, keys: dict[str, Any],
                                                    expected: str) -> None:
    with pytest.raises(ProgramError) as raised:
        run(azCount=2, **keys)
    assert expected in str(raised.value)
    assert raised.value.registered == 0


def test_nat_instances_refuses_too_many_for_the_type_before_any_resource() -> None:
    def body() -> None:
        args: Any = {**EXISTING, "instance": {"instance_type": "t4g.nano",
                                              "public_addresses": 4}}
        NatInstances("edge", args)
    with pytest.raises(ProgramError) as raised:
        run_under_mocks(body, {"aws:region": "us-east-1"}, stack="byo",
                        mocks=existing_vpc_mocks())
    assert str(raised.value).startswith('invalid arguments for NatInstances "edge"')
    assert "instance.public_addresses = 4: a t4g.nano's network interface holds 2" in \
        str(raised.value)
    assert raised.value.registered == 0


def test_the_plan_prices_every_address_and_counts_them_against_the_quota(
        tmp_path: Any) -> None:
    project = stack_dir(tmp_path, "busy", {"aws:region": "us-east-1",
                                           "nat-instance-vpc:azCount": 2,
                                           "nat-instance-vpc:natInstanceType": "t4g.small",
                                           "nat-instance-vpc:publicAddressesPerNat": 3})
    planned = plan_stack("busy", 100, project)
    cost = planned["cost"]
    [line] = [x for x in cost["nat_instances"] if x["item"].startswith("public IPv4")]
    assert line["item"] == "public IPv4 addresses (Elastic IPs), 3 per NAT"
    assert line["quantity"] == 2 * 3 * 730 and line["monthly"] == pytest.approx(
        2 * 3 * 730 * 0.005, abs=0.01)
    [quota] = [n for n in cost["notes"] if n.startswith("Elastic IPs:")]
    assert "this stack allocates 6; an account may hold 5 per Region" in quota
    assert "Raise the quota first" in quota and "L-0263D0A3" in quota
    assert all(zone["nat_instance"]["public_address"].startswith("3 Elastic IPs busy-nat-eip-")
               for zone in planned["availability_zones"])


@pytest.mark.parametrize(("addresses", "others", "warned"), [
    (1, 3, False),  # 2 + 3 = 5: at the default quota, fine
    (2, 2, True),   # 4 + 2 = 6
    (2, 0, False),
])
def test_the_elastic_ip_quota_is_warned_of_before_anything_is_allocated(
        monkeypatch: pytest.MonkeyPatch, addresses: int, others: int, warned: bool) -> None:
    import pulumi
    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: said.append(message))
    mocks = existing_vpc_mocks()
    mocks.elastic_ips = {f"eipalloc-other{i}": {} for i in range(others)}
    # this stack's own, from an earlier `pulumi up`, are not counted twice
    mocks.elastic_ips.update({
        "eipalloc-ours1": {"tags": {"nat-instance-vpc:component": "edge"}},
        "eipalloc-ours2": {"tags": {"nat-instance-vpc:component": "edge"}}})

    def body() -> None:
        args: Any = {**EXISTING, "instance": {"instance_type": "t4g.micro",
                                              "public_addresses": addresses}}
        NatInstances("edge", args)
    run_under_mocks(body, {"aws:region": "us-east-1"}, stack="byo", mocks=mocks)
    quota = [m for m in said if "Elastic IPs" in m]
    assert bool(quota) == warned
    if warned:
        assert quota == [
            f"this stack needs 4 Elastic IPs and the account holds {others} others in "
            f"us-east-1: {4 + others} in all, past AWS's default quota of 5 per Region. Unless "
            "the account's quota was raised, `pulumi up` stops with AddressLimitExceeded when "
            "it allocates them. Fix: request more in Service Quotas (EC2-VPC Elastic IPs, "
            "L-0263D0A3) first, or fewer publicAddressesPerNat"]


# --- your own Elastic IPs ------------------------------------------------------------------
OWN = [f"eipalloc-0{i:016x}" for i in range(1, 5)]


def own_mocks(**known: dict[str, Any]) -> Any:
    mocks = existing_vpc_mocks()
    mocks.elastic_ips = {allocation: {"publicIp": f"198.51.100.{i + 1}"}
                         for i, allocation in enumerate(OWN)}
    mocks.elastic_ips.update(known)
    return mocks


def build_own(mocks: Any, instance: dict[str, Any], **extra: Any) -> Graph:
    def body() -> None:
        args: Any = {**EXISTING, "instance": {"instance_type": "t4g.micro", **instance},
                     **extra}
        nat = NatInstances("edge", args)
        import pulumi
        pulumi.export("nat_public_ip_lists", nat.nat_public_ip_lists)
    return run_under_mocks(body, {"aws:region": "us-east-1"}, stack="byo", mocks=mocks)


@pytest.mark.parametrize("high_availability", [False, True])
def test_your_own_elastic_ips_are_associated_and_never_managed(high_availability: bool) -> None:
    graph = build_own(own_mocks(), {"public_addresses": 2, "elastic_ip_allocation_ids": OWN},
                      high_availability={"enabled": high_availability})
    assert graph.of_type(EIP) == []  # nothing allocated, so nothing released on destroy
    for zone, mine in ((A, OWN[:2]), (B, OWN[2:])):
        [interface] = [e for e in graph.of_type(ENI) if e.name.endswith(zone)]
        assert [a.inputs["allocationId"] for a in associations_of(graph, interface)] == mine
    assert graph.exports["nat_public_ip_lists"] == {
        A: ["198.51.100.1", "198.51.100.2"], B: ["198.51.100.3", "198.51.100.4"]}


def test_one_own_elastic_ip_per_nat_boots_on_an_interface_of_the_stack() -> None:
    graph = build_own(own_mocks(), {"elastic_ip_allocation_ids": OWN[:2]})
    for nat in graph.of_type(INSTANCE):
        assert "primaryNetworkInterface" in nat.inputs  # tagged: the next run knows it
    assert [e.inputs["tags"]["nat-instance-vpc:component"] for e in graph.of_type(ENI)] == \
        ["edge", "edge"]


def test_your_own_elastic_ips_already_on_this_stacks_nats_are_accepted() -> None:
    # the second `pulumi up`: AWS says they are associated, with this stack's interfaces
    mocks = own_mocks(**{OWN[0]: {"publicIp": "198.51.100.1", "associationId": "eipassoc-1",
                                  "networkInterfaceId": "eni-0000000000000000a"}})
    mocks.network_interfaces["eni-0000000000000000a"] = {
        "tags": {"nat-instance-vpc:component": "edge"}}
    graph = build_own(mocks, {"elastic_ip_allocation_ids": OWN[:2]})
    assert len(graph.of_type(ASSOCIATION)) == 2


@pytest.mark.parametrize(("known", "expected"), [
    ({OWN[1]: {"associationId": "eipassoc-9", "networkInterfaceId": "eni-0000000000000000b"}},
     f"instance.elastic_ip_allocation_ids = \"{OWN[1]}\": associated with "
     "eni-0000000000000000b, not with this stack's NATs. Fix: disassociate it first (`aws ec2 "
     "disassociate-address --association-id eipassoc-9`), or give another"),
    ({OWN[1]: {"associationId": "eipassoc-8", "instanceId": "i-0000000000000000c"}},
     "associated with i-0000000000000000c, not with this stack's NATs"),
])
def test_your_own_elastic_ips_in_use_elsewhere_are_refused_before_any_resource(
        known: dict[str, Any], expected: str) -> None:
    mocks = own_mocks(**known)
    mocks.network_interfaces["eni-0000000000000000b"] = {"tags": {"Name": "someone-else"}}
    with pytest.raises(ProgramError) as raised:
        build_own(mocks, {"elastic_ip_allocation_ids": OWN[:2]})
    assert expected in str(raised.value) and raised.value.registered == 0


def test_an_elastic_ip_aws_does_not_know_is_refused_before_any_resource() -> None:
    mocks = own_mocks()
    del mocks.elastic_ips[OWN[1]]
    with pytest.raises(ProgramError) as raised:
        build_own(mocks, {"elastic_ip_allocation_ids": OWN[:2]})
    assert f'instance.elastic_ip_allocation_ids = "{OWN[1]}": not found in this account and ' \
        "region. Fix: give an Elastic IP of this region" in str(raised.value)
    assert "Fix: give an Elastic IP of this region" in str(raised.value)
    assert raised.value.registered == 0


@pytest.mark.parametrize(("keys", "expected"), [
    ({"elasticIpAllocationIds": OWN[:3]},
     "elasticIpAllocationIds = [" + ", ".join(f'"{a}"' for a in OWN[:3]) + "]: 3 given, 2 NATs "
     "× 1 address need 2. Fix: give 2, the NATs in AZ order"),
    ({"elasticIpAllocationIds": OWN[:1]},
     f'elasticIpAllocationIds = ["{OWN[0]}"]: 1 given, 2 NATs × 1 address need 2'),
    ({"elasticIpAllocationIds": [OWN[0], OWN[0]]},
     f'elasticIpAllocationIds = "{OWN[0]}": given twice. Fix: give each Elastic IP once'),
    ({"elasticIpAllocationIds": ["eip-1", OWN[0]]},
     'elasticIpAllocationIds = "eip-1": not an Elastic IP allocation id'),
    ({"elasticIpAllocationIds": OWN[:2], "useElasticIp": False},
     "Elastic IPs given while nat-instance-vpc:useElasticIp is false"),
    ({"elasticIpAllocationIds": OWN[:2]},  # the stack's account does not know them
     "not found in this account and region"),
])
def test_bad_own_elastic_ips_in_the_stack_config_stop_before_any_resource(
        run: Any, keys: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProgramError) as raised:
        run(azCount=2, **keys)
    assert expected in str(raised.value), str(raised.value)
    assert raised.value.registered == 0


def test_the_plan_names_your_own_elastic_ips_and_allocates_none(tmp_path: Any,
                                                                 monkeypatch: Any) -> None:
    from natctl import offline
    original = offline.AwsMocks.__init__

    def knowing(self: Any, region: str, zone_count: int = 6) -> None:
        original(self, region, zone_count)
        self.elastic_ips = {allocation: {} for allocation in OWN}
    monkeypatch.setattr(offline.AwsMocks, "__init__", knowing)
    project = stack_dir(tmp_path, "own", {"aws:region": "us-east-1",
                                          "nat-instance-vpc:azCount": 2,
                                          "nat-instance-vpc:elasticIpAllocationIds": OWN[:2]})
    planned = plan_stack("own", 100, project)
    assert [zone["nat_instance"]["public_address"].split(" on ")[0]
            for zone in planned["availability_zones"]] == [
        f"Elastic IP {OWN[0]} (yours)", f"Elastic IP {OWN[1]} (yours)"]
    assert not [n for n in planned["cost"]["notes"] if n.startswith("Elastic IPs:")]


def test_a_stack_with_your_own_elastic_ips(run: Any, monkeypatch: Any) -> None:
    from natctl import offline
    original = offline.AwsMocks.__init__

    def knowing(self: Any, region: str, zone_count: int = 6) -> None:
        original(self, region, zone_count)
        self.elastic_ips = {allocation: {"publicIp": f"198.51.100.{i + 1}"}
                            for i, allocation in enumerate(OWN)}
        # the second `pulumi up`: one already on an interface of this stack (named after it)
        self.elastic_ips[OWN[0]].update(associationId="eipassoc-1",
                                        networkInterfaceId="eni-0000000000000000a")
        self.network_interfaces["eni-0000000000000000a"] = {
            "tags": {"nat-instance-vpc:component": "test"}}
    monkeypatch.setattr(offline.AwsMocks, "__init__", knowing)
    graph = run(azCount=2, natInstanceType="t4g.micro", publicAddressesPerNat=2,
                elasticIpAllocationIds=OWN)
    assert graph.of_type(EIP) == []
    assert graph.exports["nat_public_ip_lists"] == {
        A: ["198.51.100.1", "198.51.100.2"], B: ["198.51.100.3", "198.51.100.4"]}
    assert sorted(a.inputs["allocationId"] for a in graph.of_type(ASSOCIATION)) == OWN
