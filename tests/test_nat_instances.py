"""NatInstances on a VPC made elsewhere: plain aws.ec2 resources, awsx.ec2.Vpc, existing ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from nat import NatInstances
from nat.design.userdata import decode_user_data
from natctl.offline import AwsMocks, Graph, ProgramError, run_program, run_under_mocks

ROOT = Path(__file__).resolve().parent.parent
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
INSTANCE = "aws:ec2/instance:Instance"
ROUTE = "aws:ec2/route:Route"


def plain_vpc(zone_count: int, secondary: bool = False) -> dict[str, Any]:
    """A VPC built from plain aws.ec2 resources, as a user's program would; NatInstances'
    arguments for it (ids are outputs of those resources)."""
    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    cidrs = ["10.0.0.0/16"]
    if secondary:
        aws.ec2.VpcIpv4CidrBlockAssociation("secondary", vpc_id=vpc.id,
                                            cidr_block="100.64.0.0/16")
        cidrs.append("100.64.0.0/16")
    public, tables = {}, {}
    for index, zone in enumerate(ZONES[:zone_count]):
        public[zone] = aws.ec2.Subnet(f"public-{zone}", vpc_id=vpc.id, availability_zone=zone,
                                      cidr_block=f"10.0.{index}.0/24").id
        private_cidr = f"100.64.{index}.0/24" if secondary else f"10.0.{100 + index}.0/24"
        private = aws.ec2.Subnet(f"private-{zone}", vpc_id=vpc.id, availability_zone=zone,
                                 cidr_block=private_cidr)
        table = aws.ec2.RouteTable(f"private-rt-{zone}", vpc_id=vpc.id)
        aws.ec2.RouteTableAssociation(f"private-rta-{zone}", subnet_id=private.id,
                                      route_table_id=table.id)
        tables[zone] = [table.id]
    return {"vpc_id": vpc.id, "vpc_cidr_blocks": cidrs, "availability_zones": ZONES[:zone_count],
            "public_subnet_ids": public, "private_route_table_ids": tables}


def build(args: dict[str, Any] | Callable[[], dict[str, Any]],
          mocks: AwsMocks | None = None) -> Graph:
    """Run NatInstances under the mocks; `args` may be a function that makes resources first
    (they must be made inside the mock engine's run)."""
    def body() -> None:
        given = args() if callable(args) else args
        nat = NatInstances("edge", given)  # type: ignore[arg-type]
        pulumi.export("nat_public_ips", nat.nat_public_ips)
        pulumi.export("nat_zones", nat.nat_zone_for_private_route_tables)
    return run_under_mocks(body, {"aws:region": "us-east-1"}, stack="byo", mocks=mocks)


def nat_zone_of_each_table(graph: Graph) -> dict[str, str]:
    """Route table name → the AZ of the NAT its 0.0.0.0/0 route reaches."""
    subnet_zone = {s.id: s.inputs["availabilityZone"]
                   for s in graph.of_type("aws:ec2/subnet:Subnet")}
    nat_zone = {n.inputs["primaryNetworkInterfaceId"]: subnet_zone[n.inputs["subnetId"]]
                for n in graph.of_type(INSTANCE)}
    table_name = {t.id: t.name for t in graph.of_type("aws:ec2/routeTable:RouteTable")}
    return {table_name[r.inputs["routeTableId"]]: nat_zone[r.inputs["networkInterfaceId"]]
            for r in graph.of_type(ROUTE) if r.inputs["destinationCidrBlock"] == "0.0.0.0/0"}


@pytest.mark.parametrize("zone_count", [1, 2, 3])
def test_on_plain_resources_each_private_table_routes_to_its_own_azs_nat(
        zone_count: int) -> None:
    graph = build(lambda: plain_vpc(zone_count))
    assert len(graph.of_type(INSTANCE)) == zone_count
    assert nat_zone_of_each_table(graph) == {f"private-rt-{z}": z for z in ZONES[:zone_count]}
    vpc = graph.named("vpc")
    assert graph.named("edge-sg").inputs["vpcId"] == vpc.id
    # the NAT group admits the VPC (the default sources) on the guide's two ports
    ingress = graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted((r.inputs["cidrIpv4"], int(r.inputs["fromPort"])) for r in ingress) == \
        [("10.0.0.0/16", 80), ("10.0.0.0/16", 443)]
    assert sorted(graph.exports["nat_public_ips"]) == ZONES[:zone_count]
    nat_component = graph.named("edge")
    assert all(nat_component.urn in ancestors(graph, r)
               for r in graph.resources if r.name.startswith("edge-"))


def ancestors(graph: Graph, resource: Any) -> list[str]:
    by_urn = {r.urn: r for r in graph.resources}
    chain, parent = [], resource.parent
    while parent in by_urn:
        chain.append(parent)
        parent = by_urn[parent].parent
    return chain


def test_single_nat_serves_every_az_from_the_first() -> None:
    def args() -> dict[str, Any]:
        made = plain_vpc(3)
        made["single_nat"] = True
        made["public_subnet_ids"] = {ZONES[0]: made["public_subnet_ids"][ZONES[0]]}
        return made
    graph = build(args)
    assert [n.name for n in graph.of_type(INSTANCE)] == ["edge-us-east-1a"]
    assert set(nat_zone_of_each_table(graph).values()) == {"us-east-1a"}
    assert graph.exports["nat_zones"] == dict.fromkeys(ZONES, "us-east-1a")


def test_a_secondary_cidr_is_forwarded_and_admitted() -> None:
    graph = build(lambda: plain_vpc(2, secondary=True))
    user_data = decode_user_data(graph.of_type(INSTANCE)[0].inputs["userDataBase64"])
    assert 'NAT_VPC_CIDRS="10.0.0.0/16 100.64.0.0/16"' in user_data
    ingress = graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {r.inputs["cidrIpv4"] for r in ingress} == {"10.0.0.0/16", "100.64.0.0/16"}


def test_private_cidr_blocks_narrow_the_security_group() -> None:
    graph = build(lambda: {**plain_vpc(1), "private_cidr_blocks": ["10.0.100.0/24"]})
    ingress = graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {r.inputs["cidrIpv4"] for r in ingress} == {"10.0.100.0/24"}
    # what the NAT forwards is still the whole VPC
    user_data = decode_user_data(graph.of_type(INSTANCE)[0].inputs["userDataBase64"])
    assert 'NAT_VPC_CIDRS="10.0.0.0/16"' in user_data


def test_the_awsx_example_routes_each_private_subnet_to_its_azs_nat() -> None:
    graph = run_program({"aws:region": "us-east-1", "awsx-nat-instances:availabilityZones":
                         '["us-east-1a", "us-east-1b", "us-east-1c"]'},
                        stack="dev", project="awsx-nat-instances",
                        program=ROOT / "examples" / "python-awsx" / "__main__.py")
    [vpc] = graph.of_type("awsx:ec2:Vpc")
    assert vpc.args["natGateways"] == {"strategy": "None"}
    nats = {n.inputs["subnetId"]: n for n in graph.of_type(INSTANCE)}
    assert len(nats) == 3
    # each private route table (awsx's, found from its subnet) reaches the NAT in the public
    # subnet of the same AZ: the awsx lists are in AZ order
    lookups = [args["subnetId"] for token, args in graph.invokes
               if token == "aws:ec2/getRouteTable:getRouteTable" and "subnetId" in args]
    assert len(lookups) == 3
    # awsx's ids are outputs: each is checked at deploy time (in the VPC, in its AZ)
    checked = {token: sorted(a.get("id") or a["routeTableId"] for t, a in graph.invokes
                             if t == token and "subnetId" not in a)
               for token in ("aws:ec2/getSubnet:getSubnet", "aws:ec2/getRouteTable:getRouteTable")}
    assert checked["aws:ec2/getSubnet:getSubnet"] == sorted(nats)
    assert len(checked["aws:ec2/getRouteTable:getRouteTable"]) == 3
    eni_zone = {n.inputs["primaryNetworkInterfaceId"]: zone_of(graph, n.inputs["subnetId"])
                for n in nats.values()}
    for route in graph.of_type(ROUTE):
        private_subnet = "subnet-" + route.inputs["routeTableId"].removeprefix("rtb-")
        assert eni_zone[route.inputs["networkInterfaceId"]] == zone_of(graph, private_subnet)
    assert sorted(graph.exports["nat_public_ips"]) == ZONES


def zone_of(graph: Graph, subnet_id: str) -> str:
    """The AZ the mocked awsx VPC put a subnet in."""
    # the mock lists awsx's subnets as awsx does: in availability_zone_names' order
    outputs = graph.named("shared").inputs
    for kind in ("publicSubnetIds", "privateSubnetIds"):
        if subnet_id in outputs.get(kind, []):
            return str(ZONES[outputs[kind].index(subnet_id)])
    raise KeyError(subnet_id)


# --- arguments refused before anything is registered ---------------------------------------------
EXISTING = {
    "vpc_id": "vpc-0123456789abcdef0", "vpc_cidr_blocks": ["10.0.0.0/16"],
    "availability_zones": ["us-east-1a", "us-east-1b"],
    "public_subnet_ids": {"us-east-1a": "subnet-0aaaaaaaaaaaaaaaa",
                          "us-east-1b": "subnet-0bbbbbbbbbbbbbbbb"},
    "private_route_table_ids": {"us-east-1a": ["rtb-0aaaaaaaaaaaaaaaa"],
                                "us-east-1b": ["rtb-0bbbbbbbbbbbbbbbb"]},
}


def existing_vpc_mocks(subnet_vpc: str = "vpc-0123456789abcdef0") -> AwsMocks:
    mocks = AwsMocks("us-east-1")
    mocks.subnets = {"subnet-0aaaaaaaaaaaaaaaa": {"vpcId": "vpc-0123456789abcdef0",
                                                  "availabilityZone": "us-east-1a"},
                     "subnet-0bbbbbbbbbbbbbbbb": {"vpcId": subnet_vpc,
                                                  "availabilityZone": "us-east-1b"}}
    mocks.route_tables = {"rtb-0aaaaaaaaaaaaaaaa": {"vpcId": "vpc-0123456789abcdef0"},
                          "rtb-0bbbbbbbbbbbbbbbb": {"vpcId": "vpc-0123456789abcdef0"}}
    return mocks


def test_an_existing_vpc_by_plain_ids() -> None:
    graph = build(dict(EXISTING), existing_vpc_mocks())
    assert len(graph.of_type(INSTANCE)) == 2
    assert {r.inputs["routeTableId"] for r in graph.of_type(ROUTE)} == \
        {"rtb-0aaaaaaaaaaaaaaaa", "rtb-0bbbbbbbbbbbbbbbb"}


@pytest.mark.parametrize(("change", "mocks", "message"), [
    # a Python caller is told the fields as it spells them (the package schema's camelCase
    # is for the other languages: tests/test_package.py)
    ({}, existing_vpc_mocks(subnet_vpc="vpc-0fffffffffffffff0"),
     'public_subnet_ids.us-east-1b = "subnet-0bbbbbbbbbbbbbbbb": in vpc-0fffffffffffffff0, not '
     "in vpc_id vpc-0123456789abcdef0. Fix: give a public subnet of that VPC"),
    ({"availability_zones": ["us-east-1a", "us-east-1c"]}, existing_vpc_mocks(),
     "public_subnet_ids = [\"us-east-1a\", \"us-east-1b\"]: 'us-east-1b' is not one of "
     "availability_zones. Fix: key the map by us-east-1a, us-east-1c"),
    ({"private_route_table_ids": {"us-east-1a": ["rtb-0aaaaaaaaaaaaaaaa"],
                                  "us-east-1b": ["rtb-0aaaaaaaaaaaaaaaa"]}}, existing_vpc_mocks(),
     'private_route_table_ids.us-east-1b = "rtb-0aaaaaaaaaaaaaaaa": route table given twice '
     "(also under us-east-1a). Fix: give each route table once, under the AZ of its subnets"),
    ({"vpc_cidr_blocks": "10.0.0.0/16"}, existing_vpc_mocks(),
     'vpc_cidr_blocks = "10.0.0.0/16": not a list of strings'),
    ({"vpc_cidr": "10.0.0.0/16"}, existing_vpc_mocks(),
     'vpc_cidr = "10.0.0.0/16": unknown field. Fix: did you mean vpc_id or vpc_cidr_blocks? '
     "Remove it"),
    ({"instance": {"instance_tpye": "t4g.nano"}}, existing_vpc_mocks(),
     'instance.instance_tpye = "t4g.nano": unknown field. Fix: did you mean '
     "instance.instance_type?"),
    # the schema's spelling, written in Python: the Python key is named
    ({"instance": {"instanceType": "t4g.nano"}}, existing_vpc_mocks(),
     'instance.instanceType = "t4g.nano": unknown field. Fix: did you mean '
     "instance.instance_type? Remove it"),
    ({"publicSubnetIds": {}}, existing_vpc_mocks(),
     'publicSubnetIds = {}: unknown field. Fix: did you mean public_subnet_ids? Remove it'),
])
def test_bad_arguments_stop_the_program_before_any_resource(
        change: dict[str, Any], mocks: AwsMocks, message: str) -> None:
    with pytest.raises(ProgramError) as raised:
        build({**EXISTING, **change}, mocks)
    assert raised.value.registered == 0
    assert f"\n  - {message}" in str(raised.value) or str(raised.value).endswith(message), \
        str(raised.value)
    assert str(raised.value).startswith('invalid arguments for NatInstances "edge"')


def test_a_route_table_output_given_twice_is_refused() -> None:
    def body() -> None:
        args = plain_vpc(2)
        table = args["private_route_table_ids"]["us-east-1a"][0]
        args["private_route_table_ids"]["us-east-1b"] = [table]
        NatInstances("edge", args)  # type: ignore[arg-type]
    with pytest.raises(ProgramError, match="route table given twice"):
        run_under_mocks(body, {"aws:region": "us-east-1"}, stack="byo")


# --- ids known only at deploy time are checked then, before anything depends on them ------------
DEPENDENTS = (INSTANCE, ROUTE, "aws:ec2/networkInterface:NetworkInterface",
              "aws:autoscaling/group:Group", "aws:ec2/launchTemplate:LaunchTemplate",
              "aws:ec2/securityGroup:SecurityGroup")


def crossed_wiring(high_availability: bool) -> Callable[[], dict[str, Any]]:
    """Outputs of resources, wired wrong: AZ a's public subnet is in AZ b, and AZ b's route
    table belongs to another VPC."""
    def make() -> dict[str, Any]:
        args = plain_vpc(2)
        other = aws.ec2.Vpc("other-vpc", cidr_block="10.9.0.0/16")
        args["private_route_table_ids"]["us-east-1b"] = [
            aws.ec2.RouteTable("foreign-rt", vpc_id=other.id).id]
        args["public_subnet_ids"]["us-east-1a"] = args["public_subnet_ids"]["us-east-1b"]
        if high_availability:
            args["high_availability"] = {"enabled": True}
        return args
    return make


@pytest.mark.parametrize("high_availability", [False, True])
def test_computed_ids_are_checked_at_deploy_time_before_anything_uses_them(
        high_availability: bool) -> None:
    mocks = AwsMocks("us-east-1")
    with pytest.raises(ProgramError) as raised:
        build(crossed_wiring(high_availability), mocks)
    lines = str(raised.value).splitlines()
    assert lines[0] == 'invalid arguments for NatInstances "edge" (2 problems):'
    assert lines[1].startswith('  - public_subnet_ids.us-east-1a = "subnet-') and \
        lines[1].endswith(": in us-east-1b, not us-east-1a. Fix: key each subnet by its own AZ (a "
                          "NAT in another AZ would carry this AZ's traffic across AZs)")
    assert lines[2].startswith('  - private_route_table_ids.us-east-1b = "rtb-') and \
        ", not in vpc_id vpc-" in lines[2] and lines[2].endswith(
            ". Fix: give route tables of that VPC")
    made = {r["type"] for r in raised.value.registrations}
    assert not made & set(DEPENDENTS), made & set(DEPENDENTS)
    # nor the agents' policy, which names the route tables (the metrics policy names none)
    assert "edge-ha" not in {r["name"] for r in raised.value.registrations}


def test_computed_ids_that_are_right_pass_their_check() -> None:
    graph = build(lambda: plain_vpc(2))
    checked = sorted(a.get("id") or a["routeTableId"] for t, a in graph.invokes
                     if t in ("aws:ec2/getSubnet:getSubnet", "aws:ec2/getRouteTable:getRouteTable"))
    assert len(checked) == 4  # two subnets, two route tables
    assert len(graph.of_type(ROUTE)) == 2 and len(graph.of_type(INSTANCE)) == 2


def test_a_type_botocore_does_not_know_is_shown_as_a_pulumi_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nat.inputs import instance_types
    older = frozenset(t for t in instance_types.known_instance_types()
                      if not t.startswith("c8gn."))
    monkeypatch.setattr(instance_types, "known_instance_types", lambda: older)
    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: said.append(message))
    graph = build({**EXISTING, "instance": {"instance_type": "c8gn.medium"}},
                  existing_vpc_mocks())
    assert {n.inputs["instanceType"] for n in graph.of_type(INSTANCE)} == {"c8gn.medium"}
    assert len(said) == 1 and said[0].startswith(
        'instance.instance_type = "c8gn.medium": not a type botocore')


def test_the_refusal_is_found_in_an_error_chain_that_loops() -> None:
    from natctl.offline import deploy_time_refusal
    outer, inner = ValueError("While processing input"), KeyError("x")
    outer.__context__, inner.__context__ = inner, outer  # asyncio can leave such a loop
    assert deploy_time_refusal(outer) is None
    refusal = pulumi.RunError("invalid arguments")
    inner.__cause__ = refusal
    assert deploy_time_refusal(outer) is refusal


def test_a_refused_run_leaves_no_error_reports_for_later(caplog: pytest.LogCaptureFixture) -> None:
    # asyncio would report each of the run's unread failures, traceback and all, whenever it
    # is collected, at any later moment (see natctl.offline._quiet)
    import gc
    import logging
    caplog.set_level(logging.DEBUG)  # from the start: a collection may come at any moment
    with pytest.raises(ProgramError):
        build(crossed_wiring(False), AwsMocks("us-east-1"))
    gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any(r.name == "natctl.offline" for r in caplog.records)  # reported, one line each
