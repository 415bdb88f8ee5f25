"""The commands that talk to AWS: `verify`, `status` and `bake-ami` (boto3)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from natctl.outputs import StackOutputs

AWS_ERROR_HINT = ("Fix: check your credentials (`aws sts get-caller-identity`), --profile "
                  "and --region")


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION "
                        "or the profile's region)")
    parser.add_argument("--profile", help="AWS profile from ~/.aws/config")


def make_session(args: argparse.Namespace) -> Any:
    """A boto3 session, or InputError for a missing region or unknown profile."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    from natctl.verify import InputError
    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound:
        raise InputError(f"--profile {args.profile!r}: no such AWS profile. Fix: use one from "
                         "`aws configure list-profiles`") from None
    if not session.region_name:
        raise InputError("no AWS region: pass --region (e.g. --region us-east-1) or set "
                         "AWS_REGION")
    return session


def read_outputs(args: argparse.Namespace) -> tuple[StackOutputs, str]:
    """The stack outputs from a file, standard input or `pulumi stack output`, checked whole
    (InputError)."""
    from natctl.outputs import InputError, parse_outputs
    from natctl.verify import outputs_from_stack
    if (args.source is None) == (args.stack is None):
        raise InputError("give the stack outputs either as a file (or - for stdin) or as "
                         "--stack NAME, not both or neither. Example: `pulumi stack output "
                         f"--json | python -m natctl {args.command} -`")
    if args.stack:
        return outputs_from_stack(args.stack, os.environ.get("PULUMI", "pulumi")), \
            f"stack {args.stack!r}"
    if args.source == "-":
        return parse_outputs(sys.stdin.read(), "standard input"), "standard input"
    path = Path(args.source)
    if not path.is_file():
        raise InputError(f"{path}: no such file. Fix: `pulumi stack output --json > "
                         f"{path}` first, or pass - to read standard input")
    return parse_outputs(path.read_text(), str(path)), str(path)


def add_outputs_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="file with `pulumi stack output --json`, or - "
                        "for standard input")
    parser.add_argument("--stack", help="run `pulumi stack output --json --stack NAME` instead")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def reading_command(args: argparse.Namespace, read: Callable[[Any, StackOutputs, str], Any],
                    render: Callable[[Any], str], ok: Callable[[Any], bool]) -> int:
    """verify and status: the outputs, a session, the reading; exit 0 ok, 1 not, 2 bad input
    or an AWS refusal, each said in one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    from natctl.outputs import InputError
    try:
        outputs, source = read_outputs(args)
        session = make_session(args)
        found = read(session, outputs, source)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS said: {error}. {AWS_ERROR_HINT}", file=sys.stderr)
        return 2
    print(render(found), end="")
    return 0 if ok(found) else 1


def command_verify(args: argparse.Namespace) -> int:
    from natctl.verify import render_json, render_table, verify
    if args.test_instance and not args.connectivity:
        print("error: --test-instance needs --connectivity", file=sys.stderr)
        return 2
    return reading_command(
        args, lambda session, outputs, _: verify(session, outputs, args.connectivity,
                                                 args.test_instance),
        render_json if args.json else render_table, lambda results: all(
            r.passed for r in results))


def command_status(args: argparse.Namespace) -> int:
    from natctl.status import render_json, render_text, status
    if not 1 <= args.hours <= 24 * 14:
        print(f"error: --hours {args.hours:g}: out of range. Fix: use 1 to 336 (two weeks of "
              "one-hour data)", file=sys.stderr)
        return 2
    return reading_command(
        args, lambda session, outputs, source: status(session, outputs, source, args.hours),
        render_json if args.json else render_text, lambda statuses: all(
            s.ok for s in statuses))


def command_bake(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from natctl.bake import BakeError, bake, make_plan
    from natctl.verify import InputError
    try:
        session = make_session(args)
        plan = make_plan(session.region_name, args.instance_type, args.subnet_id,
                         args.security_group_id, args.name, args.timeout)
    except (InputError, BakeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(plan.describe())
        return 0
    try:
        image_id = bake(session, plan, log=lambda line: print(line, file=sys.stderr))
    except BakeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS said: {error}. {AWS_ERROR_HINT}", file=sys.stderr)
        return 1
    print(f"pulumi config set amiId {image_id}")
    return 0


def add_commands(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="check a deployed stack against the guide (and its troubleshooting list)",
        description="Check the stack's outputs whole (exit 2 naming any bad key before an AWS "
                    "call), then inspect the deployed stack with boto3, read-only, and report "
                    "per AZ PASS, FAIL (the cause and the command that repairs it) or DEGRADED "
                    "(high availability: failed over to another AZ's NAT): the VPC and its "
                    "internet gateway attached; each NAT (found from its Auto Scaling group "
                    "with high availability) running with status checks ok, source/dest check "
                    "off on it and every interface, its Elastic IP, IMDSv2 required, no "
                    "security group but the stack's; the public route to the internet gateway; "
                    "each private subnet on its own table, routed to its AZ's NAT; the network "
                    "ACLs of both subnets letting the NAT path through both ways (replies to "
                    "ports 1024-65535); the security group equal to the guide's table and no "
                    "SSH from 0.0.0.0/0. Exit 0 all pass (degraded included), 1 a check "
                    "failed, 2 bad input.")
    add_outputs_source(verify)
    verify.add_argument("--connectivity", action="store_true",
                        help="also, through SSM Run Command, check that each NAT reaches an "
                             "HTTPS endpoint and appears with its public IP")
    verify.add_argument("--test-instance", metavar="ID",
                        help="with --connectivity: a private instance that must reach the "
                             "internet through a NAT")
    add_aws_options(verify)
    verify.set_defaults(handler=command_verify)

    status_command = commands.add_parser(
        "status", help="per AZ, how close each NAT is to its limits, in words",
        description="Read a deployed stack's NAT metrics from CloudWatch and say, per AZ, "
                    "what share of its baseline bandwidth and tracking table it uses, how many "
                    "packets it dropped and why, whether its CPU credits or metrics ran out, "
                    "and which alarms fire. Read-only. Exit 0 within limits, 1 a limit is hit, "
                    "2 bad input.")
    add_outputs_source(status_command)
    status_command.add_argument("--hours", type=float, default=24,
                                help="the window for drops (default 24)")
    add_aws_options(status_command)
    status_command.set_defaults(handler=command_status)

    bake_ami = commands.add_parser(
        "bake-ami", help="build a NAT AMI (the guide's 'create NAT AMI'), print its id",
        description="Launch a builder from the latest Amazon Linux 2023 with the NAT bootstrap "
                    "script, wait for 'NAT ready' on its console, create and tag the image, "
                    "wait until it is available and terminate the builder (also on failure).")
    bake_ami.add_argument("--subnet-id", required=True,
                          help="a public subnet (route to an internet gateway) for the builder")
    bake_ami.add_argument("--security-group-id", help="security group for the builder "
                          "(default: the VPC's default group)")
    bake_ami.add_argument("--instance-type", default="t4g.nano",
                          help="builder type; its architecture is the AMI's (default t4g.nano)")
    bake_ami.add_argument("--name", help="image name (default nat-instance-al2023-ARCH-TIME)")
    bake_ami.add_argument("--timeout", type=float, default=900,
                          help="seconds to wait for the script to finish (default 900)")
    bake_ami.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    add_aws_options(bake_ami)
    bake_ami.set_defaults(handler=command_bake)
