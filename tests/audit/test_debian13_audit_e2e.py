"""Debian 13 (trixie): ``test_audit_e2e.py``'s audit and pentest of a deployed host,
unchanged, on a Debian 13 host: every applicable control passes (ssh-audit against
OpenSSH 10, the Lynis index at least 80, the IEC's confinement, the cut served),
and every attack is detected and contained; and what only Debian 13 has (OpenSSH
10's source penalties) is audited too.

Imported from the module that defines them; ``testbed`` is overridden with the
session's one-host Debian 13 testbed, so the imported ``audited`` fixture deploys
it (the first deploy on that host in a run: a fresh Debian 13 deploy).
"""

from __future__ import annotations

import pytest

from prep_iac.testbed import Testbed

from .test_audit_e2e import (  # noqa: F401 (fixtures and tests, collected here too)
    Audited,
    audited,
    mended,
    test_a_deployed_host_passes_every_applicable_control,
    test_lynis_index_reaches_80_and_the_suggestions_taken_stay_taken,
    test_pentest_detects_and_contains_every_attack_while_a_visitor_is_served,
    wait_for_failure,
)

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def testbed(trixie_testbed: Testbed) -> Testbed:
    return trixie_testbed


def test_the_fresh_debian_13_deploy_runs_again_with_no_change(audited: Audited) -> None:  # noqa: F811
    deployed = audited.deployed
    assert deployed.root("cat /etc/debian_version").stdout.startswith("13.")
    again = deployed.deploy()
    assert again.changed == 0, again.output[-3000:]


SSHD = "/etc/ssh/sshd_config"


def test_an_iec_source_left_to_sshds_penalties_fails_acceso_ssh(audited: Audited) -> None:  # noqa: F811
    """OpenSSH 10 shuts out, for up to 10 minutes, a source whose logins fail; a host
    that does not exempt the IEC's sources fails ACCESO-SSH, saying so."""
    deployed = audited.deployed
    # The admin's source stays exempt: without it, the audit's own probes (ssh-audit's
    # unauthenticated connections) got the admin shut out, the mend refused with it.
    deployed.root(
        f"cp -p {SSHD} /root/sshd_config.audit && sed -i 's|^PerSourcePenaltyExemptList .*|"
        f"PerSourcePenaltyExemptList {deployed.admin_source}/32|' {SSHD} && systemctl reload ssh"
    )
    try:
        failed = wait_for_failure(audited, "ACCESO-SSH")
    finally:
        deployed.root(f"mv /root/sshd_config.audit {SSHD} && systemctl reload ssh")
    assert sorted(failed) == ["ACCESO-SSH"], {k: f.evidence for k, f in failed.items()}
    assert any("sin eximir al IEC" in line for line in failed["ACCESO-SSH"].evidence)
    assert mended(audited, {"ACCESO-SSH"}), "the mend did not restore the host"
