"""The data kept once (config keys, the guide's rules) and the files that show it agree."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nat.design.monitoring import metrics_table_markdown
from nat.design.rules import guide_table_markdown
from nat.inputs.config import config_table_markdown, project_config_schema
from nat.inputs.options import args_module_source
from scripts.mutation import README_END, README_START, SCORES, scores_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_pulumi_yaml_declares_exactly_the_config_keys() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "nat-instance-vpc"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    assert project["config"] == project_config_schema()


def test_readme_shows_the_config_reference_and_the_rules_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config_table_markdown() in readme
    assert guide_table_markdown() in readme
    assert metrics_table_markdown() in readme


def test_stack_files_use_only_declared_keys() -> None:
    declared = set(project_config_schema())
    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        keys = yaml.safe_load(stack_file.read_text())["config"]
        ours = {k.split(":", 1)[1] for k in keys if k.startswith("nat-instance-vpc:")}
        assert ours <= declared, stack_file.name


def test_readme_quotes_the_recorded_mutation_scores() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_START) + len(README_START):readme.index(README_END)]
    assert block == scores_markdown(json.loads(SCORES.read_text()))


def test_args_module_is_generated_from_the_options_table() -> None:
    """nat/inputs/args.py is written from the table (`make generate`), never by hand."""
    assert (ROOT / "nat" / "inputs" / "args.py").read_text() == args_module_source()
