"""Bit-exact digests of seeded episodes, pinned per platform.

A seeded PushT or Cube episode is bit-identical on one machine, but not across machines: the
C maths library and the simulators' compiled code differ in the last ulp between CPUs, and
contact physics grows that difference into different states within a few dozen steps. So a
digest is recorded per platform fingerprint (CPU model, C library, architecture):

- on a recorded platform the digest must match exactly (a refactor changed behaviour);
- a digest recorded on any platform is accepted (the first pins kept no fingerprint);
- on an unrecorded platform the episode must replay bit-identically, and the test is skipped
  with the digest to record, rather than failed for a machine nobody has pinned.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import pytest

# The machine the first pins were recorded on kept no fingerprint.
UNRECORDED = "x86_64 (first pins, fingerprint not kept)"


def fingerprint() -> str:
    """'<arch> <cpu model> <libc>-<version>': what decides the last ulp of libm and physics."""
    cpu = platform.processor() or "unknown cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libc = "-".join(part for part in platform.libc_ver() if part) or "unknown libc"
    return f"{platform.machine()} {cpu} {libc}"


def check_pinned(digest: Callable[[], str], pins: dict[str, str]) -> None:
    """Assert `digest()` against `pins` (fingerprint -> hex digest) as the module says."""
    here, got = fingerprint(), digest()
    if here in pins:
        assert got == pins[here], f"behaviour changed on pinned platform {here!r}: {got}"
        return
    if got in pins.values():
        return
    assert digest() == got, f"the same seed replayed differently on {here!r}"
    pytest.skip(f"no digest pinned for {here!r}; it replays bit-identically as {got}")
