"""pytest fixtures for tests that need real difusor hosts, for this project and
for users' own tests (installed as the ``prep_iac`` pytest11 plugin).

``testbed`` is session-scoped: one testbed for the whole run, always torn down;
``trixie_testbed`` is its one-host Debian 13 companion, made when first asked for.
``testbed_factory`` makes extra testbeds inside one test and removes them after
it. When the machine cannot run a testbed (not root, a tool or kernel feature
missing), the tests are skipped with the exact reason, except under ``CI=true``
where they fail: CI must not go green without having run them.

**Example:**

.. code:: python

    @pytest.mark.testbed
    def test_sshd_answers(testbed):
        for host in testbed.hosts:
            assert testbed.ssh(host.name, "true").returncode == 0
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from prep_iac.testbed.preflight import missing_prerequisites
from prep_iac.testbed.testbed import Testbed

TestbedFactory = Callable[..., Testbed]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("prep-iac testbed")
    group.addoption(
        "--testbed-hosts",
        type=int,
        default=2,
        help="hosts in the session testbed (default 2)",
    )
    group.addoption(
        "--testbed-release",
        default=None,
        help="Debian release of the session testbed's hosts: bookworm (12) or trixie (13),"
        " or a comma-separated list, one per host (default: the testbed's default)",
    )
    group.addoption(
        "--testbed-name",
        default=None,
        help="name of the session testbed (default: pytest<pid>, unique per run)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "testbed: needs root and the real testbed (fails, not skips, when CI=true)"
    )


def same_tests(module: ModuleType, leave_out: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``module``'s test functions but ``leave_out``, in the order it defines them: for
    ``globals().update(same_tests(...))`` in a module that runs them again beside
    fixtures of its own (another release's testbed), in the same order, since a test
    may build on the one before it (a ban, then the unban)."""
    unknown = leave_out - set(vars(module))
    if unknown:
        raise ValueError(f"{module.__name__} has no {sorted(unknown)}")
    return {
        name: value
        for name, value in vars(module).items()
        if name.startswith("test_") and callable(value) and name not in leave_out
    }


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require_testbed_machine() -> None:
    """Skip (or, with CI=true, fail) the calling test if no testbed can run here."""
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "the testbed cannot run on this machine: " + "; ".join(missing)
    if in_ci():
        pytest.fail(f"{reason} (CI=true: testbed tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def testbed(request: pytest.FixtureRequest) -> Iterator[Testbed]:
    """A running testbed shared by the session; torn down at its end, whatever happens."""
    require_testbed_machine()
    name = request.config.getoption("--testbed-name") or f"pytest{os.getpid()}"
    hosts = int(request.config.getoption("--testbed-hosts"))
    option = request.config.getoption("--testbed-release")
    release: str | list[str] | None = option
    if option and "," in option:
        release = [r.strip() for r in option.split(",")]
    bed = Testbed.up(name, hosts=hosts, release=release)
    try:
        yield bed
    finally:
        bed.down()


@pytest.fixture(scope="session")
def trixie_testbed(request: pytest.FixtureRequest) -> Iterator[Testbed]:
    """A one-host Debian 13 (trixie) testbed shared by the session, beside ``testbed``:
    a module that overrides ``testbed`` with it runs Debian 12's checks on Debian 13."""
    require_testbed_machine()
    name = request.config.getoption("--testbed-name") or f"pytest{os.getpid()}"
    bed = Testbed.up(f"{name[:14]}-d13", hosts=1, release="trixie")
    try:
        yield bed
    finally:
        bed.down()


@pytest.fixture
def testbed_factory() -> Iterator[TestbedFactory]:
    """Make more testbeds inside one test: ``testbed_factory("extra", hosts=1)`` (with
    ``lan=True``, its hosts share an L2 segment; ``release="trixie"`` for Debian 13).

    Names are suffixed with the pid so two test runs never collide; every testbed
    made is torn down when the test ends.
    """
    require_testbed_machine()
    made: list[Testbed] = []

    def make(
        name: str, hosts: int = 1, lan: bool = False, release: str | list[str] | None = None
    ) -> Testbed:
        bed = Testbed.up(f"{name}{os.getpid()}", hosts=hosts, lan=lan, release=release)
        made.append(bed)
        return bed

    try:
        yield make
    finally:
        for bed in made:
            bed.down()
