"""The per-platform digest check that the PushT and Cube pins use (tests/platform_pins.py)."""

from __future__ import annotations

import itertools
import platform
from pathlib import Path

import platform_pins
import pytest
from platform_pins import check_pinned, fingerprint

HERE = "arch cpu libc-1"


@pytest.fixture(autouse=True)
def _here(monkeypatch):
    monkeypatch.setattr(platform_pins, "fingerprint", lambda: HERE)


def test_fingerprint_starts_with_the_architecture():
    assert fingerprint().startswith(platform.machine() + " ")  # the unpatched function


def test_fingerprint_names_the_cpu_family_and_simd_level_when_the_kernel_says():
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    if "cpu family" not in text:
        pytest.skip("no /proc/cpuinfo with a cpu family here")
    here = fingerprint()
    assert " family " in here
    flags = set(
        next(ln for ln in text.splitlines() if ln.startswith("flags")).split(":")[1].split()
    )
    widest = next((f for f in platform_pins.SIMD_LEVELS if f in flags), None)
    assert widest is None or f" {widest} " in here


def test_a_pinned_platform_must_match_its_own_digest():
    check_pinned(lambda: "aa", {HERE: "aa"})
    with pytest.raises(AssertionError, match="behaviour changed"):
        check_pinned(lambda: "bb", {HERE: "aa", "other": "bb"})


def test_a_digest_pinned_elsewhere_is_accepted():
    check_pinned(lambda: "bb", {"other": "bb"})


def test_an_unpinned_platform_is_skipped_only_when_replay_is_identical():
    with pytest.raises(pytest.skip.Exception, match="replays bit-identically as cc"):
        check_pinned(lambda: "cc", {"other": "bb"})
    counter = itertools.count()
    with pytest.raises(AssertionError, match="replayed differently"):
        check_pinned(lambda: str(next(counter)), {"other": "bb"})
