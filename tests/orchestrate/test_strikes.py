"""Clause III over a real SQLite store: verdicts, strikes, disabling, reinstating."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from prep_iac.models.difusor import DifusorStatus
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.orchestrate.store import SCHEMA_VERSION, Action, Store, StoreError
from prep_iac.orchestrate.strikes import StrikeError

from .helpers import Night, push_result

OK = {"uadec": True, "vanguardia": True}
UADEC_DOWN = {"uadec": False, "vanguardia": True}


def verdicts(night: Night, difusor: str) -> list[str]:
    return [v.verdict for v in night.store.verdicts(difusor)]


def test_failed_period_adds_a_strike_and_queues_a_notification(night: Night) -> None:
    actions = night.period(0, UADEC_DOWN)
    assert night.strikes_of("uadec") == 1
    assert night.strikes_of("vanguardia") == 0
    [notify] = [a for a in actions if a.kind == "notify"]
    assert (notify.kind, notify.difusor) == ("notify", "uadec")
    assert notify.payload["message"] == "period-failed"
    assert notify.payload["strikes"] == 1
    assert notify.payload["error_class"] == "unreachable"


def test_third_failed_period_disables_difusor(night: Night) -> None:
    night.period(0, UADEC_DOWN)
    night.period(1, UADEC_DOWN)
    assert night.store.state("uadec").status is DifusorStatus.ACTIVE
    actions = night.period(2, UADEC_DOWN)
    state = night.store.state("uadec")
    assert state.status is DifusorStatus.DISABLED
    assert state.strikes == 3
    assert not state.manual
    assert "3 periodos" in state.reason
    kinds = sorted((a.kind, a.payload.get("message", "")) for a in actions)
    assert kinds == [
        ("notify", "disabled"), ("notify", "period-failed"), ("render-list", ""), ("suspend", ""),
    ]  # fmt: skip
    assert [d.id for d in strikes.targets(night.store, night.registry)] == ["vanguardia"]


def test_disabled_difusor_gets_no_more_strikes(night: Night) -> None:
    for index in range(5):
        night.open(index)
        if index < 3:
            night.push("uadec", index, False)
        night.close(index)
    assert night.strikes_of("uadec") == 3
    assert verdicts(night, "uadec")[3:] == ["disabled", "disabled"]


def test_success_resets_strikes(night: Night) -> None:
    night.period(0, UADEC_DOWN)
    night.period(1, UADEC_DOWN)
    night.period(2, OK)
    assert night.strikes_of("uadec") == 0
    night.period(3, UADEC_DOWN)
    night.period(4, UADEC_DOWN)
    assert night.store.state("uadec").status is DifusorStatus.ACTIVE
    assert [e.kind for e in night.store.events(kinds=("recovered",))] == ["recovered"]


def test_retries_within_a_period_add_one_strike_at_most(night: Night) -> None:
    night.open(0)
    for offset in (5, 65, 125, 185, 300):
        night.push("uadec", 0, False, offset_s=offset)
    night.close(0)
    assert night.strikes_of("uadec") == 1
    assert len(night.store.attempts("uadec")) == 5 * 2  # every node's attempt is recorded


def test_one_node_failing_fails_the_period_and_nodes_may_confirm_in_separate_tries(
    night: Night,
) -> None:
    night.open(0)
    night.push("uadec", 0, [True, False])
    night.close(0)
    assert night.strikes_of("uadec") == 1
    night.open(1)
    night.push("uadec", 1, [True, False], offset_s=5)
    night.push("uadec", 1, [False, True], offset_s=120)  # the retry confirms the other node
    night.close(1)
    assert night.strikes_of("uadec") == 0


def test_late_confirmation_counts_for_the_period_it_lands_in(night: Night) -> None:
    # The push of period 0 starts 9.5 min in and confirms 1.5 min into period 1.
    night.open(0)
    night.push("uadec", 0, True, offset_s=570, duration_s=90)
    night.close(0)
    assert verdicts(night, "uadec") == ["failed"]
    # No new cut in period 1: the late confirmation of that cut makes period 1 a success.
    night.open(1, cut_index=0)
    night.close(1)
    assert verdicts(night, "uadec") == ["failed", "success"]
    assert night.strikes_of("uadec") == 0
    # It never undid period 0's failure.
    assert [e.period for e in night.store.events(kinds=("strike",))] == [night.start(0)]


def test_late_confirmation_is_recorded_as_the_reason_of_the_strike(night: Night) -> None:
    night.open(0)
    night.push("uadec", 0, True, offset_s=570, duration_s=90)
    night.close(0)
    [strike] = night.store.events(kinds=("strike",))
    assert strike.detail["error_class"] == "late"
    assert "confirmed on every node only after 2018-07-01T23:10" in strike.detail["error"]


def test_an_up_to_date_difusor_must_confirm_again_every_period(night: Night) -> None:
    # Period 0 confirms cut 0; the PREP produces nothing new for periods 1 and 2.
    night.period(0, {"uadec": True, "vanguardia": True})
    for index in (1, 2):
        night.open(index, cut_index=0)
        night.push("uadec", index, True, cut_index=0)  # its node held the statement
        night.push("vanguardia", index, False, cut_index=0)  # its server died: no contact
        night.close(index)
    verdicts = {d: [v.verdict for v in night.store.verdicts(d)] for d in ("uadec", "vanguardia")}
    assert verdicts == {
        "uadec": ["success"] * 3, "vanguardia": ["success", "failed", "failed"],
    }  # fmt: skip
    assert night.strikes_of("vanguardia") == 2


def test_a_confirmation_in_an_earlier_period_does_not_carry_over(night: Night) -> None:
    night.period(0, {"uadec": True})
    night.open(1, cut_index=0)
    night.push("uadec", 1, True, cut_index=0, offset_s=590, duration_s=30)  # lands in period 2
    night.close(1)
    night.open(2, cut_index=0)
    night.close(2)
    assert [v.verdict for v in night.store.verdicts("uadec")] == ["success", "failed", "success"]


def test_late_confirmation_of_an_older_cut_does_not_satisfy_a_period_with_a_new_cut(
    night: Night,
) -> None:
    night.open(0)
    night.push("uadec", 0, True, offset_s=570, duration_s=90)
    night.close(0)
    night.open(1)
    night.push("uadec", 1, False, offset_s=100)
    night.close(1)
    assert verdicts(night, "uadec") == ["failed", "failed"]
    assert night.store.state("uadec").last_cut_id == night.cut(0).cut_id


def test_no_new_cut_an_up_to_date_difusor_succeeds_by_confirming_the_statement(
    night: Night,
) -> None:
    night.period(0, OK)
    for index in (1, 2, 3):
        night.open(index, cut_index=0)  # the PREP produced nothing new
        night.push("uadec", index, True, cut_index=0)  # the node holds this period's statement
        night.close(index)
    assert verdicts(night, "uadec") == ["success"] * 4
    assert [p.new_cut for p in night.store.periods()] == [True, False, False, False]
    # A period in which the IEC never contacted it is the IEC's omission: no strike.
    night.open(4, cut_index=0)
    night.close(4)
    assert verdicts(night, "uadec")[-1] == "not-attempted"
    assert night.strikes_of("uadec") == 0


def test_a_cut_arriving_after_the_period_began_becomes_its_cut_while_the_budget_fits(
    night: Night,
) -> None:
    night.period(0, OK)
    night.open(1, cut_index=0)  # the PREP's 18:10 cut is not out yet
    night.open(1, late=60)  # out a minute later: now the period asks for it
    [period] = [p for p in night.store.periods() if p.start == night.start(1)]
    assert (period.cut_id, period.new_cut) == ("20180701_1810", True)
    night.close(1)
    assert verdicts(night, "uadec") == ["success", "not-attempted"]
    night.open(2, cut_index=1)
    night.open(2, late=9 * 60)  # with one minute left, too late to ask for it
    [period] = [p for p in night.store.periods() if p.start == night.start(2)]
    assert (period.cut_id, period.new_cut) == ("20180701_1810", False)


def test_no_cut_yet_judges_nobody(night: Night) -> None:
    first = PeriodClock(night.election).period(0)
    assert first is not None
    strikes.open_period(night.store, night.registry, night.election, first, None, night.start(0))
    night.close(0)
    assert verdicts(night, "uadec") == ["no-cut"]
    assert night.strikes_of("uadec") == 0


def test_orchestrator_outage_is_not_a_strike(night: Night) -> None:
    night.period(0, UADEC_DOWN)
    night.period(1, UADEC_DOWN)
    # Down for periods 2-4: nobody opened them. Back up for period 5.
    night.open(2)
    night.push("uadec", 2, False)
    night.close(2, up=False)  # and down again before period 2 ended
    night.period(5, UADEC_DOWN)
    assert night.strikes_of("uadec") == 3
    assert verdicts(night, "uadec") == ["failed", "failed", "skipped", "failed"]


def test_period_opened_without_the_transfer_budget_left_is_not_judged(night: Night) -> None:
    late = night.election.period.total_seconds() - 60  # a minute before the end
    night.open(0, late=late)
    night.push("uadec", 0, False, offset_s=late + 1)
    night.close(0)
    assert verdicts(night, "uadec") == ["skipped"]
    assert night.strikes_of("uadec") == 0


def test_period_without_any_attempt_is_the_orchestrators_fault(night: Night) -> None:
    night.open(0)
    night.close(0)
    assert verdicts(night, "uadec") == ["not-attempted"]
    assert night.strikes_of("uadec") == 0


def test_a_node_never_tried_in_a_period_is_the_orchestrators_fault_not_a_strike(
    night: Night,
) -> None:
    night.open(0)
    result = push_result(night.registry, "uadec", night.cut(0).cut_id, night.start(0), False)
    untried = replace(result, nodes=[replace(n, outcome="untried", attempts=0)
                                     for n in result.nodes])  # fmt: skip
    strikes.record_push(night.store, night.start(0), untried, night.cut(0))
    night.close(0)
    assert verdicts(night, "uadec") == ["not-attempted"]
    assert night.strikes_of("uadec") == 0


def test_restart_resumes_without_double_counting(night: Night, tmp_path: Path) -> None:
    night.period(0, UADEC_DOWN)
    night.open(1)
    night.push("uadec", 1, False)
    first = night.close(1)
    assert night.close(1) == []  # closing again changes nothing
    night.store.close()
    with Store(night.store.path) as reopened:
        again = Night(reopened, night.registry, night.election)
        assert again.close(1) == []
        assert again.strikes_of("uadec") == 2
        assert {a.key for a in first} <= {a.key for a in reopened.pending_actions()}
        again.period(2, UADEC_DOWN)
        assert reopened.state("uadec").status is DifusorStatus.DISABLED
        assert len(reopened.events(kinds=("strike",))) == 3


def crashed_run(night: Night, alive_until: timedelta) -> None:
    """A run that pushed to uadec in period 0, failing, and was last seen ``alive_until`` in."""
    run, _ = strikes.start_run(
        night.store, night.registry, night.election, 1, night.start(0) - timedelta(seconds=5)
    )
    night.open(0)
    night.push("uadec", 0, False)
    strikes.heartbeat(night.store, run, night.start(0) + alive_until)


def restart(night: Night, at: datetime) -> list[Action]:
    return strikes.start_run(night.store, night.registry, night.election, 2, at)[1]


def test_start_run_closes_a_period_whose_end_the_previous_run_saw(night: Night) -> None:
    crashed_run(night, night.election.period)
    # killed at the period's end, before closing it; restarted 30 s later
    actions = restart(night, night.start(1) + timedelta(seconds=30))
    assert night.strikes_of("uadec") == 1
    assert [a.payload["message"] for a in actions] == ["period-failed"]


def test_start_run_skips_a_period_the_previous_run_did_not_live_through(night: Night) -> None:
    crashed_run(night, timedelta(minutes=3))
    # killed mid-period; restarted three periods later
    restart(night, night.start(3) + timedelta(seconds=30))
    assert night.strikes_of("uadec") == 0
    assert verdicts(night, "uadec") == ["skipped"]
    skipped = [p for p in night.store.periods() if not p.judged]
    assert [p.start for p in skipped] == [night.start(0), night.start(1), night.start(2)]
    assert len(night.store.events(kinds=("period-skipped",))) == 3


def test_restart_late_in_a_period_does_not_judge_it(night: Night) -> None:
    crashed_run(night, timedelta(minutes=1))
    # killed a minute in, back with two minutes left: less than the 3-minute budget
    restart(night, night.start(1) - timedelta(minutes=2))
    night.push("uadec", 0, False, offset_s=500)
    night.close(0)
    assert verdicts(night, "uadec") == ["skipped"]
    assert night.strikes_of("uadec") == 0


def test_manual_disable_is_recorded_and_stops_pushes(night: Night) -> None:
    actions = strikes.disable(
        night.store, night.registry, "vanguardia", "portal alterado", night.start(0), "operador1"
    )
    state = night.store.state("vanguardia")
    assert (state.status, state.manual, state.reason) == (
        DifusorStatus.DISABLED, True, "portal alterado",
    )  # fmt: skip
    assert sorted(a.kind for a in actions) == ["notify", "render-list", "suspend"]
    [event] = night.store.events(kinds=("manual-disable",))
    assert event.detail == {"reason": "portal alterado", "operator": "operador1"}
    with pytest.raises(StrikeError, match="already disabled"):
        strikes.disable(night.store, night.registry, "vanguardia", "otra", night.start(0), "op")
    assert [d.id for d in strikes.targets(night.store, night.registry)] == ["uadec"]


def test_reinstate_needs_a_confirmed_push_and_resets_strikes(night: Night) -> None:
    for index in range(3):
        night.period(index, UADEC_DOWN)
    night.open(3)
    at = night.start(3) + timedelta(minutes=2)
    failed = push_result(night.registry, "uadec", night.cut(3).cut_id, at, [True, False])
    assert (
        strikes.reinstate(
            night.store, night.registry, night.start(3), failed, night.cut(3), at, "operador1"
        )
        == []
    )
    assert night.store.state("uadec").status is DifusorStatus.DISABLED
    good = push_result(night.registry, "uadec", night.cut(3).cut_id, at, True)
    actions = strikes.reinstate(
        night.store, night.registry, night.start(3), good, night.cut(3), at, "operador1"
    )
    state = night.store.state("uadec")
    assert (state.status, state.strikes, state.reason) == (DifusorStatus.ACTIVE, 0, "")
    assert sorted(a.kind for a in actions) == ["notify", "render-list"]
    night.close(3)
    assert verdicts(night, "uadec")[-1] == "success"
    kinds = [e.kind for e in night.store.events(kinds=("reinstate-failed", "reinstated"))]
    assert kinds == ["reinstate-failed", "reinstated"]
    with pytest.raises(StrikeError, match="not disabled"):
        strikes.reinstate(night.store, night.registry, night.start(3), good, night.cut(3), at, "op")


def test_pending_difusor_is_never_judged_nor_pushed(night: Night) -> None:
    registry = night.registry.model_copy(
        update={
            "difusores": [
                night.registry.difusores[0].model_copy(update={"status": DifusorStatus.PENDING}),
                night.registry.difusores[1],
            ]
        }
    )
    pending = Night(night.store, registry, night.election)
    pending.open(0)
    pending.close(0)
    assert verdicts(pending, "uadec") == ["pending"]
    assert [d.id for d in strikes.targets(night.store, registry)] == ["vanguardia"]


def test_store_is_wal_with_full_sync_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        pragma = store._db.execute
        assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert pragma("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
        pragma("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        Store(path)


def test_every_state_change_is_one_transaction(night: Night) -> None:
    night.open(0)
    night.push("uadec", 0, False)
    with pytest.raises(RuntimeError), night.store.transaction():
        night.store.add_event(night.start(1), "strike", "uadec")
        raise RuntimeError("crash in the middle")
    assert night.store.events(kinds=("strike",)) == []
    assert night.store.schema_version == SCHEMA_VERSION
