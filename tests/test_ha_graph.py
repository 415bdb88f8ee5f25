"""High availability in the resource graph (the real program under the mocks)."""

from __future__ import annotations

import json
import re
from graphlib import TopologicalSorter
from typing import Any

import pytest

from nat.design.ha import HA_GROUP_TAG, READ_ACTIONS, RELEASE_TAG
from nat.design.userdata import (
    EC2_USER_DATA_LIMIT,
    agent_script,
    bootstrap_script,
    decode_user_data,
)
from nat.instance.agent import STATUS_PORT, Settings
from natctl.offline import MOCK_ACCOUNT, Graph, ProgramError, Resource

ENI = "aws:ec2/networkInterface:NetworkInterface"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
ROUTE = "aws:ec2/route:Route"
EIP, ASSOCIATION = "aws:ec2/eip:Eip", "aws:ec2/eipAssociation:EipAssociation"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def ha(run: Any, zone_count: int, **keys: Any) -> Graph:
    graph: Graph = run(stack="ha", azCount=zone_count, highAvailability=True, **keys)
    return graph


def zone_of(resource: Resource) -> str:
    return next(z for z in ZONES if resource.name.endswith(z))


@pytest.mark.parametrize("zone_count", [1, 2, 3])
def test_each_az_gets_an_interface_an_address_a_template_and_a_group_of_one(
        run: Any, zone_count: int) -> None:
    graph = ha(run, zone_count)
    counts = graph.counts()
    for kind in (ENI, TEMPLATE, GROUP, EIP, ASSOCIATION, ROUTE):
        assert counts[kind] == zone_count + (1 if kind == ROUTE else 0), kind  # + public route
    assert "aws:ec2/instance:Instance" not in counts  # the groups own the instances
    assert counts["aws:iam/rolePolicy:RolePolicy"] == 2  # the agents': routes, and metrics
    component = graph.of_type("nat:index:NatInstanceVpc")[0]
    by_urn = {r.urn: r for r in graph.resources}
    for resource in graph.resources:
        if resource is component:
            continue
        parent = resource.parent
        while parent in by_urn and parent != component.urn:
            parent = by_urn[parent].parent
        assert parent == component.urn, resource.name

    enis = {zone_of(e): e for e in graph.of_type(ENI)}
    for group in graph.of_type(GROUP):
        zone = zone_of(group)
        assert (group.inputs["minSize"], group.inputs["maxSize"],
                group.inputs["desiredCapacity"]) == (1, 1, 1)
        assert group.inputs["instanceMaintenancePolicy"] == {"minHealthyPercentage": 0,
                                                             "maxHealthyPercentage": 100}
        template = graph.by_id(group.inputs["launchTemplate"]["id"])
        assert zone_of(template) == zone
        [interface] = template.inputs["networkInterfaces"]
        assert interface["networkInterfaceId"] == enis[zone].id
        assert interface["deleteOnTermination"] == "false"
        assert group.inputs["vpcZoneIdentifiers"] == [enis[zone].inputs["subnetId"]]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    for interface in enis.values():
        assert interface.inputs["sourceDestCheck"] is False
        association = next(a for a in graph.of_type(ASSOCIATION)
                           if a.inputs["networkInterfaceId"] == interface.id)
        assert zone_of(graph.by_id(association.inputs["allocationId"])) == zone_of(interface)


def test_every_route_points_at_its_azs_interface_and_pulumi_never_moves_it_back(
        run: Any) -> None:
    graph = ha(run, 3)
    enis = {e.id: zone_of(e) for e in graph.of_type(ENI)}
    private = [r for r in graph.of_type(ROUTE) if "networkInterfaceId" in r.inputs]
    assert len(private) == 3
    for route in private:
        assert enis[route.inputs["networkInterfaceId"]] == zone_of(route)
        # after a failover the agents own where it points: no `pulumi up` undoes that
        assert route.ignore_changes == ["networkInterfaceId"]
    plain = run(stack="plain", azCount=2)
    assert all(r.ignore_changes == [] for r in plain.of_type(ROUTE))


def test_launch_templates_carry_the_same_bootstrap_script_and_agent(run: Any) -> None:
    graph = ha(run, 2, failbackAfterSeconds=30,
               healthCheckTargets=["checkip.amazonaws.com:443"])
    groups = {zone_of(g): g for g in graph.of_type(GROUP)}
    enis = {zone_of(e): e for e in graph.of_type(ENI)}
    tables = graph.exports["private_route_table_ids"]
    texts = []
    for template in graph.of_type(TEMPLATE):
        user_data = decode_user_data(template.inputs["userData"])
        texts.append(user_data)
        assert bootstrap_script().rstrip() in user_data
        assert agent_script().rstrip() in user_data
        found = re.search(r"<<'NAT_AGENT_SETTINGS_END'\n(.*)\n", user_data)
        assert found is not None
        settings = json.loads(found[1])
        Settings.from_document(settings)  # what the agent loads at boot
        assert settings["nats"] == {z: {"eni": e.id, "address": e.inputs["privateIp"]}
                                    for z, e in enis.items()}
        assert settings["route_tables"] == {tables[z]: z for z in tables}
        assert settings["failback_after"] == 30
        assert settings["targets"] == ["checkip.amazonaws.com:443"]
        assert settings["status_port"] == STATUS_PORT == 7654
        # the group is told which release its template carries
        tags = {t["key"]: t["value"] for t in groups[zone_of(template)].inputs["tags"]}
        assert tags[RELEASE_TAG] == settings["release"] and len(settings["release"]) == 16
        assert len(template.inputs["userData"]) * 3 / 4 < EC2_USER_DATA_LIMIT
    assert texts[0] == texts[1]  # one release for all AZs


def test_six_azs_of_user_data_fit_ec2s_16_kib(run: Any) -> None:
    graph = run(region="us-east-1", stack="big", azCount=6, highAvailability=True,
                conntrackMax=4194304, healthCheckTargets=[f"endpoint-{i}.example.com:443"
                                                          for i in range(8)])
    for template in graph.of_type(TEMPLATE):
        packed = len(template.inputs["userData"]) * 3 // 4
        # 46 bytes to spare with eight long targets (several public addresses took 0.6 KiB,
        # the hooks of the connection handover 0.13 KiB; past the limit rendering stops with
        # UserDataError): the handover itself (1.6 KiB more) needs the agent delivered
        # another way
        assert packed < EC2_USER_DATA_LIMIT - 32, packed


def test_the_release_changes_with_what_is_launched_and_only_then(run: Any) -> None:
    def release(**keys: Any) -> str:
        graph = ha(run, 2, **keys)
        tags = {t["key"]: t["value"] for t in graph.of_type(GROUP)[0].inputs["tags"]}
        return str(tags[RELEASE_TAG])

    base = release()
    assert release() == base
    assert release(natInstanceType="t4g.micro") != base
    assert release(amiId="ami-0123456789abcdef0") != base
    assert release(conntrackTcpTimeWaitTimeout=15) != base
    assert release(failbackAfterSeconds=90) != base


def test_the_agents_may_write_only_to_this_stacks_routes_and_groups(run: Any) -> None:
    graph = ha(run, 2)
    policy = graph.named("ha-nat-ha")
    document = json.loads(policy.inputs["policy"])
    read, routes, health = document["Statement"]
    assert read == {"Sid": "ReadRoutesInterfacesAndGroups", "Effect": "Allow",
                    "Action": list(READ_ACTIONS), "Resource": "*"}
    assert all(action.split(":")[1].startswith("Describe") for action in read["Action"])
    tables = sorted(graph.exports["private_route_table_ids"].values())
    assert routes == {"Sid": "MoveThisStacksRoutes", "Effect": "Allow",
                      "Action": "ec2:ReplaceRoute",
                      "Resource": [f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT}:route-table/{t}"
                                   for t in tables],
                      # a route table of another VPC, however its id got here, grants nothing
                      "Condition": {"StringEquals": {
                          "ec2:Vpc": f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT}:vpc/"
                                     f"{graph.exports['vpc_id']}"}}}
    group_tag = health["Condition"]["StringEquals"][f"aws:ResourceTag/{HA_GROUP_TAG}"]
    assert health["Action"] == "autoscaling:SetInstanceHealth"
    assert health["Resource"].startswith(f"arn:aws:autoscaling:us-east-1:{MOCK_ACCOUNT}:")
    for group in graph.of_type(GROUP):
        tags = {t["key"]: t["value"] for t in group.inputs["tags"]}
        # unique per deployment: organization/project/stack/component/VPC
        assert tags[HA_GROUP_TAG] == group_tag == \
            f"organization/nat-instance-vpc/ha/ha-nat/{graph.exports['vpc_id']}"
    # nothing else: no address moves, no interface changes, no wildcard writes
    assert len(document["Statement"]) == 3
    role = graph.named("ha-nat-role")
    assert policy.inputs["role"] == role.id
    # the groups wait for the policy: agents have their rights from their first second
    assert all(policy.urn in g.dependencies for g in graph.of_type(GROUP))


def test_the_security_group_lets_the_nats_talk_to_each_other_only(run: Any) -> None:
    graph = ha(run, 2)
    group = graph.of_type("aws:ec2/securityGroup:SecurityGroup")[0]
    status = [r for r in graph.resources if r.name.endswith(f"udp-{STATUS_PORT}-self")]
    assert sorted(r.type.split(":")[-1] for r in status) == ["SecurityGroupEgressRule",
                                                             "SecurityGroupIngressRule"]
    for rule in status:
        assert rule.inputs["referencedSecurityGroupId"] == group.id
        assert "cidrIpv4" not in rule.inputs
        assert rule.inputs["ipProtocol"] == "udp" and rule.inputs["fromPort"] == STATUS_PORT


def destroy_order(graph: Graph) -> list[str]:
    """The order `pulumi destroy` deletes in: a resource before what it depends on, a child
    before its parent."""
    names = {r.urn: r.name for r in graph.resources}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for resource in graph.resources:
        # edges point from what goes later to what goes first
        for dependency in resource.dependencies:
            if dependency in names:
                sorter.add(names[dependency], resource.name)
        if resource.parent in names:
            sorter.add(names[resource.parent], resource.name)
        sorter.add(resource.name)
    return list(sorter.static_order())


def test_destroy_removes_the_instances_before_their_interface_and_address(run: Any) -> None:
    order = destroy_order(ha(run, 2))
    for zone in ZONES[:2]:
        position = {name: order.index(name) for name in order if name.endswith(zone)}
        group, template = position[f"ha-nat-asg-{zone}"], position[f"ha-nat-lt-{zone}"]
        interface, association = position[f"ha-nat-eni-{zone}"], \
            position[f"ha-nat-eip-assoc-{zone}"]
        address = position[f"ha-nat-eip-{zone}"]
        # the group (and so its instance) first; then the template; the interface only once
        # nothing is attached to it; the address once it is no longer associated
        assert group < template < interface
        assert group < association < address
        assert association < interface
        assert position[f"ha-nat-default-route-{zone}"] < interface


def test_plain_nats_also_leave_before_their_address(run: Any) -> None:
    order = destroy_order(run(stack="plain", azCount=1))
    assert order.index("plain-nat-eip-assoc-us-east-1a") < order.index("plain-nat-eip-us-east-1a")
    assert order.index("plain-nat-eip-assoc-us-east-1a") < order.index("plain-nat-us-east-1a")


def test_high_availability_needs_elastic_ips(run: Any) -> None:
    with pytest.raises(ProgramError) as raised:
        run(stack="bad", azCount=2, highAvailability=True, useElasticIp=False)
    assert raised.value.registered == 0
    assert "nat-instance-vpc:useElasticIp = false: high availability keeps each AZ's public " \
           "address on a network interface that outlives its instances, so it needs Elastic " \
           "IPs. Fix: leave it true, or turn nat-instance-vpc:highAvailability off" \
           in str(raised.value)


def test_switching_a_stack_to_high_availability_keeps_its_elastic_ips(run: Any) -> None:
    plain = {r.urn for r in run(stack="same", azCount=2).of_type(EIP)}
    highly_available = {r.urn for r in run(stack="same", azCount=2,
                                           highAvailability=True).of_type(EIP)}
    assert plain == highly_available  # the same resources: the addresses stay
