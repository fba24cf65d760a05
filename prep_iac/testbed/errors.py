"""The testbed's exceptions: one for a failed step, one for a machine that cannot run it."""

from __future__ import annotations

from collections.abc import Iterable


class TestbedError(RuntimeError):
    """A testbed step failed; the message says which step, on what, and why."""

    __test__ = False  # not a pytest test class, despite the name


class MissingPrerequisites(TestbedError):
    """The machine lacks something the testbed needs; ``missing`` names each thing."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = list(missing)
        lines = "\n".join(f"  - {item}" for item in self.missing)
        super().__init__(f"the testbed cannot run on this machine:\n{lines}")
