"""The examples a user copies: every property they set exists in the schema, with its type.

The TypeScript example is read with the TypeScript compiler's own parser (tests/ts); the YAML
example is data. Values computed at run time (outputs, `${...}` interpolations, variables) are
accepted where the schema takes any value of the field's type; literals must match it. The
Python example runs under the mocks in tests/test_nat_instances.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nat.provider import schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TS_TOOLS = ROOT / "tests" / "ts"


def check(shape: dict[str, Any], spec: dict[str, Any], document: dict[str, Any],
          where: str) -> list[str]:
    """Problems with one value (its shape) against its schema spec."""
    kind = shape["kind"]
    if kind == "expression":
        # a plain field takes a value known when the program runs: TypeScript's types (from
        # the schema) refuse an output there, and so does the engine
        if spec.get("plain") and not shape.get("plain"):
            return [f"{where}: plain (a literal or a variable holding one), got "
                    f"{shape['text']} ({shape.get('type', 'an expression')})"]
        return []
    if kind == "unreadable":
        return [f"{where}: cannot be read ({shape['text']})"]
    if "$ref" in spec:
        properties = document["types"][spec["$ref"].removeprefix("#/types/")]["properties"]
        if kind != "object":
            return [f"{where}: an object is expected, got a {kind}"]
        return [problem for name, value in shape["properties"].items()
                for problem in (check(value, properties[name], document, f"{where}.{name}")
                                if name in properties
                                else [f"{where}.{name}: no such property"])]
    expected = spec["type"]
    if expected == "array":
        if kind != "array":
            return [f"{where}: a list is expected, got a {kind}"]
        return [p for i, item in enumerate(shape["items"])
                for p in check(item, spec["items"], document, f"{where}[{i}]")]
    if expected == "object":
        if kind != "object":
            return [f"{where}: a map is expected, got a {kind}"]
        return [p for key, value in shape["properties"].items()
                for p in check(value, spec["additionalProperties"], document, f"{where}.{key}")]
    if expected == "integer":
        fits = kind == "number" and float(shape["value"]).is_integer()
    else:
        fits = kind == {"string": "string", "number": "number", "boolean": "boolean"}[expected]
    return [] if fits else [f"{where}: a {expected} is expected, got {shape.get('value')!r}"]


def check_component(component: str, args: dict[str, Any]) -> list[str]:
    document = schema()
    resource = document["resources"][f"nat:index:{component}"]
    spec = {"$ref": f"#/types/__{component}"}
    document = {**document, "types": {**document["types"],
                                      f"__{component}": {"properties":
                                                         resource["inputProperties"]}}}
    problems = check(args, spec, document, component)
    given = set(args.get("properties", {}))
    problems += [f"{component}.{name}: required, not given"
                 for name in resource["requiredInputs"] if name not in given]
    return problems


def yaml_shape(value: Any, config: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A YAML value's shape; `${key}` of the program's config is a plain value (known when
    the program runs), any other interpolation (a resource's output) is not."""
    if isinstance(value, str):
        return {"kind": "expression", "text": value,
                "plain": value.removeprefix("${").removesuffix("}") in config} \
            if value.startswith("${") else {"kind": "string", "value": value}
    if isinstance(value, bool):
        return {"kind": "boolean", "value": value}
    if isinstance(value, (int, float)):
        return {"kind": "number", "value": value}
    if isinstance(value, list):
        return {"kind": "array", "items": [yaml_shape(v, config) for v in value]}
    return {"kind": "object", "properties": {k: yaml_shape(v, config) for k, v in value.items()}}


def test_the_checker_catches_what_it_must() -> None:
    """The checks below would pass vacuously if the checker did not look."""
    good = yaml_shape({"availabilityZones": ["us-east-1a"], "vpcCidr": "10.0.0.0/16"})
    assert check_component("NatInstanceVpc", good) == []
    bad = yaml_shape({"availabilityZones": "us-east-1a", "vpcCird": "10.0.0.0/16",
                      "instance": {"instanceType": 3, "conntrack": {"maxEntries": 1.5}},
                      "singleNat": "yes"})
    assert sorted(check_component("NatInstanceVpc", bad)) == [
        "NatInstanceVpc.availabilityZones: a list is expected, got a string",
        "NatInstanceVpc.instance.conntrack.maxEntries: a integer is expected, got 1.5",
        "NatInstanceVpc.instance.instanceType: a string is expected, got 3",
        "NatInstanceVpc.singleNat: a boolean is expected, got 'yes'",
        "NatInstanceVpc.vpcCird: no such property"]
    # an output where the schema says plain (a resource's, in YAML); config is plain
    outputs = yaml_shape({"availabilityZones": ["${vpc.zone}"], "vpcCidr": "${cidr}"},
                         frozenset({"cidr"}))
    assert check_component("NatInstanceVpc", outputs) == [
        "NatInstanceVpc.availabilityZones[0]: plain (a literal or a variable holding one), got "
        "${vpc.zone} (an expression)"]
    assert check_component("NatInstances", yaml_shape({})) == [
        f"NatInstances.{name}: required, not given" for name in
        schema()["resources"]["nat:index:NatInstances"]["requiredInputs"]]


def test_the_yaml_example() -> None:
    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text())
    assert program["runtime"] == "yaml"
    assert (EXAMPLES / "yaml" / program["packages"]["nat"] / "PulumiPlugin.yaml").is_file()
    ours = {name: r for name, r in program["resources"].items()
            if r["type"].startswith("nat:")}
    assert ours
    for name, resource in ours.items():
        component = resource["type"].split(":")[-1]
        assert f"nat:index:{component}" in schema()["resources"], name
        assert check_component(component, yaml_shape(resource["properties"],
                                                      frozenset(program["config"]))) == []
    for value in program["outputs"].values():
        output = value.removeprefix("${").removesuffix("}").split(".")[1]
        component = ours[value[2:].split(".")[0]]["type"].split(":")[-1]
        assert output in schema()["resources"][f"nat:index:{component}"]["properties"], value


def typescript_calls(path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (TS_TOOLS / "node_modules" / "typescript").is_dir():
        if os.environ.get("CI"):
            raise RuntimeError("CI must check the TypeScript example: `make setup` installs "
                               "node's typescript package into tests/ts")
        pytest.skip("node or tests/ts/node_modules missing: run `make setup`")
    result = subprocess.run([node, str(TS_TOOLS / "literals.js"), str(path)],
                            capture_output=True, text=True, check=True, timeout=60)
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_the_typescript_example() -> None:
    index = EXAMPLES / "typescript" / "index.ts"
    found = typescript_calls(index)
    assert found["syntaxErrors"] == []
    assert [c["component"] for c in found["calls"]] == ["NatInstances"]
    for call in found["calls"]:
        assert check_component(call["component"], call["args"]) == []
    document = schema()
    assert f'from "@{document["namespace"]}/{document["name"]}"' in index.read_text()
    program = yaml.safe_load((EXAMPLES / "typescript" / "Pulumi.yaml").read_text())
    assert (EXAMPLES / "typescript" / program["packages"]["nat"] / "PulumiPlugin.yaml").is_file()


def test_typescript_reader_refuses_outputs_for_plain_fields(tmp_path: Path) -> None:
    """Outputs where the schema says plain (as tsc would, against typings from the schema);
    a variable holding a plain value passes."""
    wrong = tmp_path / "wrong.ts"
    wrong.write_text(
        'import * as pulumi from "@pulumi/pulumi";\nimport * as nat from "x";\n'
        'const zones = pulumi.output(["us-east-1a"]);\nconst cidr = "10.0.0.0/16";\n'
        'const lifted: pulumi.Output<string> = pulumi.output(cidr);\n'
        'new nat.NatInstances("n", { vpcId: lifted, vpcCidrBlocks: [cidr, lifted],\n'
        '  availabilityZones: zones, publicSubnetIds: { "us-east-1a": lifted },\n'
        '  privateRouteTableIds: { "us-east-1a": [lifted] } });\n')
    [call] = typescript_calls(wrong)["calls"]
    problems = check_component("NatInstances", call["args"])
    assert [p.split(":")[0] for p in problems] == [
        "NatInstances.vpcCidrBlocks[1]", "NatInstances.availabilityZones"], problems
    assert problems[0].endswith("got lifted (pulumi.Output<string>)")


def test_typescript_reader_sees_a_wrong_argument(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.ts"
    wrong.write_text('import * as nat from "x";\nnew nat.NatInstanceVpc("n", '
                     '{ availabilityZones: "us-east-1a", vpcCdir: "10.0.0.0/16" });\n')
    [call] = typescript_calls(wrong)["calls"]
    assert check_component("NatInstanceVpc", call["args"]) == [
        "NatInstanceVpc.availabilityZones: a list is expected, got a string",
        "NatInstanceVpc.vpcCdir: no such property"]
