"""Debian 13 (trixie): ``test_ups_e2e.py``'s power-failure sequence, unchanged, on a
Debian 13 host (NUT 2.8 instead of 2.8.0's Debian 12 build).

Imported from the module that defines it; ``testbed`` is the session's one-host
Debian 13 testbed (see ``test_debian13_deploy_e2e.py``).
"""

from __future__ import annotations

import pytest

# pytest imports this directory's modules by their file names (no __init__.py);
# mypy knows them as tests.deploy.*, so it cannot follow this import.
from test_ups_e2e import (  # type: ignore[import-not-found]  # noqa: F401 (fixtures, tests)
    deployed,
    test_power_failure_sequence_fires_the_hooks_in_order,
    test_redeploy_after_the_power_failure_changes_nothing,
)

from prep_iac.testbed import Testbed

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def testbed(trixie_testbed: Testbed) -> Testbed:
    return trixie_testbed
