"""Property: whatever happens in a night, the store's strikes are a plain replay of clause III.

A night is generated period by period: the orchestrator up (each difusor's
nodes confirmed the period's cut or not, or no attempt at all), down for the
whole period, down at its end (crashed after pushing), or cut off itself (its
canary failed and every push failed: ``iec-fault``); plus restarts (a new
``Store`` on the same file and ``start_run``) at random points, and repeated
closes of a period already closed. The store (``strikes``) must agree, after
every period, with ``replay``: a model written from the clause, not from the code.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election

from .helpers import Night

REGISTRY = load_model(Registry, Path(__file__).parent.parent / "fixtures" / "registry-ok.yaml")
ELECTION = load_election("coahuila-2018")
NODES = {d.id: len(d.nodes) for d in REGISTRY.difusores}

Attempt = tuple[bool, ...] | None  # each node confirmed in the period or not; None: no attempt


@dataclass(frozen=True)
class Period:
    mode: str  # "up", "down" (never opened), "down-at-end" (pushed, then crashed),
    # "iec-down" (the IEC's own uplink: every push failed, its canary too)
    attempts: dict[str, Attempt]
    restart_after: bool
    close_again: bool  # the loop closes the period once more (as after a crash)


def attempts() -> st.SearchStrategy[dict[str, Attempt]]:
    return st.fixed_dictionaries(
        {d: st.one_of(st.none(), st.tuples(*[st.booleans()] * n)) for d, n in NODES.items()}
    )


periods = st.lists(
    st.builds(
        Period,
        mode=st.sampled_from(["up", "up", "up", "down", "down-at-end", "iec-down"]),
        attempts=attempts(),
        restart_after=st.booleans(),
        close_again=st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@dataclass
class Model:
    """Clause III as the README states it, one difusor at a time."""

    limit: int
    strikes: int = 0
    disabled: bool = False

    def period(self, judged: bool, attempt: Attempt) -> None:
        if self.disabled or not judged or attempt is None:
            return  # no strike, no reset: not the difusor's fault, or no longer served
        if all(attempt):
            self.strikes = 0
            return
        self.strikes += 1
        self.disabled = self.strikes >= self.limit


def replay(night: list[Period], election: Election) -> list[dict[str, tuple[int, bool]]]:
    """After each period: every difusor's (strikes, disabled), by the model."""
    models = {d: Model(election.strike_limit) for d in NODES}
    after = []
    for period in night:
        for difusor, model in models.items():
            model.period(period.mode == "up", period.attempts[difusor])
        after.append({d: (m.strikes, m.disabled) for d, m in models.items()})
    return after


def run(night: list[Period], path: Path) -> list[dict[str, tuple[int, bool]]]:
    """The same night through the store, restarting where the night says."""
    store = Store(path)
    driver = Night(store, REGISTRY, ELECTION)
    with store.transaction():
        store.sync_registry(REGISTRY, driver.start(0))
    strikes.start_run(store, REGISTRY, ELECTION, 1, driver.start(0))
    seen = []
    for index, period in enumerate(night):
        if period.mode != "down":
            driver.open(index)
            for difusor, attempt in period.attempts.items():
                served = store.state(difusor).status is DifusorStatus.ACTIVE
                if period.mode == "iec-down" and served:
                    driver.push(difusor, index, False)
                elif attempt is not None and served:
                    driver.push(difusor, index, list(attempt))
        if period.mode == "iec-down":
            strikes.close_period(
                store, REGISTRY, ELECTION, driver.start(index), driver.start(index + 1),
                canary_failed="canario: timed out",
            )  # fmt: skip
        if period.mode == "up":
            driver.close(index)
            if period.close_again:
                assert driver.close(index) == []  # closing twice decides nothing
        if period.mode not in ("up", "iec-down") or period.restart_after:
            # A new process on the same file; its start settles what the last one left
            # (a period left open is closed unjudged) and records the periods it missed.
            store.close()
            store = Store(path)
            driver = Night(store, REGISTRY, ELECTION)
            strikes.start_run(store, REGISTRY, ELECTION, 2 + index, driver.start(index + 1))
        seen.append({s.difusor: (s.strikes, s.status is DifusorStatus.DISABLED)
                     for s in store.states()})  # fmt: skip
    store.close()
    return seen


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(night=periods)
def test_strikes_and_disabling_equal_a_plain_replay_of_clause_iii(night: list[Period]) -> None:
    with tempfile.TemporaryDirectory(prefix="prep-strikes-") as work:
        assert run(night, Path(work) / "state.sqlite3") == replay(night, ELECTION)
