"""Reading the project's stack files (Pulumi.<stack>.yaml) without the Pulumi CLI."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from natctl.offline import PROJECT_DIR


class StackFileError(ValueError):
    pass


def available_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """`namespace:key` → value as Pulumi passes it to a program (structured values as JSON)."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        stacks = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(f"unknown stack {stack!r}: {path.name} not found in {project_dir}. "
                             f"Fix: use one of the stacks here ({stacks})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}. Fix the file") from None
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: `config` must be a mapping of key: value. Fix the file")
    values: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            raise StackFileError(f"{path.name}: {key} is a secret, which needs the Pulumi CLI to "
                                 "decrypt. Fix: run without it or use `pulumi preview`")
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return values
