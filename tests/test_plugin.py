"""The real plugin process, spoken to over gRPC as the Pulumi engine speaks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi.runtime.sync_await import _sync_await

from nat import __version__
from tests.fake_engine import EngineHarness

ROOT = Path(__file__).resolve().parent.parent
STACK_URN = "urn:pulumi:dev::pkgtest::pulumi:pulumi:Stack::pkgtest-dev"


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineHarness]:
    with EngineHarness() as harness:
        yield harness


def test_plugin_yaml_runs_python_from_its_own_venv() -> None:
    plugin = yaml.safe_load((ROOT / "provider" / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"
    assert plugin["runtime"]["options"]["virtualenv"] == "venv"
    assert (ROOT / "provider" / "requirements.txt").read_text().count("-r ../requirements.txt")


def test_get_plugin_info_and_schema(engine: EngineHarness) -> None:
    assert engine.provider.GetPluginInfo(empty_pb2.Empty()).version == __version__
    answer = engine.provider.GetSchema(provider_pb2.GetSchemaRequest(version=0))
    assert json.loads(answer.schema) == json.loads(
        (ROOT / "provider" / "schema.json").read_text())


def construct(engine: EngineHarness, token: str, name: str, inputs: dict[str, Any],
              dependencies: dict[str, list[str]] | None = None) -> Any:
    struct = _sync_await(rpc.serialize_properties(inputs, {}))
    request = provider_pb2.ConstructRequest(
        project=engine.project, stack=engine.stack, monitorEndpoint=engine.address,
        type=token, name=name, parent=STACK_URN, inputs=struct, dryRun=False,
        organization="organization",
        inputDependencies={key: provider_pb2.ConstructRequest.PropertyDependencies(urns=urns)
                           for key, urns in (dependencies or {}).items()})
    return engine.provider.Construct(request, timeout=60)


def test_construct_nat_instance_vpc(engine: EngineHarness) -> None:
    response = construct(engine, "nat:index:NatInstanceVpc", "guide", {
        "availabilityZones": ["us-east-1a", "us-east-1b"], "vpcCidr": "10.3.0.0/16",
        "instance": {"instanceType": "t4g.micro", "conntrack": {"maxEntries": 200000.0}}})
    assert response.urn == "urn:pulumi:dev::pkgtest::nat:index:NatInstanceVpc::guide"
    state = rpc.deserialize_properties(response.state)
    assert state["vpcCidr"] == "10.3.0.0/16"
    assert sorted(state["natPublicIps"]) == ["us-east-1a", "us-east-1b"]
    registered = [r for r in engine.recording.registrations if r["name"].startswith("guide")]
    types = [r["type"] for r in registered]
    assert types.count("aws:ec2/instance:Instance") == 2
    assert types.count("aws:ec2/subnet:Subnet") == 4
    nat = next(r for r in registered if r["type"] == "aws:ec2/instance:Instance")
    assert nat["args"]["instanceType"] == "t4g.micro"
    # every resource hangs under the component the engine asked for
    assert all(r["urn"].startswith("urn:pulumi:dev::pkgtest::nat:index:NatInstanceVpc")
               for r in registered)


def test_construct_nat_instances_with_an_input_from_another_resource(
        engine: EngineHarness) -> None:
    vpc_urn = "urn:pulumi:dev::pkgtest::awsx:ec2:Vpc::shared"
    # ids from another resource are checked at deploy time: AWS (the mocks) knows them
    engine.mocks.subnets["subnet-0123456789abcdef0"] = {"vpcId": "vpc-0123456789abcdef0",
                                                       "availabilityZone": "us-east-1a"}
    engine.mocks.route_tables["rtb-0123456789abcdef0"] = {"vpcId": "vpc-0123456789abcdef0"}
    response = construct(engine, "nat:index:NatInstances", "edge", {
        "vpcId": "vpc-0123456789abcdef0", "vpcCidrBlocks": ["10.0.0.0/16"],
        "availabilityZones": ["us-east-1a"],
        "publicSubnetIds": {"us-east-1a": "subnet-0123456789abcdef0"},
        "privateRouteTableIds": {"us-east-1a": ["rtb-0123456789abcdef0"]},
    }, dependencies={"vpcId": [vpc_urn], "publicSubnetIds": [vpc_urn],
                     "privateRouteTableIds": [vpc_urn]})
    state = rpc.deserialize_properties(response.state)
    assert set(state) >= {"securityGroupId", "natInstanceIds", "natPublicIps"}
    group = next(r for r in engine.recording.registrations if r["name"] == "edge-sg")
    assert group["args"]["vpcId"] == "vpc-0123456789abcdef0"
    # the maps came whole, as one value with dependencies: split, they keep them
    route = next(r for r in engine.recording.registrations
                 if r["name"] == "edge-default-route-us-east-1a")
    assert route["args"]["routeTableId"] == "rtb-0123456789abcdef0"
    assert vpc_urn in route["dependencies"]


def test_construct_refuses_bad_arguments_per_property(engine: EngineHarness) -> None:
    before = len(engine.recording.registrations)
    with pytest.raises(grpc.RpcError) as raised:
        construct(engine, "nat:index:NatInstanceVpc", "bad", {
            "availabilityZones": ["us-east-1a"], "vpcCidr": "10.0.0.0/8",
            "access": {"sshCidr": "0.0.0.0/0"}})
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert 'invalid arguments for NatInstanceVpc "bad" (2 problems)' in details
    assert 'vpcCidr = "10.0.0.0/8": prefix /8 is outside /16../28' in details
    assert "Traceback" not in details
    assert len(engine.recording.registrations) == before


def test_construct_with_output_values_as_a_current_sdk_sends_them(
        engine: EngineHarness) -> None:
    """Node and Go SDKs send each resource-derived value as an output value inside a plain
    map: the keys (AZs) are known even when the ids are not yet."""
    vpc_urn = "urn:pulumi:dev::pkgtest::awsx:ec2:Vpc::shared"

    def output_value(value: str) -> dict[str, Any]:
        return {rpc._special_sig_key: rpc._special_output_value_sig, "value": value,
                "dependencies": [vpc_urn]}

    struct = struct_pb2.Struct()
    struct.update({"vpcId": output_value("vpc-0123456789abcdef0"),
                   "vpcCidrBlocks": ["10.0.0.0/16"], "availabilityZones": ["us-east-1a"],
                   "publicSubnetIds": {"us-east-1a": output_value("subnet-0123456789abcdef0")},
                   "privateRouteTableIds": {"us-east-1a": [output_value(
                       "rtb-0123456789abcdef0")]}})
    request = provider_pb2.ConstructRequest(
        project=engine.project, stack=engine.stack, monitorEndpoint=engine.address,
        type="nat:index:NatInstances", name="ov", parent=STACK_URN, inputs=struct,
        accepts_output_values=True, organization="organization")
    state = rpc.deserialize_properties(engine.provider.Construct(request, timeout=60).state)
    assert sorted(state["natInstanceIds"]) == ["us-east-1a"]
    route = next(r for r in engine.recording.registrations if r["name"].startswith("ov-default"))
    assert route["args"]["routeTableId"] == "rtb-0123456789abcdef0"
    # the route waits for what the table came from
    assert vpc_urn in route["dependencies"]
