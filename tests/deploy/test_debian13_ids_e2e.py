"""Debian 13 (trixie): ``test_ids_e2e.py``'s checks, unchanged, on a Debian 13 host
(ModSecurity with the CRS, fail2ban into the firewall's blocklist, Suricata 7 from
trixie's main instead of bookworm-backports).

Imported from the module that defines them; ``testbed`` is the session's one-host
Debian 13 testbed (see ``test_debian13_deploy_e2e.py``).
"""

from __future__ import annotations

import pytest

# pytest imports this directory's modules by their file names (no __init__.py);
# mypy knows them as tests.deploy.*, so it cannot follow this import.
from test_ids_e2e import (  # type: ignore[import-not-found]  # noqa: F401 (fixtures, tests)
    deployed,
    test_banned_client_is_served_again_after_unban,
    test_flooding_client_is_limited_then_banned_into_the_blocklist,
    test_ids_configurations_pass_their_own_checks,
    test_published_files_are_never_blocked,
    test_sql_injection_and_path_traversal_are_blocked_by_the_crs_and_logged,
    test_suricata_records_the_attacks_as_eve_json,
)

from prep_iac.testbed import Testbed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def testbed(trixie_testbed: Testbed) -> Testbed:
    return trixie_testbed
