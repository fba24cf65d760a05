"""Debian 13 (trixie): the Debian 12 end-to-end checks of the deploy
(``test_difusor_e2e.py``), its web IDS (``test_ids_e2e.py``) and its UPS hooks
(``test_ups_e2e.py``), unchanged, on a Debian 13 host.

The tests are taken from the modules that define them, in their order, so the
two releases are held to the same checks and cannot drift apart. ``testbed`` is
the session's one-host Debian 13 testbed, on which ``test_difusor_e2e``'s own
``deployed`` fixture deploys twice (the second run must change nothing); the
IDS and UPS checks then run on that deployed host.

Left to Debian 12 alone: the checks of what the deploy does on a re-run (a
firewall restored, a key rotated, bans carried over, a rejected ruleset, the
HTTPS variant, minimums below the clause, a re-run after the power failure) and
of the testbed's inventory, which are the machine's side (pyinfra's and nft's
logic) rather than the release's; each costs a deploy.
"""

from __future__ import annotations

import pytest

# pytest imports this directory's modules by their file names (no __init__.py);
# mypy knows them as tests.deploy.*, so it cannot follow these imports.
import test_difusor_e2e as deploy_checks  # type: ignore[import-not-found]
import test_ids_e2e as ids_checks  # type: ignore[import-not-found]
import test_ups_e2e as ups_checks  # type: ignore[import-not-found]
from test_difusor_e2e import deployed, runs  # noqa: F401 (its fixtures)

from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed
from prep_iac.testbed.pytest_plugin import same_tests

pytestmark = pytest.mark.testbed

# What runs on the machine's side (the inventory, pyinfra's and nft's logic on a
# re-run), the same whatever the host's release; each re-run costs a deploy.
MACHINE_SIDE = frozenset({
    "test_host_below_minimums_is_deployed_with_a_visible_warning",
    "test_host_below_minimums_is_refused_without_the_force_flag",
    "test_https_with_provided_certificates_serves_the_same_site",
    "test_firewall_deleted_by_hand_is_restored_by_the_next_deploy",
    "test_rotating_the_iec_key_removes_the_old_one",
    "test_bans_survive_a_redeploy_that_reloads_the_firewall",
    "test_ruleset_rejected_by_nft_is_never_loaded",
    "test_testbed_inventory_drives_the_dummy_ups",
})  # fmt: skip


@pytest.fixture(scope="module")
def testbed(trixie_testbed: Testbed) -> Testbed:
    return trixie_testbed


def test_the_host_runs_debian_13_from_trixie(deployed: Deployed) -> None:  # noqa: F811
    assert deployed.root("cat /etc/debian_version").stdout.startswith("13.")
    assert "OpenSSH_10" in deployed.root("ssh -V 2>&1").stdout
    # Its packages come from trixie's suites, through the testbed's apt proxy.
    policy = deployed.root("apt-cache policy").stdout
    for suite in ("n=trixie,", "n=trixie-updates,", "n=trixie-security,"):
        assert suite in policy
    assert "n=bookworm" not in policy
    # Suricata 7 from trixie's main: no backports on Debian 13.
    assert deployed.root("dpkg-query -W -f '${Version}' suricata").stdout.startswith("1:7.")
    assert "~bpo" not in deployed.root("dpkg-query -W -f '${Version}' suricata").stdout


globals().update(same_tests(deploy_checks, leave_out=MACHINE_SIDE))
globals().update(same_tests(ids_checks))
globals().update(
    same_tests(
        ups_checks, leave_out=frozenset({"test_redeploy_after_the_power_failure_changes_nothing"})
    )
)
