"""The multi-language Pulumi package: NatInstances and NatInstanceVpc for TypeScript, Go, C#,
YAML (and Python programs that prefer the package to an import).

The schema is generated from the components' type annotations by Pulumi's component provider.
`python -m nat.provider schema` prints it (provider/schema.json is that output, checked in, and
a test fails when the two drift).

Why not `component_provider_host`: it wraps every exception of a component's constructor with
the Python stack; here an argument error becomes Pulumi's InputPropertiesError instead, which
the engine shows per property, with our message and no traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pulumi.errors import InputPropertiesError
from pulumi.provider import main as provider_main
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ComponentInitError
from pulumi.resource import ResourceOptions

from nat import PACKAGE_NAME, __version__
from nat.components.nat_instances import NatInstances
from nat.components.vpc import NatInstanceVpc
from nat.inputs.validation import CALLER_SPELLING, ArgumentsError, camel_case

NAMESPACE = "nat-instance-vpc"
COMPONENTS = [NatInstances, NatInstanceVpc]


def tidy_descriptions(value: Any) -> Any:
    """Docstrings as one line each: the analyzer keeps the source's line breaks and indent."""
    if isinstance(value, dict):
        return {k: " ".join(v.split()) if k == "description" and isinstance(v, str)
                else tidy_descriptions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy_descriptions(v) for v in value]
    return value


class NatComponentProvider(ComponentProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = json.dumps(tidy_descriptions(json.loads(self.schema or "{}")))

    def construct(self, name: str, resource_type: str, inputs: Any,
                  options: ResourceOptions | None = None) -> ConstructResult:
        # the component names fields as this caller (another language) spells them
        spelling = CALLER_SPELLING.set(camel_case)
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as error:
            if not isinstance(error.inner, ArgumentsError):
                raise
            raise InputPropertiesError(str(error.inner), [
                {"property_path": camel_case(field), "reason": problem}
                for field, problem in zip(error.inner.fields, error.inner.problems, strict=True)
            ]) from None
        finally:
            CALLER_SPELLING.reset(spelling)


def provider() -> NatComponentProvider:
    return NatComponentProvider(COMPONENTS, PACKAGE_NAME, NAMESPACE, __version__)


def schema() -> dict[str, Any]:
    """The package schema, as the engine gets it from GetSchema."""
    document: dict[str, Any] = json.loads(provider().schema or "{}")
    return document


def serve(args: list[str]) -> None:
    """Run as the engine's plugin: `args` are what the language host passes (the engine's
    address, then flags)."""
    provider_main(provider(), args)


if __name__ == "__main__":
    if sys.argv[1:] == ["schema"]:
        print(json.dumps(schema(), indent=2, sort_keys=True))
    else:
        print("usage: python -m nat.provider schema", file=sys.stderr)
        sys.exit(2)
