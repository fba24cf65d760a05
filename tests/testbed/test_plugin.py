"""The pytest plugin skips testbed tests where they cannot run, but fails them in CI."""

from __future__ import annotations

import pytest

from prep_iac.testbed import pytest_plugin

MISSING = ["root: run as root (the testbed creates namespaces, mounts and links)"]


@pytest.fixture
def machine_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_plugin, "missing_prerequisites", lambda: MISSING)


@pytest.mark.usefixtures("machine_without_root")
def test_outside_ci_a_machine_that_cannot_run_the_testbed_skips_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="root: run as root"):
        pytest_plugin.require_testbed_machine()


@pytest.mark.usefixtures("machine_without_root")
def test_in_ci_a_machine_that_cannot_run_the_testbed_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"root: run as root.*CI=true"):
        pytest_plugin.require_testbed_machine()
