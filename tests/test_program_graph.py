"""The real __main__.py under Pulumi's mocks: assertions over the whole resource graph."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nat.design.userdata import bootstrap_script, decode_user_data
from natctl.offline import MOCK_AMI, Graph, ProgramError, Resource, run_program
from natctl.stacks import load_stack_config
from tests.conftest import COMPONENT

INSTANCE = "aws:ec2/instance:Instance"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
SUBNET = "aws:ec2/subnet:Subnet"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def expected_counts(az_count: int, nat_count: int, rules: tuple[int, int], eip: bool = True,
                    ssm: bool = True, monitoring: bool = True,
                    alarms_per_nat: int = 5) -> dict[str, int]:
    """The default instance type (t4g.nano) is burstable: four alarms per NAT."""
    counts = {
        COMPONENT: 1,
        "nat:index:NatInstances": 1,
        "nat:index:NatZone": az_count,
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/internetGateway:InternetGateway": 1,
        SUBNET: 2 * az_count,
        ROUTE_TABLE: 1 + az_count,
        ROUTE: 1 + az_count,
        ASSOCIATION: 2 * az_count,
        "aws:ec2/securityGroup:SecurityGroup": 1,
        INSTANCE: nat_count,
    }
    if eip:
        counts["aws:ec2/eip:Eip"] = nat_count
        counts["aws:ec2/eipAssociation:EipAssociation"] = nat_count
    if ssm or monitoring:
        counts["aws:iam/role:Role"] = 1
        counts["aws:iam/instanceProfile:InstanceProfile"] = 1
    if ssm:
        counts["aws:iam/rolePolicyAttachment:RolePolicyAttachment"] = 1
    if monitoring:
        counts["aws:iam/rolePolicy:RolePolicy"] = 1
        counts["aws:cloudwatch/metricAlarm:MetricAlarm"] = alarms_per_nat * nat_count
    counts.update({INGRESS: rules[0], EGRESS: rules[1]})
    return dict(sorted(counts.items()))


def subnet_zone(graph: Graph, subnet_id: str) -> str:
    return str(graph.by_id(subnet_id).inputs["availabilityZone"])


def instance_zone(graph: Graph, instance: Resource) -> str:
    return subnet_zone(graph, instance.inputs["subnetId"])


def default_route_of(graph: Graph, route_table_id: str) -> Resource:
    routes = [r for r in graph.of_type(ROUTE) if r.inputs["routeTableId"] == route_table_id
              and r.inputs["destinationCidrBlock"] == "0.0.0.0/0"]
    assert len(routes) == 1
    return routes[0]


def private_subnets(graph: Graph) -> list[Resource]:
    return [s for s in graph.of_type(SUBNET) if "-private-" in s.name]


def table_of_subnet(graph: Graph, subnet_id: str) -> str:
    tables = [a.inputs["routeTableId"] for a in graph.of_type(ASSOCIATION)
              if a.inputs["subnetId"] == subnet_id]
    assert len(tables) == 1, f"subnet {subnet_id} has {len(tables)} route table associations"
    return str(tables[0])


def rule_set(graph: Graph) -> set[tuple[Any, ...]]:
    rules = set()
    for rule in graph.of_type(INGRESS) + graph.of_type(EGRESS):
        direction = "inbound" if rule.type == INGRESS else "outbound"
        rules.add((direction, rule.inputs.get("cidrIpv4", "self"), rule.inputs["ipProtocol"],
                   rule.inputs["fromPort"], rule.inputs["toPort"]))
    return rules


@pytest.mark.parametrize("az_count", [1, 2])
def test_resource_counts_per_type(run: Any, az_count: int) -> None:
    graph = run(azCount=az_count)
    # the guide's table: 2 inbound per private CIDR, 2 outbound
    assert graph.counts() == expected_counts(az_count, az_count, (2 * az_count, 2))


@pytest.mark.parametrize("az_count", [1, 2])
def test_every_resource_descends_from_the_component(run: Any, az_count: int) -> None:
    graph = run(azCount=az_count)
    components = graph.of_type(COMPONENT)
    assert len(components) == 1
    assert components[0].parent.endswith("::pulumi:pulumi:Stack::nat-instance-vpc-test")
    children = [r for r in graph.resources if r is not components[0]]
    assert children and all(ancestors(graph, r)[-1] == components[0].urn for r in children)
    names = [r.name for r in graph.resources]
    assert len(names) == len(set(names)), "duplicate resource names"


def ancestors(graph: Graph, resource: Resource) -> list[str]:
    """URNs from the resource's parent up to the last one in the graph."""
    by_urn = {r.urn: r for r in graph.resources}
    chain = []
    parent = resource.parent
    while parent in by_urn:
        chain.append(parent)
        parent = by_urn[parent].parent
    return chain


def parent_name(graph: Graph, resource_name: str) -> str:
    by_urn = {r.urn: r for r in graph.resources}
    return by_urn[graph.named(resource_name).parent].name


def test_the_tree_reads_like_the_topology(run: Any) -> None:
    """Subnets under the VPC, a subnet's route table under it, each AZ's NAT in its group."""
    graph = run(azCount=2, stack="t")
    expected = {
        "t-vpc": "t", "t-nat": "t",
        "t-igw": "t-vpc", "t-public-rt": "t-vpc", "t-public-default-route": "t-public-rt",
        "t-nat-sg": "t-nat", "t-nat-role": "t-nat", "t-nat-profile": "t-nat-role",
        "t-nat-ssm": "t-nat-role",
    }
    for zone in ("us-east-1a", "us-east-1b"):
        expected.update({
            f"t-public-{zone}": "t-vpc", f"t-public-rta-{zone}": f"t-public-{zone}",
            f"t-private-{zone}": "t-vpc", f"t-private-rt-{zone}": f"t-private-{zone}",
            f"t-private-rta-{zone}": f"t-private-{zone}",
            f"t-nat-zone-{zone}": "t-nat", f"t-nat-{zone}": f"t-nat-zone-{zone}",
            f"t-nat-eip-{zone}": f"t-nat-zone-{zone}",
            f"t-nat-eip-assoc-{zone}": f"t-nat-eip-{zone}",
            f"t-nat-default-route-{zone}": f"t-nat-zone-{zone}",
        })
    assert {name: parent_name(graph, name) for name in expected} == expected
    rules = graph.of_type(INGRESS) + graph.of_type(EGRESS)
    assert rules and {parent_name(graph, r.name) for r in rules} == {"t-nat-sg"}


@pytest.mark.parametrize("az_count", [1, 2])
def test_private_default_route_targets_the_nat_in_its_own_az(run: Any, az_count: int) -> None:
    graph = run(azCount=az_count)
    nats_by_eni = {n.inputs["primaryNetworkInterfaceId"]: n for n in graph.of_type(INSTANCE)}
    subnets = private_subnets(graph)
    assert len(subnets) == az_count
    for subnet in subnets:
        zone = subnet.inputs["availabilityZone"]
        table = table_of_subnet(graph, subnet.id)
        route = default_route_of(graph, table)
        nat = nats_by_eni[route.inputs["networkInterfaceId"]]
        assert instance_zone(graph, nat) == zone
        assert "-public-" in graph.by_id(nat.inputs["subnetId"]).name
        assert "gatewayId" not in route.inputs
    # every private subnet has a table of its own
    tables = [table_of_subnet(graph, s.id) for s in subnets]
    assert len(set(tables)) == az_count


@pytest.mark.parametrize("az_count", [1, 2])
def test_public_subnets_route_to_the_internet_gateway(run: Any, az_count: int) -> None:
    graph = run(azCount=az_count)
    igw = graph.of_type("aws:ec2/internetGateway:InternetGateway")[0]
    public = [s for s in graph.of_type(SUBNET) if "-public-" in s.name]
    assert len(public) == az_count
    for subnet in public:
        route = default_route_of(graph, table_of_subnet(graph, subnet.id))
        assert route.inputs["gatewayId"] == igw.id
        assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_vpc_has_dns_on_and_subnets_in_distinct_azs(run: Any) -> None:
    graph = run(azCount=2)
    vpc = graph.of_type("aws:ec2/vpc:Vpc")[0]
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    zones = sorted(s.inputs["availabilityZone"] for s in private_subnets(graph))
    assert zones == ["us-east-1a", "us-east-1b"]
    cidrs = {s.name: s.inputs["cidrBlock"] for s in graph.of_type(SUBNET)}
    assert cidrs == {"test-public-us-east-1a": "10.0.0.0/20",
                     "test-public-us-east-1b": "10.0.16.0/20",
                     "test-private-us-east-1a": "10.0.128.0/20",
                     "test-private-us-east-1b": "10.0.144.0/20"}


@pytest.mark.parametrize("az_count", [1, 2])
def test_nat_instances_are_hardened(run: Any, az_count: int) -> None:
    graph = run(azCount=az_count, keyName="ops-key")
    nats = graph.of_type(INSTANCE)
    assert len(nats) == az_count
    sg = graph.of_type("aws:ec2/securityGroup:SecurityGroup")[0]
    for nat in nats:
        assert nat.inputs["sourceDestCheck"] is False
        assert nat.inputs["metadataOptions"]["httpTokens"] == "required"
        assert nat.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert nat.inputs["rootBlockDevice"]["volumeType"] == "gp3"
        assert nat.inputs["rootBlockDevice"]["encrypted"] is True
        assert nat.inputs["instanceType"] == "t4g.nano"
        assert nat.inputs["keyName"] == "ops-key"
        assert nat.inputs["vpcSecurityGroupIds"] == [sg.id]
        assert nat.inputs["userDataReplaceOnChange"] is True
        assert nat.inputs["iamInstanceProfile"] == "test-nat-profile"


def test_each_nat_gets_its_own_elastic_ip(run: Any) -> None:
    graph = run(azCount=2)
    eips = {e.id: e for e in graph.of_type("aws:ec2/eip:Eip")}
    associations = graph.of_type("aws:ec2/eipAssociation:EipAssociation")
    assert {a.inputs["instanceId"] for a in associations} == \
        {n.id for n in graph.of_type(INSTANCE)}
    assert {a.inputs["allocationId"] for a in associations} == set(eips)
    assert all(e.inputs["domain"] == "vpc" for e in eips.values())
    exported = graph.exports["nat_public_ips"]
    assert sorted(exported.values()) == sorted(e.inputs["publicIp"] for e in eips.values())


def test_without_elastic_ip_the_instance_public_ip_is_exported(run: Any) -> None:
    graph = run(azCount=1, useElasticIp=False)
    assert not graph.of_type("aws:ec2/eip:Eip")
    nat = graph.of_type(INSTANCE)[0]
    assert nat.inputs["associatePublicIpAddress"] is True
    assert graph.exports["nat_public_ips"] == {"us-east-1a": nat.inputs["publicIp"]}


def test_without_ssm_or_monitoring_no_iam_resources(run: Any) -> None:
    graph = run(azCount=1, enableSsm=False, monitoring=False)
    assert graph.counts() == expected_counts(1, 1, (2, 2), ssm=False, monitoring=False)
    assert "iamInstanceProfile" not in graph.of_type(INSTANCE)[0].inputs


def test_without_ssm_the_role_only_publishes_metrics(run: Any) -> None:
    graph = run(azCount=1, enableSsm=False)
    assert graph.counts() == expected_counts(1, 1, (2, 2), ssm=False)
    [policy] = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    assert json.loads(policy.inputs["policy"])["Statement"] == [{
        "Sid": "PublishNatMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
        "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "NatInstance"}}}]


GUIDE_TABLE_ONE_AZ = {
    ("inbound", "10.0.128.0/20", "tcp", 80, 80),
    ("inbound", "10.0.128.0/20", "tcp", 443, 443),
    ("outbound", "0.0.0.0/0", "tcp", 80, 80),
    ("outbound", "0.0.0.0/0", "tcp", 443, 443),
}


def test_security_group_is_exactly_the_guides_table(run: Any) -> None:
    assert rule_set(run(azCount=1)) == GUIDE_TABLE_ONE_AZ


def test_security_group_two_azs_has_each_private_cidr(run: Any) -> None:
    rules = rule_set(run(azCount=2))
    assert rules == GUIDE_TABLE_ONE_AZ | {("inbound", "10.0.144.0/20", "tcp", 80, 80),
                                          ("inbound", "10.0.144.0/20", "tcp", 443, 443)}


def test_ssh_rule_only_with_operator_cidr(run: Any) -> None:
    rules = rule_set(run(azCount=1, sshCidr="198.51.100.0/24"))
    assert rules == GUIDE_TABLE_ONE_AZ | {("inbound", "198.51.100.0/24", "tcp", 22, 22)}


def test_test_rules_switch_adds_exactly_the_guides_test_rules(run: Any) -> None:
    rules = rule_set(run(azCount=1, enableTestRules=True))
    assert rules == GUIDE_TABLE_ONE_AZ | {
        ("inbound", "10.0.128.0/20", "icmp", -1, -1),
        ("outbound", "0.0.0.0/0", "icmp", -1, -1),
        ("outbound", "10.0.128.0/20", "tcp", 22, 22),
    }


def test_security_group_rules_belong_to_the_nat_group(run: Any) -> None:
    graph = run(azCount=2)
    sg = graph.of_type("aws:ec2/securityGroup:SecurityGroup")[0]
    rules = graph.of_type(INGRESS) + graph.of_type(EGRESS)
    assert all(r.inputs["securityGroupId"] == sg.id for r in rules)
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs


@pytest.mark.parametrize(("instance_type", "architecture"), [
    ("t4g.nano", "arm64"), ("c7gn.medium", "arm64"), ("t3.micro", "x86_64"),
    ("c6in.large", "x86_64")])
def test_ami_parameter_follows_architecture(run: Any, instance_type: str,
                                            architecture: str) -> None:
    graph = run(azCount=1, natInstanceType=instance_type)
    parameters = [args["name"] for token, args in graph.invokes
                  if token == "aws:ssm/getParameter:getParameter"]
    assert parameters == [
        f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"]
    nat = graph.of_type(INSTANCE)[0]
    assert nat.inputs["ami"] == MOCK_AMI[architecture]
    # a new AL2023 release must not replace running NATs
    assert nat.ignore_changes == ["ami"]


def test_pinned_ami_is_used_without_lookup(run: Any) -> None:
    graph = run(azCount=2, amiId="ami-0123456789abcdef0")
    assert not [t for t, _ in graph.invokes if t == "aws:ssm/getParameter:getParameter"]
    for nat in graph.of_type(INSTANCE):
        assert nat.inputs["ami"] == "ami-0123456789abcdef0"
        assert nat.ignore_changes == []


def test_user_data_carries_the_bootstrap_script(run: Any) -> None:
    graph = run(azCount=1, vpcCidr="10.8.0.0/16", conntrackMax=262144)
    user_data = decode_user_data(graph.of_type(INSTANCE)[0].inputs["userDataBase64"])
    assert bootstrap_script().rstrip() in user_data
    assert "echo 'NAT_VPC_CIDRS=\"10.8.0.0/16\"' >/etc/nat-instance/nat.env" in user_data
    assert "NAT_CONNTRACK_MAX=262144\n" in user_data
    assert user_data.rstrip().endswith("exec /usr/local/sbin/nat-bootstrap.sh install")


def test_single_nat_routes_every_az_to_the_first(run: Any) -> None:
    graph = run(azCount=2, singleNat=True)
    nats = graph.of_type(INSTANCE)
    assert len(nats) == 1 and instance_zone(graph, nats[0]) == "us-east-1a"
    eni = nats[0].inputs["primaryNetworkInterfaceId"]
    for subnet in private_subnets(graph):
        route = default_route_of(graph, table_of_subnet(graph, subnet.id))
        assert route.inputs["networkInterfaceId"] == eni
    assert graph.exports["nat_for_private_subnet"] == {"us-east-1a": nats[0].id,
                                                       "us-east-1b": nats[0].id}


def test_explicit_availability_zones(run: Any) -> None:
    graph = run(region="eu-west-1", azCount=2, availabilityZones=["eu-west-1c", "eu-west-1a"])
    assert graph.exports["availability_zones"] == ["eu-west-1c", "eu-west-1a"]
    assert {s.name: s.inputs["cidrBlock"] for s in private_subnets(graph)} == {
        "test-private-eu-west-1c": "10.0.128.0/20", "test-private-eu-west-1a": "10.0.144.0/20"}


def test_explicit_availability_zone_must_exist_in_the_region() -> None:
    config = {"aws:region": "eu-west-1", "nat-instance-vpc:azCount": 1,
              "nat-instance-vpc:availabilityZones": ["eu-west-1z"]}
    with pytest.raises(ProgramError, match="eu-west-1z is not an available AZ of eu-west-1"):
        run_program(config, stack="test")


def test_exports(run: Any) -> None:
    graph = run(azCount=2)
    exports = graph.exports
    assert exports["vpc_id"] == graph.of_type("aws:ec2/vpc:Vpc")[0].id
    assert exports["security_group_id"] == graph.of_type(
        "aws:ec2/securityGroup:SecurityGroup")[0].id
    for key in ("public_subnet_ids", "private_subnet_ids", "nat_instance_ids",
                "nat_public_ips", "private_route_table_ids"):
        assert sorted(exports[key]) == ["us-east-1a", "us-east-1b"], key
    for zone, subnet_id in exports["private_subnet_ids"].items():
        assert subnet_zone(graph, subnet_id) == zone
        assert table_of_subnet(graph, subnet_id) == exports["private_route_table_ids"][zone]
    for zone, instance_id in exports["nat_instance_ids"].items():
        assert instance_zone(graph, graph.by_id(instance_id)) == zone


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_stack_files_build(stack: str) -> None:
    graph = run_program(load_stack_config(stack), stack=stack)
    config = load_stack_config(stack)
    az_count = int(config["nat-instance-vpc:azCount"])
    high_availability = config.get("nat-instance-vpc:highAvailability") == "true"
    nats = graph.of_type("aws:autoscaling/group:Group" if high_availability else INSTANCE)
    assert len(nats) == az_count
    assert len(private_subnets(graph)) == az_count


def test_prod_stack_uses_its_cidrs_and_region() -> None:
    graph = run_program(load_stack_config("prod"), stack="prod")
    cidrs = sorted(s.inputs["cidrBlock"] for s in graph.of_type(SUBNET))
    assert cidrs == ["10.20.0.0/24", "10.20.1.0/24", "10.20.64.0/19", "10.20.96.0/19"]
    assert {s.inputs["availabilityZone"] for s in graph.of_type(SUBNET)} == \
        {"eu-west-1a", "eu-west-1b"}
    assert ("inbound", "198.51.100.0/24", "tcp", 22, 22) in rule_set(graph)


@pytest.mark.parametrize(("keys", "expected"), [
    ({"vpcCidr": "10.0.0.0/33"}, 'vpcCidr = "10.0.0.0/33": not an IPv4 CIDR'),
    ({"azCount": 7}, 'azCount = "7": out of range 1..6'),
    ({"sshCidr": "0.0.0.0/0"}, "opens SSH to (nearly) the whole internet"),
    ({"natInstanceType": "x9.huge"}, 'natInstanceType = "x9.huge": not an EC2 instance type'),
    ({"amiId": "ubuntu-22"}, 'amiId = "ubuntu-22": not shaped like an AMI id'),
    ({"privateSubnetCidrs": ["192.168.0.0/24", "192.168.1.0/24"]}, "outside the VPC"),
    ({"vpcCidr": "10.0.0.0/26"}, "too small to split"),
    ({"azCount": 1, "publicSubnetCidrs": ["10.0.0.0/24", "10.0.1.0/24"]},
     "2 subnets for 1 AZ."),
    ({"azCoutn": 2}, "unknown key. Fix: did you mean azCount?"),
])
def test_bad_config_stops_before_any_resource(keys: dict[str, Any], expected: str) -> None:
    config = {"aws:region": "us-east-1", **{f"nat-instance-vpc:{k}": v for k, v in keys.items()}}
    with pytest.raises(ProgramError) as raised:
        run_program(config, stack="test")
    assert expected in str(raised.value)
    assert raised.value.registered == 0


def test_too_many_azs_for_the_region_stops_before_any_resource() -> None:
    config = {"aws:region": "us-east-1", "nat-instance-vpc:azCount": 3}
    from natctl import offline
    original = offline.AwsMocks.__init__

    def two_zone_region(self: offline.AwsMocks, region: str, zone_count: int = 6) -> None:
        original(self, region, 2)

    offline.AwsMocks.__init__ = two_zone_region  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(ProgramError) as raised:
            run_program(config, stack="test")
    finally:
        offline.AwsMocks.__init__ = original  # type: ignore[method-assign]
    assert "region us-east-1 has only 2 available AZs" in str(raised.value)
    assert raised.value.registered == 0


def test_missing_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ProgramError, match=r"aws:region is not set"):
        run_program({"nat-instance-vpc:azCount": 1}, stack="test")


# --- upgrading a stack deployed with 0.1.0 -------------------------------------------------------
DATA = Path(__file__).resolve().parent / "data"
ID_VALUE = re.compile(r"^(vpc|subnet|rtb|igw|sg|eipalloc|eni|i|r|rtbassoc|sgr|eipassoc)-"
                      r"[0-9a-f]{17}$")


def without_ids(value: Any) -> Any:
    """Inputs with mock ids replaced by their kind: ids differ between runs, kinds must not."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    if isinstance(value, str) and ID_VALUE.match(value):
        return value.split("-")[0] + "-…"
    return value


# Pulumi.prod.yaml as 0.1.0 shipped it (the file has since turned high availability on)
PROD_0_1 = {"aws:region": "eu-west-1", "nat-instance-vpc:azCount": 2,
            "nat-instance-vpc:vpcCidr": "10.20.0.0/16",
            "nat-instance-vpc:publicSubnetCidrs": ["10.20.0.0/24", "10.20.1.0/24"],
            "nat-instance-vpc:privateSubnetCidrs": ["10.20.64.0/19", "10.20.96.0/19"],
            "nat-instance-vpc:natInstanceType": "t4g.micro",
            "nat-instance-vpc:sshCidr": "198.51.100.0/24"}


@pytest.mark.parametrize(("stack", "config"), [
    ("dev", None), ("prod", PROD_0_1),
    ("single", {"aws:region": "us-east-1", "nat-instance-vpc:azCount": 2,
                "nat-instance-vpc:singleNat": True, "nat-instance-vpc:enableSsm": False,
                "nat-instance-vpc:useElasticIp": False})])
def test_a_stack_deployed_with_0_1_keeps_every_resource(stack: str,
                                                         config: dict[str, Any] | None) -> None:
    """0.1.0 hung everything directly under NatInstanceVpc; the new tree answers to each of
    those URNs (an alias), so `pulumi up` after upgrading moves resources, it does not replace
    them."""
    graph = run_program(config or load_stack_config(stack), stack=stack)
    old_urns = json.loads((DATA / "urns-0.1.0.json").read_text())[stack]
    answered: dict[str, str] = {}
    for resource in graph.resources:
        for urn in [resource.urn, *resource.aliases]:
            assert urn not in answered, f"{urn} answered by {answered[urn]} and {resource.name}"
            answered[urn] = resource.name
    assert [urn for urn in old_urns if urn not in answered] == []
    new = {r.name for r in graph.resources} - set(answered[u] for u in old_urns)
    # what 0.2 adds: the component tree, and monitoring (alarms, the agent's right to publish,
    # and the role that carries it where 0.1 had none)
    added_kinds = ("nat:index:", "aws:cloudwatch/metricAlarm:", "aws:iam/rolePolicy:",
                   "aws:iam/role:", "aws:iam/instanceProfile:")
    assert all(graph.named(n).type.startswith(added_kinds) for n in new), new


def test_upgrading_prod_changes_no_input_but_the_nats_user_data() -> None:
    """Same inputs, so nothing but the NATs is replaced; the NATs are, once, because the
    bootstrap script changed (user data replaces on change, by design). Burstable NATs now
    say they run unlimited (the default for t4g anyway)."""
    graph = run_program(PROD_0_1, stack="prod")
    old_inputs = json.loads((DATA / "prod-inputs-0.1.0.json").read_text())
    by_urn = {urn: r for r in graph.resources for urn in [r.urn, *r.aliases]}
    changed = {}
    for urn, inputs in old_inputs.items():
        if urn.startswith("_"):
            continue
        resource = by_urn[urn]
        # the mocks echo inputs as state, plus outputs they make up (addresses)
        before, after = (without_ids({k: v for k, v in i.items()
                                      if k not in ("privateIp", "publicIp")})
                         for i in (inputs, resource.inputs))
        if before != after:
            changed[resource.name] = sorted(k for k in set(before) | set(after)
                                            if before.get(k) != after.get(k))
    assert changed == {"prod-nat-eu-west-1a": ["creditSpecification", "userDataBase64"],
                       "prod-nat-eu-west-1b": ["creditSpecification", "userDataBase64"]}
