"""The options table (nat/inputs/options.py): each option declared once, everything derived."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from nat.design.userdata import BOOTSTRAP_SCRIPT_PATH
from nat.inputs import args, options
from nat.inputs.config import CONFIG_KEYS, parse_stack_config, project_config_schema
from nat.inputs.options import OPTIONS, Option, Shown
from nat.inputs.settings import HighAvailabilitySettings, MonitoringSettings, NatOptions
from nat.inputs.tuning import TUNING_OPTIONS, TuningOverrides
from nat.instance import agent


def test_every_typed_dict_field_is_an_entry_and_back() -> None:
    declared = {(cls.__name__, name) for cls in (
        args.InstanceArgs, args.ConntrackArgs, args.AccessArgs, args.HighAvailabilityArgs,
        args.MonitoringArgs, args.NatInstancesArgs, args.NatInstanceVpcArgs)
        for name in cls.__annotations__}
    classes = {entry.path: entry.type_name for entry in OPTIONS if entry.type_name}
    derived = set()
    for entry in OPTIONS:
        owners = [f"{c}Args" for c in entry.components] if entry.group == "" else \
            [classes[entry.group]]
        derived |= {(owner, entry.field) for owner in owners}
    assert declared == derived


def test_descriptions_take_their_numbers_from_the_entry() -> None:
    failback = options.option("high_availability.failback_after_seconds")
    assert failback.text.endswith("10 to 3,600. Default 60.")
    assert failback.stack_text.endswith("(with highAvailability), 10 to 3600.")
    changed = Option(failback.path, "integer", failback.description, default=90, minimum=20,
                     maximum=7200)
    assert changed.text.endswith("20 to 7,200. Default 90.")
    targets = options.option("high_availability.health_check_targets")
    assert targets.text.endswith('Default ["checkip.amazonaws.com:443", "aws.amazon.com:443"].')
    assert f"{Shown(True)} {Shown(False)} {Shown(1234):,} {Shown('x')}" == "true false 1,234 x"
    # no number that is an entry's default or bound is written in its prose by hand
    for entry in OPTIONS:
        for number in (entry.default, entry.minimum, entry.maximum):
            if isinstance(number, int) and not isinstance(number, bool) and number >= 10:
                for template in (entry.description, entry.stack_description or ""):
                    spelled = {str(number), f"{number:,}"}
                    assert not any(re.search(rf"(?<![\d,.]){re.escape(s)}(?![\d,])", template)
                                   for s in spelled), (entry.path, number)


def test_defaults_of_the_settings_are_the_tables() -> None:
    ha, watch = HighAvailabilitySettings(), MonitoringSettings()
    assert ha.failback_after_seconds == options.default("high_availability.failback_after_seconds")
    assert watch.publish_interval_seconds == options.default(
        "monitoring.publish_interval_seconds")
    # the settings of an empty stack are the defaults' settings
    assert parse_stack_config({}).options == NatOptions()
    for group, settings in (("high_availability", ha), ("monitoring", watch)):
        for field in fields(settings):
            entry = options.option(f"{group}.{field.name}")
            assert getattr(settings, field.name) == (
                tuple(entry.default) if isinstance(entry.default, tuple) else entry.default)


def test_stack_keys_are_unique_and_declared_with_their_defaults() -> None:
    keys = [key.stack_key for key in CONFIG_KEYS]
    assert len(keys) == len(set(keys)) and keys[0] == "azCount"
    schema = project_config_schema()
    assert schema["failbackAfterSeconds"]["default"] == 60
    assert schema["healthCheckTargets"]["default"] == ["checkip.amazonaws.com:443",
                                                       "aws.amazon.com:443"]


def test_every_entry_with_bounds_is_an_integer_and_checked_at_its_ends() -> None:
    for entry in OPTIONS:
        assert (entry.minimum is None) == (entry.maximum is None) == (entry.kind != "integer"), \
            entry.path


@pytest.mark.parametrize("entry", TUNING_OPTIONS, ids=lambda e: e.path)
def test_tuning_knobs_are_read_by_the_bootstrap_script(entry: Option) -> None:
    assert entry.environment and entry.environment in BOOTSTRAP_SCRIPT_PATH.read_text()
    assert TuningOverrides.from_values({entry.field: 7}).environment_lines() == [
        f"{entry.environment}=7"]


def test_agent_names_are_settings_of_the_agent() -> None:
    names = {f.name for f in fields(agent.Settings)} | {
        f"metrics.{f.name}" for f in fields(agent.MetricsSettings)}
    named = [entry.agent for entry in OPTIONS if entry.agent]
    assert named and set(named) <= names


def test_the_tables_views() -> None:
    assert options.fields("", "NatInstances") == (
        "vpc_id", "vpc_cidr_blocks", "availability_zones", "public_subnet_ids",
        "private_route_table_ids", "private_cidr_blocks", "instance", "access", "single_nat",
        "high_availability", "monitoring", "tags")
    assert options.fields("", "NatInstanceVpc") == (
        "availability_zones", "vpc_cidr", "public_subnet_cidrs", "private_subnet_cidrs",
        "instance", "access", "single_nat", "high_availability", "monitoring", "tags")
    assert options.fields("instance.conntrack", "NatInstances") == (
        "max_entries", "tcp_established_timeout", "tcp_time_wait_timeout")
    assert options.shared_fields() == ("instance", "access", "single_nat", "high_availability",
                                       "monitoring", "tags")
    assert [entry.stack_key for entry in options.stack_options()] == [
        "azCount", "availabilityZones", "vpcCidr", "publicSubnetCidrs", "privateSubnetCidrs",
        "natInstanceType", "sshCidr", "allowSshFromAnywhere", "keyName", "amiId",
        "enableTestRules", "singleNat", "useElasticIp", "publicAddressesPerNat",
        "elasticIpAllocationIds", "enableSsm",
        "highAvailability",
        "healthCheckTargets", "failbackAfterSeconds", "keepConnections", "monitoring",
        "metricsNamespace",
        "detailedMetrics", "metricsPublishIntervalSeconds", "monitoringAlarms",
        "monitoringDashboard", "alarmTopicArn", "createAlarmTopic", "conntrackMax",
        "conntrackTcpEstablishedTimeout", "conntrackTcpTimeWaitTimeout"]
    assert options.option("vpc_cidr", "NatInstanceVpc").default == "10.0.0.0/16"
    assert options.option("availability_zones").required  # NatInstances' own entry
    with pytest.raises(KeyError, match="vpc_cidr"):
        options.option("vpc_cidr")  # NatInstanceVpc's field only
    assert options.default("single_nat") is False


def test_every_value_read_from_args_has_its_check() -> None:
    """Strings and lists of the options both components share are read by their entry's
    own check; integers by their bounds."""
    for entry in OPTIONS:
        if entry.components == options.BOTH and entry.kind in ("string", "array"):
            assert entry.check is not None, entry.path


def test_a_docstring_is_wrapped_and_refuses_what_would_break_it() -> None:
    assert options._docstring("a b", "    ") == '    """a b"""\n'
    long = "word " * 30 + "a-hyphenated-word-that-must-stay-whole at the end"
    wrapped = options._docstring(long, "    ")
    assert "a-hyphenated-word-that-must-stay-whole" in wrapped.replace("\n    ", " ")
    assert all(len(line) <= 99 for line in wrapped.splitlines())
    for bad in ('ends with a quote"', 'has """ inside', "has a \\ inside"):
        with pytest.raises(ValueError, match="cannot go in a docstring"):
            options._docstring(bad, "")
