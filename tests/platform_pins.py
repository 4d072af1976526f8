"""Bit-exact digests of seeded episodes, pinned per platform.

A seeded PushT or Cube episode is bit-identical on one machine, but not across machines: the
C maths library and the simulators' compiled code differ in the last ulp between CPUs, and
contact physics grows that difference into different states within a few dozen steps. So a
digest is recorded per platform fingerprint (CPU model, family and widest SIMD level, C library,
architecture):

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


SIMD_LEVELS = ("avx512f", "avx2", "avx", "sse4_2")  # widest first


def fingerprint() -> str:
    """'<arch> <cpu model> family F model M <widest SIMD> <libc>-<version>': what decides the
    last ulp of libm and physics. A model name alone is not enough: virtual machines report
    "AMD EPYC" for several generations and hide or expose AVX-512 (the code paths differ)."""
    cpu, ident, simd = platform.processor() or "unknown cpu", "", ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not line.strip():
                break  # the first processor is enough
            fields.setdefault(key.strip(), value.strip())
        cpu = fields.get("model name", cpu)
        if "cpu family" in fields:
            ident = f" family {fields['cpu family']} model {fields.get('model', '?')}"
        flags = set(fields.get("flags", "").split())
        simd = next((f" {level}" for level in SIMD_LEVELS if level in flags), "")
    libc = "-".join(part for part in platform.libc_ver() if part) or "unknown libc"
    return f"{platform.machine()} {cpu}{ident}{simd} {libc}"


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
