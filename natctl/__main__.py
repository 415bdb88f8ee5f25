"""`python -m natctl`: plan (offline); verify, status and bake-ami (a live account)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nat.inputs.validation import ArgumentsError
from natctl.cost import PriceError
from natctl.offline import ProgramError
from natctl.stacks import StackFileError


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative: use 0 or more")
    return value


def command_plan(args: argparse.Namespace) -> int:
    from natctl.plan import PlanError, plan_stack, render_text, write_diagram
    try:
        plan = plan_stack(args.stack, args.gb_per_month, args.project_dir)
        if args.diagram:
            write_diagram(plan, Path(args.diagram))
    except (ArgumentsError, PriceError, ProgramError, StackFileError, PlanError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(plan, indent=2))
    else:
        print(render_text(plan), end="")
        if args.diagram:
            print(f"diagram written to {args.diagram}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m natctl",
        description="NAT instances for private AWS subnets: plan a stack offline, verify a "
                    "deployed one, see how close its NATs are to their limits, bake a NAT AMI.")
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser(
        "plan", help="show what `pulumi up` would create, and its monthly cost (offline)",
        description="Run the real program for a stack's config in Pulumi's in-process mock "
                    "engine (no Pulumi CLI, no credentials, no network) and show the topology, "
                    "the security group, resource counts and a monthly cost estimate beside "
                    "NAT Gateways.")
    plan.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml "
                      "(default: dev)")
    plan.add_argument("--gb-per-month", type=positive_number, default=100.0,
                      help="GB per month through the NATs, for the cost estimate (default 100)")
    plan.add_argument("--project-dir", type=Path, default=None,
                      help="where Pulumi.<stack>.yaml files are (default: this project)")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.add_argument("--diagram", metavar="FILE", help="also draw the topology to FILE.svg or "
                      "FILE.png (needs Graphviz)")
    plan.set_defaults(handler=command_plan)

    from natctl import cli_aws
    cli_aws.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
