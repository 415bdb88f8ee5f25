"""Stack configuration: the keys, their defaults, and how they become NatInstanceVpc's arguments.

Pure logic: no Pulumi, no AWS. `parse_stack_config` takes the raw strings Pulumi hands a
program (structured YAML values arrive as JSON text) and returns the component's arguments,
or raises `ArgumentsError` listing every bad value with the key, the value and the fix. The
checks themselves are the components' own (nat/inputs/settings.py,
nat/inputs/validation.py), run here with the stack's key names, so a stack and a direct
caller of the component are held to the same rules.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from nat.inputs import options, validation
from nat.inputs.options import AZ_COUNT, Option
from nat.inputs.settings import (
    NatOptions,
    VpcSettings,
    own_elastic_ips_count,
    read_options,
    read_vpc_layout,
)
from nat.inputs.validation import Problems

PROJECT = "nat-instance-vpc"

# The stack's keys: every option of the table that has one, azCount first.
CONFIG_KEYS: tuple[Option, ...] = tuple(options.stack_options())
CONFIG_KEY_NAMES = frozenset(key.stack_key for key in CONFIG_KEYS if key.stack_key)
_KEY_OF_FIELD = {key.path: key.stack_key for key in CONFIG_KEYS}

# Pulumi treats a declared key without a default as required, so Pulumi.yaml declares the
# optional keys with these "not set" defaults; only keys whose own default is None take them.
UNSET_VALUES = {"string": "", "array": "[]", "integer": "0"}
_OPTIONAL_KEY_TYPES = {key.stack_key: key.kind for key in CONFIG_KEYS if key.default is None}


@dataclass(frozen=True)
class StackSettings:
    """One stack's config, checked: NatInstanceVpc's settings but for the AZ names, which the
    program looks up when `availability_zones` is None."""

    az_count: int
    availability_zones: tuple[str, ...] | None
    vpc_cidr: IPv4Network
    public_subnet_cidrs: tuple[IPv4Network, ...]
    private_subnet_cidrs: tuple[IPv4Network, ...]
    options: NatOptions

    def vpc_settings(self, zones: tuple[str, ...]) -> VpcSettings:
        """The component's settings, once the AZs are chosen (as many as az_count)."""
        return VpcSettings(zones, self.vpc_cidr, self.public_subnet_cidrs,
                           self.private_subnet_cidrs, self.options)


def config_label(namespace: str) -> Any:
    """Field id → `namespace:key`, the name the user typed in `pulumi config set`."""
    def label(field: str) -> str:
        return f"{namespace}:{_KEY_OF_FIELD.get(field, field)}"
    return label


def _is_unset(key: str, value: object) -> bool:
    """Exactly the "not set" default Pulumi.yaml declares; a blank string is an error."""
    key_type = _OPTIONAL_KEY_TYPES.get(key)
    if key_type is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value)
    if key_type == "array":
        try:
            return bool(json.loads(text) == [])
        except json.JSONDecodeError:
            return False
    return text == UNSET_VALUES[key_type] or (key_type == "integer" and text.strip() == "0")


def _convert(problems: Problems, key: Option, text: str) -> Any:
    """A raw config string as the key's type; None (with a problem) when it is not one."""
    where = key.path
    if key.kind == "integer":
        try:
            return int(text)
        except ValueError:
            problems.fail(where, text, "not a whole number", "use an integer")
            return None
    if key.kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        problems.fail(where, text, "not a boolean", "use true or false")
        return None
    if key.kind == "array":
        if not text.startswith("["):  # "a,b" on the command line
            return [part.strip() for part in text.split(",")]
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            problems.fail(where, text, "not a valid list", 'use a YAML list or "a,b"')
            return None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.fail(where, text, "not a list of strings", 'use a YAML list or "a,b"')
            return None
        return items
    return text


def _set(args: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for parent in parents:
        args = args.setdefault(parent, {})
    args[leaf] = value


def stack_values(problems: Problems, given: Mapping[str, object]) -> dict[str, Any]:
    """The given keys' text as typed values, placed at their args paths (parsing, not
    checking: the settings readers check them once, with the stack's key names)."""
    values: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        assert key.stack_key is not None
        if key.stack_key not in given:
            continue
        value = given[key.stack_key]
        text = (value if isinstance(value, str) else json.dumps(value)).strip()
        if not text:
            problems.fail(key.path, text, "empty value",
                          f"set a value or remove it: `pulumi config rm {key.stack_key}`")
            continue
        converted = _convert(problems, key, text)
        if converted is not None:
            _set(values, key.path, converted)
    return values


def parse_stack_config(raw: Mapping[str, str | None], namespace: str = PROJECT,
                       region: str | None = None) -> StackSettings:
    """Validate one stack's config. Raises ArgumentsError naming every bad key."""
    problems = Problems("invalid stack configuration", config_label(namespace))
    given = {k: v for k, v in raw.items() if v is not None and not _is_unset(k, v)}
    for name in sorted(set(given) - CONFIG_KEY_NAMES):
        close = difflib.get_close_matches(name, sorted(CONFIG_KEY_NAMES), n=1)
        hint = f"did you mean {close[0]}?" if close else (
            "known keys: " + ", ".join(sorted(CONFIG_KEY_NAMES)) + ".")
        problems.fail(name, given[name], "unknown key",
                      f"{hint} Remove it with `pulumi config rm {name}`")

    args = stack_values(problems, given)
    az_count = AZ_COUNT.default
    if "az_count" in args:
        assert AZ_COUNT.minimum is not None and AZ_COUNT.maximum is not None
        if not AZ_COUNT.minimum <= args["az_count"] <= AZ_COUNT.maximum:
            problems.fail("az_count", str(args["az_count"]),
                          f"out of range {AZ_COUNT.minimum}..{AZ_COUNT.maximum}",
                          f"use an integer from {AZ_COUNT.minimum} to {AZ_COUNT.maximum}")
        else:
            az_count = args["az_count"]
    zones = None
    if "availability_zones" in args:
        listed = validation.availability_zones(problems, "availability_zones",
                                               args["availability_zones"], region)
        if listed is not None and len(listed) != az_count:
            problems.fail("availability_zones", listed,
                          f"{len(listed)} AZs listed but azCount is {az_count}",
                          f"list exactly {az_count} AZ{'' if az_count == 1 else 's'} or set "
                          f"azCount to {len(listed)}")
        elif listed is not None:
            zones = tuple(listed)
    layout = read_vpc_layout(problems, args.get("vpc_cidr"), args.get("public_subnet_cidrs"),
                             args.get("private_subnet_cidrs"), az_count)
    nat_options = read_options(problems, args)
    own_elastic_ips_count(problems, nat_options.instance,
                          1 if nat_options.single_nat else az_count)
    problems.raise_if_any()
    assert layout is not None
    return StackSettings(az_count, zones, *layout, nat_options)


def config_namespace_values(all_config: Mapping[str, object],
                            namespace: str = PROJECT) -> dict[str, str | None]:
    """Pick this project's keys out of Pulumi's flat `namespace:key` config map."""
    prefix = namespace + ":"
    values: dict[str, str | None] = {}
    for full_key, value in all_config.items():
        if full_key.startswith(prefix):
            values[full_key[len(prefix):]] = value if isinstance(value, str) or value is None \
                else json.dumps(value)
    return values


def project_config_schema() -> dict[str, dict[str, object]]:
    """The `config:` block Pulumi.yaml declares, derived from CONFIG_KEYS (a test keeps it so)."""
    schema: dict[str, dict[str, object]] = {}
    for key in CONFIG_KEYS:
        assert key.stack_key is not None
        default = json.loads(json.dumps(key.default)) if key.default is not None else \
            json.loads(UNSET_VALUES[key.kind]) if key.kind != "string" else ""
        entry: dict[str, object] = {"type": key.kind}
        if key.kind == "array":
            entry["items"] = {"type": "string"}
        entry["default"] = default
        entry["description"] = key.stack_text
        schema[key.stack_key] = entry
    return schema


def config_table_markdown() -> str:
    """The README's config reference, rendered from CONFIG_KEYS (a test keeps them in step)."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key in CONFIG_KEYS:
        default = "(none)" if key.default is None else f"`{json.dumps(key.default)}`"
        lines.append(f"| `{key.stack_key}` | {key.kind} | {default} | {key.stack_text} |")
    return "\n".join(lines)


def stack_spelling(field: str) -> str:
    """A component field as a stack's config names it (`nat-instance-vpc:publicAddressesPerNat`
    for `instance.public_addresses`): what a check made inside the components says to a
    stack's user."""
    for entry in options.stack_options():
        if entry.path == field:
            return f"{PROJECT}:{entry.stack_key}"
    return field
