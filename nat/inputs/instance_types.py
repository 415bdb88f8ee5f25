"""EC2 instance types: which exist, and their CPU architecture by AWS's naming rule.

Pure logic. The list of types is botocore's EC2 API model (a dependency already), which AWS
updates with every release, so a new type is known offline as soon as botocore knows it. At
deploy time the component asks AWS itself (the provider's `aws.ec2.getInstanceType`) for the
architecture; the naming rule here is the offline fallback and what `plan` shows.
"""

from __future__ import annotations

import re
from functools import lru_cache

from botocore.loaders import Loader

ARM64 = "arm64"
X86_64 = "x86_64"
# family = letters + generation + attribute letters: c7gn = c, 7, "gn"; m7i-flex = m, 7, "i-flex"
# (High Memory families carry a dash: u-12tb1 = u, 12, "tb1")
_FAMILY = re.compile(r"^(?P<series>[a-z]+)-?(?P<generation>\d+)(?P<attributes>[a-z0-9\-]*)$")


@lru_cache(maxsize=1)
def known_instance_types() -> frozenset[str]:
    """Every instance type in botocore's EC2 model (about 1,400 in botocore 1.44)."""
    model = Loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


def architecture_by_name(instance_type: str) -> str | None:
    """arm64 for Graviton types, x86_64 otherwise; None for a name the rule cannot read.

    AWS marks Graviton families with a "g" among the letters after the generation (t4g,
    c7gn, x2gd, im4gn, is4gen, p6e-gb200); a1 (the first Graviton) predates the rule.
    """
    family = instance_type.partition(".")[0]
    if family == "a1":
        return ARM64
    match = _FAMILY.match(family)
    if match is None:
        return None
    return ARM64 if "g" in match["attributes"] else X86_64


def is_burstable(instance_type: str) -> bool:
    """T-series types run on CPU credits (t2, t3, t3a, t4g, ...)."""
    match = _FAMILY.match(instance_type.partition(".")[0])
    return match is not None and match["series"] == "t"


# the sizes AWS names types with: a name with another size is a typo, whatever botocore knows
_SIZE = re.compile(r"^(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$")


def instance_type_problem(instance_type: str) -> str | None:
    """Why `instance_type` cannot be a NAT, or None when it can (or may: a well-formed name
    this botocore does not know is AWS's to judge, see `is_announced`)."""
    if instance_type.startswith("mac"):
        return "Mac instances need dedicated hosts and macOS, not Amazon Linux"
    family, _, size = instance_type.partition(".")
    if instance_type not in known_instance_types() and not (
            _FAMILY.match(family) and _SIZE.match(size)):
        return "not an EC2 instance type AWS has announced (botocore's list)"
    if architecture_by_name(instance_type) is None:
        return "its architecture cannot be read from its name"
    return None


def is_announced(instance_type: str) -> bool:
    """In the installed botocore's list. A newer type than the botocore is well formed but
    not listed: a warning, and AWS decides at deploy time."""
    return instance_type in known_instance_types()


def botocore_version() -> str:
    import botocore
    return str(botocore.__version__)


def close_instance_types(instance_type: str, count: int = 3) -> list[str]:
    """Known types that look like `instance_type`, for a "did you mean" hint."""
    import difflib
    # only types that could be a NAT (a Mac hint would name the refused type itself)
    candidates = sorted(t for t in known_instance_types() if instance_type_problem(t) is None)
    return difflib.get_close_matches(instance_type.lower().replace("-", "."), candidates,
                                     n=count)
