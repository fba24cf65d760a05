"""Clause II.c: which minimums a host misses, in words that cite the clause."""

from __future__ import annotations

from prep_iac.deploy.facts.resources import Resources
from prep_iac.deploy.hardware import shortfalls
from prep_iac.models import HostRequirements

GIB = 1024**3


def test_host_meeting_clause_ii_c_has_no_shortfalls() -> None:
    # An "8 GB" server reports a little less than 8 GiB in MemTotal.
    host = Resources(cpu_cores=2, memory_bytes=8 * GIB - 300 * 1024**2, disk_bytes=100 * 1000**3)
    assert shortfalls(host, HostRequirements()) == []


def test_each_missing_minimum_is_named_with_its_clause_and_the_calls_words() -> None:
    host = Resources(cpu_cores=1, memory_bytes=2 * GIB, disk_bytes=2 * GIB)
    found = shortfalls(host, HostRequirements())
    assert [line.split(":")[0] for line in found] == ["disk gb", "memory gb", "cpu cores"]
    assert found[0].startswith("disk gb: 2.1 GB, clause II.c asks for 100 GB")
    assert '"2 cores"' in found[2]
