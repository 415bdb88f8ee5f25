"""The multi-language package: its schema, and Construct as another language calls it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pulumi.errors import InputPropertiesError
from pulumi.provider.server import ProviderServicer
from pulumi.resource import ResourceOptions
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from nat import __version__
from nat.design.userdata import decode_user_data
from nat.provider import provider, schema
from natctl.offline import AwsMocks, Graph, run_under_mocks

ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN = ROOT / "provider" / "schema.json"
TOKEN_PATTERN = re.compile(r"^[a-zA-Z][-a-zA-Z0-9_]*:([^0-9][a-zA-Z0-9._/-]*)?:"
                           r"[^0-9][a-zA-Z0-9._/-]*$")
VPC = "vpc-0a1b2c3d4e5f60718"
SUBNET_A, SUBNET_B = "subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"
RTB_A, RTB_B, RTB_B2 = "rtb-0aaaaaaaaaaaaaaa1", "rtb-0bbbbbbbbbbbbbbb1", "rtb-0bbbbbbbbbbbbbbb2"
A, B = "us-east-1a", "us-east-1b"


# --- the schema ----------------------------------------------------------------------------------
def test_checked_in_schema_is_what_the_classes_generate() -> None:
    assert json.loads(CHECKED_IN.read_text()) == schema(), \
        "provider/schema.json is stale: run `python -m nat.provider schema > provider/schema.json`"


def test_schema_names_the_package_and_its_components() -> None:
    document = schema()
    assert document["name"] == "nat" and document["version"] == __version__
    assert document["namespace"] == "nat-instance-vpc"
    assert set(document["resources"]) == {"nat:index:NatInstances", "nat:index:NatInstanceVpc"}
    for resource in document["resources"].values():
        assert resource["isComponent"] is True


def property_specs(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property spec of the schema, named by where it is."""
    found = []
    for token, resource in document["resources"].items():
        for kind in ("inputProperties", "properties"):
            found += [(f"{token}.{kind}.{name}", spec)
                      for name, spec in resource.get(kind, {}).items()]
    for token, type_spec in document.get("types", {}).items():
        found += [(f"{token}.{name}", spec) for name, spec in type_spec["properties"].items()]
    return found


def test_schema_is_well_formed() -> None:
    """What Pulumi's package metaschema demands of the parts we use (tokens, references,
    required lists, primitive types), checked here without the CLI; the metaschema itself is
    used too when PULUMI_METASCHEMA names a copy of pkg/codegen/schema/pulumi.json."""
    document = schema()
    assert re.match(r"^[a-zA-Z][-a-zA-Z0-9_]*$", document["name"])
    assert re.match(r"^v?\d+\.\d+\.\d+$", document["version"])
    assert re.match(r"^([a-z][a-z0-9]*)(-[a-z0-9]+)*$", document["namespace"])
    for token in [*document["resources"], *document.get("types", {})]:
        assert TOKEN_PATTERN.match(token), token

    # the metaschema's top level admits these keys only (additionalProperties: false)
    assert set(document) <= {
        "name", "displayName", "version", "description", "keywords", "homepage", "license",
        "attribution", "repository", "logoUrl", "pluginDownloadURL", "configurationDocsUrl",
        "validateCredentialsOnNew", "publisher", "namespace", "meta", "config", "types",
        "dependencies", "provider", "resources", "functions", "language", "parameterization",
        "allowedPackageNames"}

    def check_type(where: str, spec: dict[str, Any]) -> None:
        """A typeSpec is exactly one of: named, array, map, primitive (the metaschema's
        oneOf, each kind forbidding the others' keys)."""
        if "$ref" in spec:
            reference = spec["$ref"]
            assert reference.startswith("#/types/"), where
            assert reference.removeprefix("#/types/") in document["types"], where
            assert "items" not in spec and "additionalProperties" not in spec, where
        elif spec["type"] == "array":
            assert "additionalProperties" not in spec, where
            check_type(where + "[]", spec["items"])
        elif spec["type"] == "object":
            assert "items" not in spec, where
            check_type(where + "{}", spec["additionalProperties"])
        else:
            assert spec["type"] in ("boolean", "integer", "number", "string"), where
            assert "items" not in spec and "additionalProperties" not in spec, where

    for where, spec in property_specs(document):
        check_type(where, spec)
        assert spec.get("description"), f"{where} has no description"
    for token, resource in document["resources"].items():
        assert set(resource["requiredInputs"]) <= set(resource["inputProperties"]), token
        assert set(resource["required"]) <= set(resource["properties"]), token
    metaschema = os.environ.get("PULUMI_METASCHEMA")
    if metaschema:
        text = Path(metaschema).read_text().replace("(?<", "(?P<")  # Python's re spelling
        jsonschema.validate(document, json.loads(text))


def test_shared_fields_are_the_same_in_both_components() -> None:
    resources = schema()["resources"]
    mine = resources["nat:index:NatInstances"]["inputProperties"]
    theirs = resources["nat:index:NatInstanceVpc"]["inputProperties"]
    shared = set(mine) & set(theirs)
    assert shared == {"availabilityZones", "singleNat", "instance", "access",
                      "highAvailability", "monitoring", "tags"}
    for name in shared - {"availabilityZones"}:
        assert mine[name] == theirs[name], name


def test_fields_that_decide_how_many_resources_exist_are_plain() -> None:
    resources = schema()["resources"]
    natinstances = resources["nat:index:NatInstances"]["inputProperties"]
    for name in ("availabilityZones", "vpcCidrBlocks", "publicSubnetIds",
                 "privateRouteTableIds", "privateCidrBlocks"):
        assert natinstances[name]["plain"] is True, name
    assert "plain" not in natinstances["vpcId"]
    assert "plain" not in natinstances["publicSubnetIds"]["additionalProperties"]
    assert "plain" not in natinstances["privateRouteTableIds"]["additionalProperties"]["items"]


def test_shared_outputs_are_the_same_in_both_components_and_the_readme_lists_them() -> None:
    """The README's "Outputs of both" are exactly the shared outputs, described alike (an
    output one component lacks, or described differently, was a doc that lied)."""
    resources = schema()["resources"]
    mine = resources["nat:index:NatInstances"]["properties"]
    theirs = resources["nat:index:NatInstanceVpc"]["properties"]
    assert set(mine) <= set(theirs), set(mine) - set(theirs)
    for name in mine:
        assert mine[name] == theirs[name], name
    readme = (ROOT / "README.md").read_text()
    both, _, vpc_only = readme.partition("Outputs of both:")[2].partition(
        "`NatInstanceVpc` also")
    listed = re.findall(r"`([a-z][A-Za-z]+)`", both)
    assert [n for n in listed if n != "highAvailability"] == list(mine)
    vpc_only = vpc_only.partition("\n\n")[0]
    assert set(re.findall(r"`([a-z][A-Za-z]+)`", vpc_only)) == set(theirs) - set(mine)


# --- Construct, as a TypeScript or YAML program calls it -----------------------------------------
def construct(token: str, name: str, inputs: dict[str, Any],
              mocks: AwsMocks | None = None) -> tuple[Graph, dict[str, Any]]:
    """The engine's Construct path in process: camelCase inputs serialized as the engine sends
    them, turned back into the component's arguments by the provider, the component built under
    the mocks, its state serialized as the engine gets it back."""
    answer: dict[str, Any] = {}

    def body() -> None:
        struct = _sync_await(rpc.serialize_properties(inputs, {}))
        construct_inputs = _sync_await(ProviderServicer._construct_inputs(struct, {}))
        result = provider().construct(name, token, construct_inputs, ResourceOptions())
        response = _sync_await(ProviderServicer(provider(), [], "")._construct_response(result))
        answer["state"] = rpc.deserialize_properties(response.state)

    graph = run_under_mocks(body, {"aws:region": "us-east-1"}, stack="pkg", mocks=mocks)
    return graph, answer.get("state", {})


def mocked_vpc() -> AwsMocks:
    mocks = AwsMocks("us-east-1")
    mocks.subnets = {SUBNET_A: {"vpcId": VPC, "availabilityZone": A},
                     SUBNET_B: {"vpcId": VPC, "availabilityZone": B}}
    mocks.route_tables = {t: {"vpcId": VPC} for t in (RTB_A, RTB_B, RTB_B2)}
    return mocks


NAT_INSTANCES_INPUTS: dict[str, Any] = {
    "vpcId": VPC,
    "vpcCidrBlocks": ["10.0.0.0/16", "100.64.0.0/16"],
    "availabilityZones": [A, B],
    "publicSubnetIds": {A: SUBNET_A, B: SUBNET_B},
    "privateRouteTableIds": {A: [RTB_A], B: [RTB_B, RTB_B2]},
    "instance": {"instanceType": "c8gn.medium", "useElasticIp": True,
                 "conntrack": {"maxEntries": 262144.0, "tcpTimeWaitTimeout": 15.0}},
    "access": {"sshCidr": "198.51.100.0/24"},
    "tags": {"team": "platform"},
}


def test_nat_instances_through_construct() -> None:
    graph, state = construct("nat:index:NatInstances", "edge", NAT_INSTANCES_INPUTS,
                             mocked_vpc())
    nats = graph.of_type("aws:ec2/instance:Instance")
    assert sorted(n.name for n in nats) == [f"edge-{A}", f"edge-{B}"]
    assert {n.inputs["instanceType"] for n in nats} == {"c8gn.medium"}
    user_data = decode_user_data(nats[0].inputs["userDataBase64"])
    # numbers came as floats over the wire; the instance gets integers
    assert "NAT_CONNTRACK_MAX=262144\nNAT_TCP_TIME_WAIT_TIMEOUT=15\n" in user_data
    assert 'NAT_VPC_CIDRS="10.0.0.0/16 100.64.0.0/16"' in user_data
    routes = graph.of_type("aws:ec2/route:Route")
    by_table = {r.inputs["routeTableId"]: r.inputs["networkInterfaceId"] for r in routes}
    eni = {n.name: n.inputs["primaryNetworkInterfaceId"] for n in nats}
    assert by_table == {RTB_A: eni[f"edge-{A}"], RTB_B: eni[f"edge-{B}"],
                        RTB_B2: eni[f"edge-{B}"]}
    assert all(n.inputs["tags"]["team"] == "platform" for n in nats)
    assert set(state) == {"securityGroupId", "natInstanceIds", "natNetworkInterfaceIds",
                          "natPublicIps", "natPublicIpLists", "natZoneForPrivateRouteTables",
                          "instanceRoleName",
                          "autoScalingGroupNames", "connectionTableSizes", "metricsNamespace",
                          "metricsGroup", "alarmNames", "alarmTopicArn", "dashboardName"}
    assert state["autoScalingGroupNames"] == {}  # plain NATs
    assert state["connectionTableSizes"] == {A: 262144, B: 262144}  # as given
    assert sorted(state["alarmNames"]) == [A, B] and len(state["alarmNames"][A]) == 4
    assert sorted(state["natPublicIps"]) == [A, B]
    assert state["natZoneForPrivateRouteTables"] == {A: A, B: B}
    assert state["natInstanceIds"] == {z: graph.named(f"edge-{z}").id for z in (A, B)}
    # the plain ids were checked with AWS before anything was registered
    lookups = [t for t, _ in graph.invokes if t.startswith("aws:ec2/get")]
    assert lookups.count("aws:ec2/getSubnet:getSubnet") == 2
    assert lookups.count("aws:ec2/getRouteTable:getRouteTable") == 3


def test_nat_instance_vpc_through_construct() -> None:
    graph, state = construct("nat:index:NatInstanceVpc", "guide", {
        "availabilityZones": [A, B], "vpcCidr": "10.7.0.0/16", "singleNat": True,
        "access": {"enableTestRules": True}})
    assert len(graph.of_type("aws:ec2/instance:Instance")) == 1
    assert state["vpcCidr"] == "10.7.0.0/16"
    assert state["natZoneForPrivateRouteTables"] == {A: A, B: A}
    assert sorted(state["privateSubnetIds"]) == [A, B]


@pytest.mark.parametrize(("change", "paths", "message"), [
    ({"availabilityZones": [A]}, ["publicSubnetIds", "privateRouteTableIds"],
     "publicSubnetIds = [\"us-east-1a\", \"us-east-1b\"]: 'us-east-1b' is not one of "
     "availabilityZones"),
    ({"privateRouteTableIds": {A: [RTB_A], B: [RTB_A]}}, ["privateRouteTableIds.us-east-1b"],
     f'privateRouteTableIds.us-east-1b = "{RTB_A}": route table given twice (also under '
     "us-east-1a). Fix: give each route table once"),
    ({"vpcId": "10.0.0.0/16"}, ["vpcId"], 'vpcId = "10.0.0.0/16": not a vpc- id. Fix: give the '
                                          "id of a VPC, like vpc-0123456789abcdef0"),
    ({"publicSubnetIds": {A: SUBNET_A, B: "sg-0123456789abcdef0"}}, ["publicSubnetIds.us-east-1b"],
     'publicSubnetIds.us-east-1b = "sg-0123456789abcdef0": not a subnet- id'),
    ({"instance": {"instanceType": "t4g.tiny", "conntrack": {"maxEntries": 1.5}}},
     ["instance.instanceType", "instance.conntrack.maxEntries"],
     'instance.conntrack.maxEntries = 1.5: not a whole number'),
    ({"vpcCidrBlocks": ["10.0.0.0/16", "10.0.128.0/17"]}, ["vpcCidrBlocks"],
     'vpcCidrBlocks = "10.0.0.0/16": overlaps vpcCidrBlocks 10.0.128.0/17'),
    ({"privateCidrBlocks": ["192.168.0.0/24"]}, ["privateCidrBlocks"],
     'privateCidrBlocks = "192.168.0.0/24": outside the VPC (10.0.0.0/16, 100.64.0.0/16)'),
])
def test_bad_arguments_are_refused_per_property_before_any_resource(
        change: dict[str, Any], paths: list[str], message: str) -> None:
    mocks = mocked_vpc()
    with pytest.raises(InputPropertiesError) as raised:
        construct("nat:index:NatInstances", "edge", {**NAT_INSTANCES_INPUTS, **change}, mocks)
    errors = raised.value.errors or []
    assert [e["property_path"] for e in errors] == paths
    assert any(e["reason"].startswith(message) for e in errors), errors
    assert str(raised.value).startswith('invalid arguments for NatInstances "edge"')
    assert not mocks.counter, "a resource was registered"


def test_a_subnet_of_another_vpc_or_az_is_refused_before_any_resource() -> None:
    mocks = mocked_vpc()
    mocks.subnets[SUBNET_B] = {"vpcId": "vpc-0ffffffffffffffff", "availabilityZone": B}
    mocks.subnets[SUBNET_A] = {"vpcId": VPC, "availabilityZone": "us-east-1c"}
    with pytest.raises(InputPropertiesError) as raised:
        construct("nat:index:NatInstances", "edge", NAT_INSTANCES_INPUTS, mocks)
    assert str(raised.value).splitlines()[1:] == [
        f'  - publicSubnetIds.us-east-1a = "{SUBNET_A}": in us-east-1c, not us-east-1a. Fix: key '
        "each subnet by its own AZ (a NAT in another AZ would carry this AZ's traffic across "
        "AZs)",
        f'  - publicSubnetIds.us-east-1b = "{SUBNET_B}": in vpc-0ffffffffffffffff, not in vpcId '
        f"{VPC}. Fix: give a public subnet of that VPC"]
    assert [e["property_path"] for e in raised.value.errors or []] == [
        "publicSubnetIds.us-east-1a", "publicSubnetIds.us-east-1b"]
    assert not mocks.counter


# --- the Python package ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(built)],
                   check=True, capture_output=True, timeout=300)
    [found] = built.glob("nat_instance_vpc-*.whl")
    return found


USER_PROGRAM = """\
import pulumi
from nat import HighAvailabilityArgs, MonitoringArgs, NatInstances, NatInstancesArgs

# the per-AZ maps built in a loop, as outputs of other resources would be
subnets: dict[str, pulumi.Output[str]] = {}
tables: dict[str, list[pulumi.Output[str]]] = {}
for zone in ["us-east-1a", "us-east-1b"]:
    subnets[zone] = pulumi.Output.from_input("subnet-0123456789abcdef0")
    tables[zone] = [pulumi.Output.from_input("rtb-0123456789abcdef0")]
high_availability: HighAvailabilityArgs = {"enabled": True, "failback_after_seconds": 60}
monitoring: MonitoringArgs = {"alarms": True}
args: NatInstancesArgs = {
    "vpc_id": pulumi.Output.from_input("vpc-0123456789abcdef0"),
    "vpc_cidr_blocks": ["10.0.0.0/16"],
    "availability_zones": ["us-east-1a", "us-east-1b"],
    "public_subnet_ids": subnets,
    "private_route_table_ids": tables,
    "instance": {"INSTANCE_KEY": "t4g.nano"},
    "high_availability": high_availability,
    "monitoring": monitoring,
}
nat = NatInstances("edge", args)
ips: pulumi.Output[dict[str, str]] = nat.nat_public_ips
"""


def type_check(program: str, site: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on a user's program, the package found installed (in `site`)."""
    (work / "program.py").write_text(program)
    (work / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n"
        # pulumi_aws is typed but vast: skipped here as in the project's own config
        "[mypy-pulumi_aws.*]\nfollow_imports = skip\nfollow_untyped_imports = True\n")
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "program.py"],
                          capture_output=True, text=True, cwd=work, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(site)})


def test_a_users_program_type_checks_against_the_wheel(wheel: Path, tmp_path: Path) -> None:
    """mypy --strict checks the args' keys (py.typed), the group types are importable from
    `nat`, and maps of outputs built in a loop are accepted (read-only Mapping types)."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    assert (site / "nat" / "py.typed").exists()
    good = type_check(USER_PROGRAM.replace("INSTANCE_KEY", "instance_type"), site, tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    typo = type_check(USER_PROGRAM.replace("INSTANCE_KEY", "instance_tpye"), site, tmp_path)
    assert typo.returncode == 1
    assert 'Extra key "instance_tpye" for TypedDict "InstanceArgs"' in typo.stdout, typo.stdout
    # a name the package does not export is an error, not Any
    missing = type_check("from nat import NoSuchArgs\n", site, tmp_path)
    assert missing.returncode == 1 and "NoSuchArgs" in missing.stdout, missing.stdout


def test_the_wheel_holds_the_product_only(wheel: Path, tmp_path: Path) -> None:
    """`pip install` gives the components and what `pulumi up` needs, not the test bed, the
    benchmark or the operator commands; the bootstrap script travels with it."""
    assert wheel.name == f"nat_instance_vpc-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names}
    assert packages == {"nat", f"nat_instance_vpc-{__version__}.dist-info"}
    assert "nat/instance/nat-bootstrap.sh" in names and "nat/components/nat_instances.py" in names
    metadata = zipfile.ZipFile(wheel).read(
        f"nat_instance_vpc-{__version__}.dist-info/METADATA").decode()
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    # python-minifier: the agent is shortened to fit EC2's user data (nat/design/userdata.py)
    assert [re.split(r"[<>=]", r.split(":")[1])[0].strip() for r in requirements] == \
        ["pulumi", "pulumi-aws", "botocore", "python-minifier"]

    # installed on its own, it imports and finds its script
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    probe = ("import nat, nat.design.userdata; from nat import NatInstances, NatInstanceVpc; "
             "from nat import HighAvailabilityArgs, MonitoringArgs, InstanceArgs, AccessArgs; "
             "from nat import ConntrackArgs, NatInstancesArgs, NatInstanceVpcArgs; "
             "from nat.testing import NatMocks; "
             "print(nat.__file__); print(len(nat.design.userdata.bootstrap_script()))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path,
                            check=True, timeout=120)
    location, script_size = result.stdout.split()
    assert location.startswith(str(target)) and int(script_size) > 1000
