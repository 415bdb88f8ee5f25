"""User data for a NAT instance: the package's bootstrap script, embedded verbatim.

Pure logic. The data-path tests run the same file (`BOOTSTRAP_SCRIPT_PATH`) in network
namespaces, so what is tested is what boots.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path

from nat.tuning import TuningOverrides

BOOTSTRAP_SCRIPT_PATH = Path(__file__).with_name("nat-bootstrap.sh")
EC2_USER_DATA_LIMIT = 16384  # bytes, before base64
_SCRIPT_END = "NAT_BOOTSTRAP_SCRIPT_END"


class UserDataError(ValueError):
    pass


def bootstrap_script() -> str:
    return BOOTSTRAP_SCRIPT_PATH.read_text()


def render_user_data(vpc_cidrs: Sequence[IPv4Network], tuning: TuningOverrides) -> str:
    """A bash user-data script that installs nat-bootstrap.sh and runs `install`.

    The settings go to /etc/nat-instance so the boot unit re-applies the same ones.
    """
    script = bootstrap_script()
    if any(line.strip() == _SCRIPT_END for line in script.splitlines()):
        raise UserDataError(f"{BOOTSTRAP_SCRIPT_PATH} contains the heredoc marker {_SCRIPT_END}")
    tuning_lines = "".join(line + "\n" for line in tuning.environment_lines())
    cidrs = " ".join(str(c) for c in vpc_cidrs)
    user_data = (
        "#!/bin/bash\n"
        "# nat-instance-vpc: install the NAT bootstrap script and run it (see its header).\n"
        "set -euo pipefail\n"
        "install -d -m 0755 /etc/nat-instance /usr/local/sbin\n"
        f"echo 'NAT_VPC_CIDRS=\"{cidrs}\"' >/etc/nat-instance/nat.env\n"
        "cat >/etc/nat-instance/tuning.env <<'NAT_TUNING_END'\n"
        f"{tuning_lines}"
        "NAT_TUNING_END\n"
        f"cat >/usr/local/sbin/nat-bootstrap.sh <<'{_SCRIPT_END}'\n"
        f"{script.rstrip()}\n"
        f"{_SCRIPT_END}\n"
        "chmod 0755 /usr/local/sbin/nat-bootstrap.sh\n"
        "exec /usr/local/sbin/nat-bootstrap.sh install\n"
    )
    return user_data


def compress_user_data(user_data: str) -> bytes:
    """gzip, which cloud-init unpacks: the script, comments and all, in a quarter of 16 KB.

    mtime=0 makes the bytes depend on the text alone: a new timestamp at every `pulumi up`
    would otherwise replace every NAT. boto3's run_instances takes these bytes (it base64s
    them itself).
    """
    packed = gzip.compress(user_data.encode(), compresslevel=9, mtime=0)
    if len(packed) > EC2_USER_DATA_LIMIT:
        raise UserDataError(f"user data is {len(packed)} bytes compressed, over EC2's "
                            f"{EC2_USER_DATA_LIMIT}")
    return packed


def encode_user_data(user_data: str) -> str:
    """Compressed, then base64, as Pulumi's `user_data_base64` takes it."""
    return base64.b64encode(compress_user_data(user_data)).decode()


def decode_user_data(encoded: str) -> str:
    return gzip.decompress(base64.b64decode(encoded)).decode()
