"""Real difusor test hosts on one machine: Debian booted with systemd under
``systemd-nspawn``, each in its own network namespace, with an address in
198.18.0.0/15, packages through a caching apt proxy, and fault injection.

``Testbed`` is the public API; ``prep_iac.testbed.pytest_plugin`` gives tests a
session-scoped ``testbed`` fixture.
"""

from __future__ import annotations

from prep_iac.testbed.errors import MissingPrerequisites, TestbedError
from prep_iac.testbed.settings import TestbedSettings
from prep_iac.testbed.testbed import Testbed

__all__ = ["MissingPrerequisites", "Testbed", "TestbedError", "TestbedSettings"]
