"""The tuning the bootstrap script applies, computed by the script itself for several sizes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nat.design.monitoring import conntrack_max
from testbed.topology import script_tuning, shipped_script


@pytest.mark.parametrize(("gib", "conntrack_max"), [
    (0.5, 131072),     # t4g.nano; the kernel's own default here is ~4,096
    (1, 262144),       # t4g.micro
    (4, 1048576),      # t4g.medium
    (16, 2097152),     # capped: 4M entries would be 1.3 GiB of kernel memory
])
def test_conntrack_table_is_sized_from_memory(gib: float, conntrack_max: int) -> None:
    values = script_tuning(int(gib * 1024 * 1024))
    assert values["nf_conntrack_max"] == conntrack_max
    assert values["nf_conntrack_buckets"] == conntrack_max
    assert values["nf_conntrack_tcp_timeout_established"] == 7440
    assert values["nf_conntrack_tcp_timeout_time_wait"] == 30


def test_small_memory_still_gets_nat_gateway_parity() -> None:
    assert script_tuning(200 * 1024)["nf_conntrack_max"] == 65536


def test_overrides_from_tuning_env_win(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "tuning.env").write_text("NAT_CONNTRACK_MAX=500000\nNAT_TCP_TIME_WAIT_TIMEOUT=10\n")
    values = script_tuning(512 * 1024, etc)
    assert values["nf_conntrack_max"] == 500000
    assert values["nf_conntrack_buckets"] == 500000
    assert values["nf_conntrack_tcp_timeout_time_wait"] == 10


def test_unreadable_memory_fails_loudly(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(shipped_script(tmp_path)), "print-tuning"], capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "NAT_PROC_MEMINFO": str(tmp_path / "missing"),
             "NAT_ETC": str(tmp_path), "NAT_LOG": str(tmp_path / "log"),
             "NAT_CONSOLE": "/dev/null"})
    assert result.returncode != 0
    assert "FAILED: cannot read MemTotal" in result.stderr


@pytest.mark.parametrize(("memory_mib", "kernel_default"), [
    (64, 1024),        # floor
    (512, 4096),       # 0.5 GiB, t4g.nano: what an untuned NAT starts with
    (1024, 8192),      # exactly 1 GiB is not "more than 1 GiB"
    (2048, 65536),
    (8192, 262144),
])
def test_kernel_default_conntrack_max_follows_the_kernels_formula(
        memory_mib: int, kernel_default: int) -> None:
    from bench.__main__ import kernel_default_conntrack_max
    assert kernel_default_conntrack_max(memory_mib * 1024 * 1024) == kernel_default


@pytest.mark.parametrize("memory_mib", [200, 256, 512, 1000, 1024, 4096, 8191, 8192, 16384])
def test_the_component_sizes_the_table_by_the_scripts_rule(memory_mib: int) -> None:
    """The component writes the size it alarms on (nat.design.monitoring.conntrack_max of the type's
    memory) to tuning.env; for the same memory the script, left alone, picks the same."""
    assert conntrack_max(memory_mib) == script_tuning(memory_mib * 1024)["nf_conntrack_max"]
    assert conntrack_max(memory_mib, 12345) == 12345


@pytest.mark.parametrize(("memory_mib", "addresses", "size"), [
    (512, 2, 196608), (512, 4, 327680), (2048, 2, 524288), (8192, 50, 2097152), (512, 1, 131072)])
def test_several_public_addresses_make_room_for_their_ports(
        tmp_path: Path, memory_mib: int, addresses: int, size: int) -> None:
    """Each address takes 64,512 connections to one destination: the table holds them all
    (and other traffic), in the component's and the script's rule alike."""
    (tmp_path / "tuning.env").write_text(f"NAT_PUBLIC_ADDRESSES={addresses}\n")
    assert conntrack_max(memory_mib, None, addresses) == size
    assert script_tuning(memory_mib * 1024, tmp_path)["nf_conntrack_max"] == size
