"""Regenerate the files made from the project's data (`make generate`).

- nat/inputs/args.py, the components' TypedDicts, from the options table
  (nat/inputs/options.py);
- Pulumi.yaml's `config:` block, from the same table (nat/inputs/config.py CONFIG_KEYS);
- the README's tables between `<!-- generated: NAME -->` and `<!-- end: NAME -->`;
- provider/schema.json, the package schema the components' annotations give.

tests/test_docs_sync.py and tests/test_package.py fail when any of them is stale.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nat.design.monitoring import metrics_table_markdown  # noqa: E402
from nat.design.rules import guide_table_markdown  # noqa: E402
from nat.inputs.config import config_table_markdown, project_config_schema  # noqa: E402
from nat.inputs.options import args_module_source  # noqa: E402
from nat.provider import schema  # noqa: E402

README_BLOCKS: dict[str, Callable[[], str]] = {
    "config-table": config_table_markdown,
    "rules-table": guide_table_markdown,
    "metrics-table": metrics_table_markdown,
}


def pulumi_yaml(text: str) -> str:
    head, _, _ = text.partition("\nconfig:\n")
    block = yaml.safe_dump({"config": project_config_schema()}, sort_keys=False, width=100,
                           allow_unicode=True)
    return head + "\n" + block


def replacement(table: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group(1) + table + match.group(2)


def readme(text: str) -> str:
    for name, render in README_BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(\n<!-- end: {name} -->)",
                             re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no `<!-- generated: {name} -->` block")
        # a replacement function: the table's text is taken literally (no \1 escapes)
        text = pattern.sub(replacement(render()), text)
    return text


def main() -> None:
    # args.py first: the schema below is Pulumi's reading of it
    args_path = ROOT / "nat" / "inputs" / "args.py"
    if args_path.read_text() != args_module_source():
        args_path.write_text(args_module_source())
        # the schema must come from the new TypedDicts: run again in a fresh interpreter
        raise SystemExit(__import__("subprocess").call([sys.executable, __file__]))
    for path, update in ((ROOT / "Pulumi.yaml", pulumi_yaml), (ROOT / "README.md", readme)):
        path.write_text(update(path.read_text()))
    (ROOT / "provider" / "schema.json").write_text(json.dumps(schema(), indent=2,
                                                              sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
