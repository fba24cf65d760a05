"""Debian 13 (trixie): ``test_difusor_e2e.py``'s checks, unchanged, on a Debian 13 host.

The tests and their fixtures are imported from the module that defines them, so
the two releases are held to the same checks and cannot drift apart; ``testbed``
is overridden with the session's one-host Debian 13 testbed, on which the
imported ``deployed`` fixture deploys (twice: the second run must change nothing).

Left to Debian 12 alone: the checks of what the deploy itself does on a re-run
(a firewall restored, a key rotated, bans carried over, a rejected ruleset, the
HTTPS variant), which are pyinfra's and nft's logic on the machine's side, not
the release's; each costs a deploy.
"""

from __future__ import annotations

import pytest

# pytest imports this directory's modules by their file names (no __init__.py);
# mypy knows them as tests.deploy.*, so it cannot follow this import.
from test_difusor_e2e import (  # type: ignore[import-not-found]  # noqa: F401 (fixtures, tests)
    deployed,
    runs,
    test_access_log_is_json_lines_with_the_memoria_fields,
    test_acme_challenge_is_served_but_no_other_dot_path,
    test_blocklisted_stranger_is_dropped_but_a_blocklisted_admin_is_not,
    test_burst_of_new_connections_above_the_rate_is_dropped,
    test_concurrent_connections_above_the_cap_are_reset_for_that_source_only,
    test_flooding_client_gets_429_while_another_client_is_served,
    test_hardening_lynis_asked_for_is_in_place,
    test_iec_gets_no_shell_no_command_no_tty_and_no_forwarding,
    test_iec_key_is_refused_outside_the_iec_sources,
    test_iec_uploads_into_incoming_inside_its_chroot,
    test_journal_is_persistent_and_kept_at_least_thirty_days,
    test_kernel_hardening_is_written_and_applied_where_settable,
    test_password_and_legacy_algorithms_are_refused,
    test_published_cut_is_served_with_its_id_frame_policy_and_caching,
    test_second_deploy_changes_nothing,
    test_sshd_nginx_and_nft_accept_the_deployed_configuration,
    test_stranger_cannot_reach_ssh_but_reaches_the_site,
    test_suspended_site_shows_the_spanish_notice_on_every_path,
    test_testbed_inventory_drives_the_dummy_ups,
)

from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def testbed(trixie_testbed: Testbed) -> Testbed:
    return trixie_testbed


def test_the_host_is_debian_13(deployed: Deployed) -> None:  # noqa: F811 (the fixture)
    assert deployed.root("cat /etc/debian_version").stdout.startswith("13.")
    assert "OpenSSH_10" in deployed.root("ssh -V 2>&1").stdout
