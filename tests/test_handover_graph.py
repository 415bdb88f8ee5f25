"""keepConnections (issue 16) in the resource graph, under Pulumi's mocks: the standby
address on each NAT's interface, the spare Elastic IP, what the agents are told, the IAM
statement that lets them move exactly the stack's addresses, the conntrackd rules, and the
refusals."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from nat.design.userdata import (
    agent_object_key,
    agent_script,
    decode_user_data,
    loader_script,
    parse_user_data,
)
from natctl.offline import ProgramError
from natctl.plan import plan_stack
from tests.test_addresses_graph import EIP, ENI, TEMPLATE, A, B
from tests.test_plan import stack_dir

POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET, OBJECT = "aws:s3/bucket:Bucket", "aws:s3/bucketObjectv2:BucketObjectv2"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def agent_document(template: Any) -> dict[str, Any]:
    settings = parse_user_data(decode_user_data(template.inputs["userData"])).agent
    assert settings is not None
    return settings.to_document()


def test_each_interface_keeps_a_standby_address_the_agents_are_told_of(run: Any) -> None:
    graph = run(azCount=2, highAvailability=True, keepConnections=True)
    interfaces = {zone: next(e for e in graph.of_type(ENI) if e.name.endswith(zone))
                  for zone in (A, B)}
    for interface in interfaces.values():
        assert interface.inputs["privateIpsCount"] == 1
    eips = graph.of_type(EIP)
    [spare] = [e for e in eips if e.name.endswith("-eip-spare")]
    assert len(eips) == 3  # one per AZ and the spare
    document = agent_document(graph.of_type(TEMPLATE)[0])
    assert document["handover"] is True and document["spare"] == spare.id
    for zone, interface in interfaces.items():
        nat = document["nats"][zone]
        standby = [ip for ip in interface.inputs["privateIps"]
                   if ip != interface.inputs["privateIp"]]
        assert nat["standby"] == max(standby, key=ipaddress.IPv4Address)
        assert nat["allocation"] in {e.id for e in eips if e is not spare}
    assert len({document["nats"][z]["allocation"] for z in (A, B)}) == 2

    [ha_policy] = [p for p in graph.of_type(POLICY) if p.name.endswith("-ha")]
    policy = json.loads(ha_policy.inputs["policy"])
    [moves] = [s for s in policy["Statement"] if s["Sid"] == "MoveThisStacksAddresses"]
    assert moves["Action"] == "ec2:AssociateAddress"
    allowed = {arn.rsplit("/", 1)[1] for arn in moves["Resource"]}
    assert allowed == {e.id for e in eips} | {e.id for e in interfaces.values()}

    sync = [r for r in graph.of_type(INGRESS) if r.inputs.get("ipProtocol") == "udp" and
            r.inputs.get("fromPort") == 3780]
    assert len(sync) == 1 and sync[0].inputs["toPort"] == 3785
    assert "referencedSecurityGroupId" in sync[0].inputs


def test_without_it_nothing_changes(run: Any) -> None:
    graph = run(azCount=2, highAvailability=True)
    assert all("privateIpsCount" not in e.inputs or not e.inputs["privateIpsCount"]
               for e in graph.of_type(ENI))
    assert not [e for e in graph.of_type(EIP) if e.name.endswith("-eip-spare")]
    [ha_policy] = [p for p in graph.of_type(POLICY) if p.name.endswith("-ha")]
    assert "ec2:AssociateAddress" not in ha_policy.inputs["policy"]
    assert not graph.of_type(BUCKET)
    document = agent_document(graph.of_type(TEMPLATE)[0])
    assert "handover" not in document and "standby" not in document["nats"][A]
    assert "class Handover" not in decode_user_data(graph.of_type(TEMPLATE)[0].inputs[
        "userData"])


@pytest.mark.parametrize(("keys", "expected"), [
    ({"keepConnections": True},
     "nat-instance-vpc:keepConnections = true: connections move between NATs only with high "
     "availability. Fix: turn nat-instance-vpc:highAvailability on, or this off"),
    ({"keepConnections": True, "highAvailability": True, "publicAddressesPerNat": 2,
      "natInstanceType": "t4g.small"},
     "nat-instance-vpc:publicAddressesPerNat = 2: keeping connections moves one Elastic IP "
     "per AZ (this release)"),
])
def test_refused_before_any_resource(run: Any, keys: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProgramError) as raised:
        run(azCount=2, **keys)
    assert expected in str(raised.value)
    assert raised.value.registered == 0


def test_the_agent_is_fetched_from_a_private_object_user_data_names_by_its_hash(
        run: Any) -> None:
    graph = run(azCount=2, highAvailability=True, keepConnections=True)
    [bucket], [block], [stored] = (graph.of_type(BUCKET), graph.of_type(BLOCK),
                                   graph.of_type(OBJECT))
    assert block.inputs["bucket"] == bucket.id and all(
        block.inputs[key] for key in ("blockPublicAcls", "blockPublicPolicy",
                                      "ignorePublicAcls", "restrictPublicBuckets"))
    assert stored.inputs["bucket"] == bucket.id
    assert stored.inputs["content"] == agent_script(handover=True)
    key, digest = agent_object_key(stored.inputs["content"])
    assert stored.inputs["key"] == key
    for template in graph.of_type(TEMPLATE):
        user_data = decode_user_data(template.inputs["userData"])
        assert loader_script().rstrip() in user_data and "class Handover" not in user_data
        source = json.loads(user_data.split("<<'NAT_AGENT_OBJECT_END'\n")[1].split("\n")[0])
        assert source == {"bucket": bucket.id, "key": key,
                          "region": "us-east-1", "sha256": digest}
    [ha_policy] = [p for p in graph.of_type(POLICY) if p.name.endswith("-ha")]
    [fetch] = [s for s in json.loads(ha_policy.inputs["policy"])["Statement"]
               if s["Sid"] == "FetchTheAgent"]
    assert fetch == {"Sid": "FetchTheAgent", "Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{bucket.id}/{key}"}


def test_the_plan_prices_the_spare_address(tmp_path: Any) -> None:
    project = stack_dir(tmp_path, "kept", {"aws:region": "us-east-1",
                                           "nat-instance-vpc:azCount": 2,
                                           "nat-instance-vpc:highAvailability": True,
                                           "nat-instance-vpc:keepConnections": True})
    planned = plan_stack("kept", 100, project)
    synced = [r for r in planned["security_group_rules"] if r["protocol"] == "udp" and
              r["why"].startswith("connection state")]
    assert {(r["direction"], r["port"]) for r in synced} == {("inbound", "3780-3785"),
                                                             ("outbound", "3780-3785")}
    cost = planned["cost"]
    [spare] = [x for x in cost["nat_instances"] if x["item"].startswith("spare Elastic IP")]
    assert spare["quantity"] == 730 and spare["monthly"] == pytest.approx(730 * 0.005,
                                                                         abs=0.01)
    [quota] = [n for n in cost["notes"] if n.startswith("Elastic IPs:")]
    assert "this stack allocates 3" in quota
