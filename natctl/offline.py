"""Run the real stack program in Pulumi's in-process mock engine: no CLI, no cloud, no network.

Used by the test suite and by `python -m natctl plan`. `run_program` returns the whole resource
graph (type, name, inputs, parent, options) and the stack's exports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from nat.testing import (
    ID_PREFIXES,
    MOCK_ACCOUNT,
    MOCK_AMI,
    MOCK_MEMORY_MIB,
    MOCK_PUBLIC_IPS,
    NatMocks,
)

# the mocks moved into the package (nat.testing); the project's tests still import them here
__all__ = ["ID_PREFIXES", "MOCK_ACCOUNT", "MOCK_AMI", "MOCK_MEMORY_MIB", "MOCK_PUBLIC_IPS",
           "AwsMocks", "Graph", "ProgramError", "run_program", "run_under_mocks"]

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_REGION = "us-east-1"


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # what the program passed
    dependencies: list[str] = field(default_factory=list)  # URNs it waits for
    aliases: list[str] = field(default_factory=list)  # URNs it answers to (older layouts)


@dataclass
class Graph:
    resources: list[Resource]
    exports: dict[str, Any]
    invokes: list[tuple[str, dict[str, Any]]]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_id(self, resource_id: str) -> Resource:
        return next(r for r in self.resources if r.id == resource_id)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))


class AwsMocks(NatMocks):
    """The package's mocks (nat.testing), as the project's tests and `plan` use them."""


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and options."""

    def __init__(self, mocks: AwsMocks, project: str | None = None,
                 stack: str | None = None) -> None:
        super().__init__(mocks)
        self.registrations: list[dict[str, Any]] = []
        # outside a program run (a fake engine serving a plugin), say which stack this is
        self.project, self.stack = project, stack

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's rule, not the mock's: the parent's whole type chain, and nothing for
        the root stack (the mock keeps only the parent's last type). Aliases and the
        upgrade tests depend on URNs being the ones a real deployment has."""
        parent_chain = parent.split("::")[2] if parent else ""
        if parent_chain and parent_chain != "pulumi:pulumi:Stack":
            type_ = f"{parent_chain}${type_}"
        return "urn:pulumi:" + "::".join([self.stack or pulumi.get_stack(),
                                          self.project or pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append({
                "urn": response.urn, "type": request.type, "name": request.name,
                "parent": request.parent, "custom": request.custom,
                "ignore_changes": list(request.ignoreChanges),
                "args": rpc.deserialize_properties(request.object),
                "dependencies": list(request.dependencies),
                # alias specs, or the URNs the SDK computes when the monitor lacks them
                "aliases": [alias_urn(spec, request.type, request.name, response.urn)
                            for spec in request.aliases] + list(request.aliasURNs)})
        return response


class ProgramError(Exception):
    """The program refused to run (bad config): the message is for the user.

    `registered` counts the resources registered before it stopped (it should be none).
    """

    registered: int = 0
    registrations: list[dict[str, Any]] = []  # noqa: RUF012 (set per instance when raised)


def deploy_time_refusal(error: BaseException) -> pulumi.RunError | None:
    """The RunError a failed apply raised, under the SDK's "While processing input" wrappers."""
    seen: BaseException | None = error
    visited: set[int] = set()  # the chain can loop (an error that is its own context)
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, pulumi.RunError):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return None


def alias_urn(alias: Any, type_token: str, name: str, urn: str) -> str:
    """The URN an alias spec stands for (the engine's own rule, for the specs we use:
    another name and/or another parent)."""
    if alias.urn:
        return str(alias.urn)
    spec = alias.spec
    prefix = urn.split("::")[0] + "::" + urn.split("::")[1]  # urn:pulumi:stack::project
    if spec.parentUrn:
        parent_types = spec.parentUrn.split("::")[2]
        chain = f"{parent_types}${spec.type or type_token}"
    else:
        chain = spec.type or type_token
    return f"{prefix}::{chain}::{spec.name or name}"


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The run's loop's report of a future whose error nobody read: one line, no traceback.

    A refused run leaves hundreds (the same refusal, raised to the caller already). asyncio
    reports each when it is collected, at any later moment, and its default report formats a
    traceback, which parses source: inside another ast.parse (the agent's minifier, pytest's
    rewriter) that breaks CPython 3.11's parser ("AST constructor recursion depth mismatch",
    gh-106905).
    """
    logging.getLogger(__name__).debug("after the mock run: %s: %r",
                                      context.get("message"), context.get("exception"))


def run_program(config: Mapping[str, Any], stack: str = "dev", project: str = "nat-instance-vpc",
                program: Path | None = None) -> Graph:
    """Run __main__.py (or `program`) under mocks with `config` ({"ns:key": value})."""
    def body() -> None:
        runpy.run_path(str(program or PROJECT_DIR / "__main__.py"), run_name="__main__")
    return run_under_mocks(body, config, stack, project)


def run_under_mocks(body: Callable[[], Any], config: Mapping[str, Any] | None = None,
                    stack: str = "dev", project: str = "nat-instance-vpc",
                    mocks: AwsMocks | None = None) -> Graph:
    """Run `body` (a program's code) in Pulumi's mock engine; the graph it registered.

    A `pulumi.RunError` from `body` (how the program and the components refuse bad input)
    becomes ProgramError, with the count of resources registered before it.
    """
    config_strings = {k: v if isinstance(v, str) else json.dumps(v)
                      for k, v in (config or {}).items()}
    mocks = mocks or AwsMocks(config_strings.get("aws:region", DEFAULT_REGION))
    monitor = RecordingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_quiet)
    try:
        # set_mocks keeps an existing root stack: drop the previous run's, or this run's
        # resources would hang under another stack's URN.
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False,
                                 monitor=monitor)
        pulumi.runtime.set_all_config(config_strings)
        exports: dict[str, Any] = {}

        def program_body() -> Any:
            try:
                body()
            except pulumi.RunError as error:
                raise ProgramError(str(error)) from None
            stack_resource = pulumi.runtime.get_root_resource()
            outputs = getattr(stack_resource, "outputs", {}) or {}
            return pulumi.Output.from_input(outputs).apply(exports.update)

        try:
            try:
                pulumi.runtime.test(program_body)()  # type: ignore[no-untyped-call]
            except Exception as error:  # refused at deploy time (a check of outputs)
                refusal = deploy_time_refusal(error)
                if refusal is None:
                    raise
                raise ProgramError(str(refusal)) from None
        except ProgramError as error:
            error.registered = len(monitor.registrations)
            error.registrations = list(monitor.registrations)
            raise
    finally:
        pulumi.runtime.set_all_config({})
        # the run is over: let its futures go now (the next run's test() would, later)
        pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
        pulumi.runtime.settings.SETTINGS.outputs.clear()
        # End the executor threads now: each holds an event loop of its own that would
        # otherwise be torn down noisily at interpreter exit.
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()

    registered = monitor.get_registered_resources()
    resources = []
    for record in monitor.registrations:
        state = registered.get(record["urn"])
        resources.append(Resource(
            type=record["type"], name=record["name"], urn=record["urn"],
            inputs=_plain(state.state if state else {}), parent=record["parent"],
            id=state.id if state else "", ignore_changes=record["ignore_changes"],
            args=_plain(record["args"]), dependencies=record["dependencies"],
            aliases=record["aliases"]))
    return Graph(resources=resources, exports=_plain(exports), invokes=mocks.invokes)
