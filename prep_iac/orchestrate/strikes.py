"""Clause III as a state machine: each period's verdict, strikes, disabling, reinstating.

Clause III of the calls: "En caso de fallo en la conexión del sitio, se
procederá a comunicarse con el Difusor [...]. En caso de no solucionarse el
error durante 3 periodos de actualización consecutiva [...] se procederá a
interrumpir la transmisión [...], presentando el aviso respectivo en el portal
del Difusor, así como inhabilitando la liga [...] en la página de internet del IEC."

Semantics, exactly as implemented:

- **The period's cut** is the newest cut the PREP had produced when the period
  was opened, or a newer one that arrived while the transfer budget still fit
  before the period's end. A period with no cut at all judges nobody.
- **Confirmed**: every period the orchestrator contacts every node of every
  active difusor: a node that is behind gets the period's cut, and every node
  gets the period's signed freshness statement (``prep_iac.publish.freshness``).
  A node confirms when the host reports the cut active (``activated`` or
  ``already-active``) and holds the statement. A difusor is *node-complete*
  in a period when every node in the registry confirmed, within that period,
  the period's cut or a newer one.
- **Success**: by the period's end the difusor is node-complete in the period.
  Only the confirmation time counts, not when the push started. When the PREP
  produced no new cut, an up-to-date difusor still has to confirm the
  statement: up to date is not "no contact", so a node that died in a quiet
  hour fails the period like a failed push.
- **Failure**: a judged period without success, in which the orchestrator made
  at least one attempt to the difusor (any error: connection, host key, auth,
  disk, timeout, the host's rejection, no confirmation within the budget).
  Retries inside the period add nothing: one verdict per difusor and period
  (unique in the store), so at most one strike.
- **Late confirmation**: a push that confirms after its period ended does not
  undo that period's failure; it counts in the period in which it landed, like
  any confirmation there (so it makes that period a success only if its cut is
  still that period's cut, or newer).
- **Not the difusor's fault** (no strike, no reset; the count carries over):
  periods the orchestrator did not open (it was down), periods it opened or
  resumed after a restart with less than the transfer budget left, periods at
  whose end it was not running (its heartbeat stopped before the end), and
  periods in which it made no attempt to the difusor.
- **Strikes**: a failure adds one; a success resets to zero. At the election's
  ``strike_limit`` consecutive failures the difusor is disabled: no more
  pushes, no more strikes, a signed suspension for its portal, its link off
  the IEC's list, everyone notified. Pending difusors are never judged.
- **Manual**: ``disable`` stops a difusor with a reason; ``reinstate`` needs a
  confirmed push of the latest cut and resets strikes. Both are recorded.
- **The IEC's list** is re-rendered at most once per period, when it closes:
  if a difusor was disabled in it, or if a cut newer than any the list
  announced has been confirmed by some difusor's node (the list shows that
  cut's time); and at once on a manual disable or a reinstatement.

Each decision commits in one transaction together with the events and the
actions it requires (the outbox); ``outbox.perform_pending`` then does them.
A crash between deciding and acting loses nothing: the actions are pending.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from prep_iac.models.difusor import Difusor, DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate.schedule import Period, PeriodClock
from prep_iac.orchestrate.store import Action, Attempt, PeriodRecord, Store, Verdict, ts


class VerdictKind(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    NOT_ATTEMPTED = "not-attempted"  # the orchestrator never tried: its fault, not a strike
    IEC_FAULT = "iec-fault"  # failed, but the IEC's own side was down: no strike, no reset
    NO_CUT = "no-cut"
    SKIPPED = "skipped"  # the orchestrator was down for the period
    DISABLED = "disabled"
    PENDING = "pending"


class ActionKind(StrEnum):
    NOTIFY = "notify"
    SUSPEND = "suspend"
    RENDER_LIST = "render-list"


class Message(StrEnum):
    """What a notification is about; each has its own templates."""

    PERIOD_FAILED = "period-failed"
    DISABLED = "disabled"
    REINSTATED = "reinstated"
    PREPARATION_FAILED = "preparation-failed"  # to the operators: a cut not prepared or signed
    IEC_FAULT = "iec-fault"  # to the operators: a period's failures were the IEC's own


class StrikeError(ValueError):
    """An operator's request that does not apply (e.g. reinstating an active difusor)."""


# Errors of the network path, which an outage of the IEC's own uplink produces for
# every difusor at once; a host key, a refused key, a rejection or a full disk do not.
NETWORK_ERRORS = frozenset({"unreachable", "timeout", "ssh", "sftp-io"})


@dataclass(frozen=True)
class IecFaultRule:
    """When a period's failures are the IEC's, not the difusores' (Nagios' parents:
    a host behind a down router is UNREACHABLE, not DOWN).

    + share: at least this share of the period's judged difusores failed, every one
      with a network error (1.0: all of them)
    + minimum: and at least this many (so that two independent failures among few
      difusores still count as theirs)
    """

    share: float = 1.0
    minimum: int = 3

    def applies(self, judged: int, network_failures: int) -> bool:
        return judged > 0 and network_failures >= max(
            self.minimum, math.ceil(self.share * judged - 1e-9)
        )


class NodeOutcome(Protocol):
    """What the clause-III core needs of one node's push (``publish.push.NodeResult`` is
    one): the core does not depend on the SFTP adapter, only on this shape."""

    @property
    def node(self) -> str: ...
    @property
    def cut_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...  # "confirmed", "failed" or "untried"
    @property
    def bytes_sent(self) -> int: ...
    @property
    def files_sent(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def error_class(self) -> str: ...
    @property
    def error(self) -> str: ...
    @property
    def started_at(self) -> str: ...  # ISO 8601 with offset
    @property
    def ok(self) -> bool: ...


class PushOutcome(Protocol):
    """One difusor's push, every node's outcome (``publish.push.DifusorResult`` is one)."""

    @property
    def difusor(self) -> str: ...
    @property
    def nodes(self) -> Sequence[NodeOutcome]: ...
    @property
    def ok(self) -> bool: ...


@dataclass(frozen=True)
class CutRef:
    """The newest cut the PREP has produced."""

    cut_id: str
    cut_time: datetime


def node_key(host: str, port: int) -> str:
    """How a node is named in records; the same as ``NodeResult.node``."""
    return f"{host}:{port}"


def targets(store: Store, registry: Registry) -> list[Difusor]:
    """The difusores to push to now: active ones only (disabled and pending get nothing)."""
    active = {s.difusor for s in store.states() if s.status is DifusorStatus.ACTIVE}
    return [d for d in registry.difusores if d.id in active]


def open_period(
    store: Store, registry: Registry, election: Election, period: Period, cut: CutRef | None,
    now: datetime,
) -> PeriodRecord:  # fmt: skip
    """Record that the orchestrator is up for ``period`` (from ``schedule.PeriodClock``).

    A period opened with less than the transfer budget left is recorded but not
    judged: the difusor never had a fair try. Opening it again with a newer cut
    (the PREP's cut came after the period began) makes that the period's cut
    if the budget still fits before the end; otherwise the first record stands.
    """
    fits = period.end.astimezone(UTC) - now.astimezone(UTC) >= election.transfer_budget
    with store.transaction():
        store.sync_registry(registry, now)
        previous = store.period_before(period.start)
        new_cut = cut is not None and (
            previous is None or previous.cut_time is None or cut.cut_time > previous.cut_time
        )
        existing = store.period(period.start)
        if existing is None:
            note = "" if fits else "opened with less than the transfer budget left"
            store.insert_period(
                PeriodRecord(
                    start=period.start, end=period.end,
                    cut_id=None if cut is None else cut.cut_id,
                    cut_time=None if cut is None else cut.cut_time,
                    new_cut=new_cut, opened_at=now, closed_at=None, judged=fits, note=note,
                )
            )  # fmt: skip
            store.add_event(
                now, "period-opened" if fits else "period-skipped", period=period.start,
                cut_id=None if cut is None else cut.cut_id, new_cut=new_cut, note=note,
            )  # fmt: skip
        elif (
            cut is not None
            and fits
            and existing.closed_at is None
            and (existing.cut_time is None or cut.cut_time > existing.cut_time)
        ):
            store.raise_period_cut(period.start, cut.cut_id, cut.cut_time, new_cut)
            store.add_event(
                now, "period-cut", period=period.start, cut_id=cut.cut_id,
                previous_cut_id=existing.cut_id,
            )  # fmt: skip
    stored = store.period(period.start)
    assert stored is not None
    return stored


def record_push(store: Store, period: datetime, result: PushOutcome, cut: CutRef) -> None:
    """Record every node's attempt of one push, and the difusor's last cut or error."""
    with store.transaction():
        _record_attempts(store, period, result, cut)


def _record_attempts(store: Store, period: datetime, result: PushOutcome, cut: CutRef) -> None:
    attempts = []
    for node in result.nodes:
        if node.outcome == "untried":
            continue  # no time left at its turn: the IEC's capacity, no strike
        started = datetime.fromisoformat(node.started_at)
        attempt = Attempt(
            difusor=result.difusor,
            node=node.node,
            period=period,
            cut_id=node.cut_id,
            cut_time=cut.cut_time,
            started_at=started,
            finished_at=started + timedelta(seconds=node.duration_s),
            bytes_sent=node.bytes_sent,
            files_sent=node.files_sent,
            tries=node.attempts,
            duration_s=node.duration_s,
            outcome=node.outcome,
            error_class=node.error_class,
            error=node.error,
        )
        store.add_attempt(attempt)
        attempts.append(attempt)
    if not attempts:
        return
    state = store.state(result.difusor)
    finished = max(a.finished_at for a in attempts)
    if result.ok:
        newer = state.last_cut_time is None or cut.cut_time >= state.last_cut_time
        state = replace(
            state,
            last_cut_id=cut.cut_id if newer else state.last_cut_id,
            last_cut_time=cut.cut_time if newer else state.last_cut_time,
            last_confirmed_at=finished,
            last_error_class="",
            last_error="",
        )
    else:
        failed = next(a for a in attempts if not a.confirmed)
        state = replace(state, last_error_class=failed.error_class, last_error=failed.error)
    store.set_state(state, finished)


def close_period(
    store: Store, registry: Registry, election: Election, start: datetime, now: datetime,
    orchestrator_up: bool = True, canary_failed: str | None = None,
    rule: IecFaultRule = IecFaultRule(),
) -> list[Action]:  # fmt: skip
    """Decide every difusor's verdict for the period; return the actions it requires.

    Idempotent: closing a closed period does nothing and returns no actions
    (pending ones stay in the outbox). ``orchestrator_up`` is False when the
    orchestrator was not running at the period's end; nobody is judged then.
    The period is the IEC's fault (``iec-fault``: failures give no strike and
    reset nothing; the operators are told) when ``canary_failed`` says why the
    IEC's own canary failed, or when ``rule`` finds the failures are the IEC's.
    """
    with store.transaction():
        period = store.period(start)
        if period is None:
            raise KeyError(f"no period starting {start.isoformat()} was opened")
        if period.closed_at is not None:
            return []
        store.sync_registry(registry, now)
        judged = period.judged and orchestrator_up
        note = period.note or ("" if orchestrator_up else "orchestrator down at the period's end")
        keys: list[str] = []
        if not judged and period.judged:
            store.add_event(now, "period-skipped", period=start, note=note)
        before = {s.difusor: s.status for s in store.states()}
        fault = _iec_fault(store, registry, period, judged, canary_failed, rule)
        if fault is not None:
            store.add_event(now, "iec-fault", period=start, **fault)
            keys.append(
                _queue(store, ActionKind.NOTIFY, None, f"iec-fault:{ts(start)}", now,
                       message=Message.IEC_FAULT.value, period_start=ts(start), **fault)
            )  # fmt: skip
        for difusor in registry.difusores:
            if not store.has_verdict(difusor.id, start):
                keys += _judge(store, election, period, difusor, judged, now, fault is not None)
        disabled = [
            s.difusor for s in store.states()
            if s.status is DifusorStatus.DISABLED and before.get(s.difusor) is not s.status
        ]  # fmt: skip
        keys += _refresh_list(store, start, disabled, now)
        store.close_period(start, now, judged, note)
    return _actions(store, keys)


def _iec_fault(
    store: Store, registry: Registry, period: PeriodRecord, judged: bool,
    canary_failed: str | None, rule: IecFaultRule,
) -> dict[str, Any] | None:  # fmt: skip
    """Why the period's failures are the IEC's own, or None when they are the difusores'."""
    if not judged:
        return None
    verdicts = {}
    for difusor in registry.difusores:
        status = store.state(difusor.id).status
        kind = _verdict(store, period, difusor, judged, status)
        if kind in (VerdictKind.SUCCESS, VerdictKind.FAILED):
            verdicts[difusor.id] = kind
    failed = [d for d, kind in verdicts.items() if kind is VerdictKind.FAILED]
    network = [d for d in failed if _last_error(store, d, period.start) in NETWORK_ERRORS]
    if canary_failed is not None and failed:
        return {"cause": "canary", "detail": canary_failed, "failed": failed}
    if rule.applies(len(verdicts), len(network)):
        return {"cause": "quorum", "detail": f"{len(network)} of {len(verdicts)} judged"
                " difusores failed with network errors", "failed": failed}  # fmt: skip
    return None


def _last_error(store: Store, difusor: str, period: datetime) -> str:
    failed = [a for a in store.attempts(difusor, period) if not a.confirmed]
    return failed[-1].error_class if failed else ""


def _judge(
    store: Store, election: Election, period: PeriodRecord, difusor: Difusor, judged: bool,
    now: datetime, iec_fault: bool = False,
) -> list[str]:  # fmt: skip
    """One difusor's verdict for one period, inside the caller's transaction."""
    state = store.state(difusor.id)
    kind = _verdict(store, period, difusor, judged, state.status)
    if kind is VerdictKind.FAILED and iec_fault:
        kind = VerdictKind.IEC_FAULT
    keys: list[str] = []
    start = period.start
    if kind is VerdictKind.SUCCESS and state.strikes:
        store.add_event(now, "recovered", difusor.id, start, strikes_before=state.strikes)
        state = replace(state, strikes=0)
    elif kind is VerdictKind.NOT_ATTEMPTED:
        store.add_event(now, "period-not-attempted", difusor.id, start, cut_id=period.cut_id)
    elif kind is VerdictKind.FAILED:
        failed = [a for a in store.attempts(difusor.id, start) if not a.confirmed]
        if failed:
            error_class, error = failed[-1].error_class, failed[-1].error
        else:  # every attempt confirmed, but only after the period had ended
            error_class = "late"
            error = f"cut {period.cut_id} confirmed on every node only after {ts(period.end)}"
        state = replace(state, strikes=state.strikes + 1)
        detail: dict[str, Any] = {
            "cut_id": period.cut_id, "strikes": state.strikes, "limit": election.strike_limit,
            "error_class": error_class, "error": error,
        }  # fmt: skip
        store.add_event(now, "strike", difusor.id, start, **detail)
        keys.append(
            _queue(store, ActionKind.NOTIFY, difusor.id, ts(start), now,
                   message=Message.PERIOD_FAILED.value, period_start=ts(start), **detail)
        )  # fmt: skip
        if state.strikes >= election.strike_limit:
            reason = (
                f"{state.strikes} periodos de actualización consecutivos sin confirmar el corte"
                f" ({error_class or 'sin error registrado'})"
            )
            state = replace(state, status=DifusorStatus.DISABLED, disabled_at=now, reason=reason)
            store.add_event(now, "disabled", difusor.id, start, reason=reason, **detail)
            keys += _disable_actions(store, difusor.id, ts(start), reason, now, detail)
            # The list is refreshed once for the whole period (``_refresh_list``).
    store.add_verdict(Verdict(difusor.id, start, kind.value, state.strikes, now))
    store.set_state(state, now)
    return keys


def _verdict(
    store: Store, period: PeriodRecord, difusor: Difusor, judged: bool, status: DifusorStatus
) -> VerdictKind:
    if status is DifusorStatus.DISABLED:
        return VerdictKind.DISABLED
    if status is DifusorStatus.PENDING:
        return VerdictKind.PENDING
    if not judged:
        return VerdictKind.SKIPPED
    if period.cut_time is None:
        return VerdictKind.NO_CUT
    if node_complete(store, difusor, period.cut_time, period.start, period.end):
        return VerdictKind.SUCCESS
    if not store.attempts(difusor.id, period.start):
        return VerdictKind.NOT_ATTEMPTED
    return VerdictKind.FAILED


def node_complete(
    store: Store, difusor: Difusor, cut_time: datetime, since: datetime, by: datetime
) -> bool:
    """Every node confirmed, between ``since`` and ``by``, the cut of ``cut_time`` or newer."""
    for node in difusor.nodes:
        key = node_key(node.host, node.port)
        newest = store.newest_confirmed_cut(difusor.id, key, by, since)
        if newest is None or newest < cut_time:
            return False
    return True


def _disable_actions(
    store: Store, difusor: str, key: str, reason: str, now: datetime, detail: dict[str, Any]
) -> list[str]:
    return [
        _queue(store, ActionKind.SUSPEND, difusor, key, now, reason=reason, issued_at=ts(now)),
        _queue(store, ActionKind.NOTIFY, difusor, key, now,
               message=Message.DISABLED.value, reason=reason, **detail),
    ]  # fmt: skip


def _refresh_list(store: Store, start: datetime, disabled: list[str], now: datetime) -> list[str]:
    """The period's one ``render-list``, if a difusor was disabled in it or a newer cut
    was confirmed; keyed by that cut, so each confirmed cut is announced once."""
    newest = store.newest_confirmed()
    announced = newest is None or store.has_action(_key(ActionKind.RENDER_LIST, f"cut-{newest[0]}"))
    if newest is not None and not announced:
        key = f"cut-{newest[0]}"
    elif disabled:
        key = f"{','.join(disabled)}:{ts(start)}"
    else:
        return []
    cut_id = None if newest is None else newest[0]
    return [
        _queue(store, ActionKind.RENDER_LIST, None, key, now, period_start=ts(start),
               cut_id=cut_id, disabled=disabled)
    ]  # fmt: skip


def _key(kind: ActionKind, key: str, message: str = "", difusor: str | None = None) -> str:
    return ":".join(part for part in (kind.value, message, difusor or "", key) if part)


def _queue(
    store: Store, kind: ActionKind, difusor: str | None, key: str, now: datetime, **payload: Any
) -> str:
    full_key = _key(kind, key, payload.get("message", ""), difusor)
    store.add_action(full_key, kind.value, difusor, payload, now)
    return full_key


def alert_operators(
    store: Store, now: datetime, event: str, message: Message, key: str,
    period: datetime | None = None, **detail: Any,
) -> None:  # fmt: skip
    """Record an IEC-side problem as ``event`` and queue the operators' notice, together.

    No difusor is concerned: nobody gets a strike for it. ``key`` names the
    occurrence; queuing the same key again does nothing.
    """
    with store.transaction():
        store.add_event(now, event, None, period, **detail)
        _queue(store, ActionKind.NOTIFY, None, key, now, message=message.value, **detail)


def _actions(store: Store, keys: Iterable[str]) -> list[Action]:
    wanted = set(keys)
    return [a for a in store.pending_actions() if a.key in wanted]


def disable(
    store: Store, registry: Registry, difusor: str, reason: str, now: datetime, operator: str
) -> list[Action]:
    """Disable a difusor by hand (recorded with who and why); return the actions required."""
    registry.get(difusor)
    if not reason.strip():
        raise StrikeError("a manual disable needs a reason, for the record")
    with store.transaction():
        store.sync_registry(registry, now)
        state = store.state(difusor)
        if state.status is DifusorStatus.DISABLED:
            raise StrikeError(f"{difusor} is already disabled since {state.disabled_at}")
        event = store.add_event(now, "manual-disable", difusor, reason=reason, operator=operator)
        store.set_state(
            replace(state, status=DifusorStatus.DISABLED, manual=True, disabled_at=now,
                    reason=reason),
            now,
        )  # fmt: skip
        key = f"event-{event}"
        keys = [
            *_disable_actions(store, difusor, key, reason, now, {"operator": operator}),
            _queue(store, ActionKind.RENDER_LIST, None, f"{difusor}:{key}", now),
        ]
    return _actions(store, keys)


def reinstate(
    store: Store, registry: Registry, period: datetime, result: PushOutcome, cut: CutRef,
    now: datetime, operator: str,
) -> list[Action]:  # fmt: skip
    """Re-enable a disabled difusor once a push of the latest cut confirmed on every node.

    The push's attempts are recorded in ``period`` either way; a failed push
    leaves the difusor disabled and records why.
    """
    registry.get(result.difusor)
    with store.transaction():
        store.sync_registry(registry, now)
        state = store.state(result.difusor)
        if state.status is not DifusorStatus.DISABLED:
            raise StrikeError(f"{result.difusor} is {state.status.value}, not disabled")
        _record_attempts(store, period, result, cut)
        if not result.ok:
            errors = sorted({n.error_class for n in result.nodes if not n.ok})
            store.add_event(now, "reinstate-failed", result.difusor, period,
                            cut_id=cut.cut_id, errors=errors, operator=operator)  # fmt: skip
            return []
        state = store.state(result.difusor)
        store.set_state(
            replace(state, status=DifusorStatus.ACTIVE, strikes=0, manual=False,
                    disabled_at=None, reason=""),
            now,
        )  # fmt: skip
        event = store.add_event(now, "reinstated", result.difusor, period,
                                cut_id=cut.cut_id, operator=operator)  # fmt: skip
        key = f"event-{event}"
        keys = [
            _queue(store, ActionKind.NOTIFY, result.difusor, key, now,
                   message=Message.REINSTATED.value, cut_id=cut.cut_id, operator=operator),
            _queue(store, ActionKind.RENDER_LIST, None, f"{result.difusor}:{key}", now),
        ]  # fmt: skip
    return _actions(store, keys)


def start_run(
    store: Store, registry: Registry, election: Election, pid: int, now: datetime
) -> tuple[int, list[Action]]:
    """Begin an orchestrator run: settle what a previous run left, then register this one.

    Periods left open and already over are closed; they are judged only if the
    previous run was still alive at their end (its last heartbeat). The period
    under way stays judged only if the transfer budget still fits before its
    end, as when it is opened. Periods nobody opened are recorded as skipped,
    so the record shows the outage.
    """
    previous = store.last_seen()
    actions: list[Action] = []
    for period in store.open_periods():
        if period.end <= now:
            alive = previous is not None and previous >= period.end
            actions += close_period(store, registry, election, period.start, now, alive)
        elif period.judged and period.end - now.astimezone(UTC) < election.transfer_budget:
            note = "orchestrator restarted with less than the transfer budget left"
            with store.transaction():
                store.unjudge_period(period.start, note)
                store.add_event(now, "period-skipped", period=period.start, note=note)
    with store.transaction():
        _record_missed(store, election, now)
        run = store.start_run(pid, now)
        store.add_event(now, "orchestrator-start", pid=pid, run=run)
    return run, actions


def record_overrun(store: Store, election: Election, now: datetime) -> None:
    """Record the periods that went by unopened while the loop was busy past their start
    (an outbox action or a push that overran): not judged, like an outage."""
    with store.transaction():
        _record_missed(store, election, now, "overrun: the orchestrator was busy past its start")


def _record_missed(
    store: Store, election: Election, now: datetime, note: str = "orchestrator down"
) -> None:
    """Record the periods that ended while no orchestrator was running (or serving)."""
    last = store.last_period()
    clock = PeriodClock(election)
    since = last.end if last is not None else election.window_start
    for period in clock.periods(since, now):
        if period.end > now:
            break  # the current period: this run may still serve it
        store.insert_period(
            PeriodRecord(period.start, period.end, None, None, False, now, now, False, note)
        )
        store.add_event(now, "period-skipped", period=period.start, note=note)


def heartbeat(store: Store, run: int, now: datetime) -> None:
    """Say the orchestrator is alive; a period is judged only if this reached its end."""
    with store.transaction():
        store.heartbeat(run, now)


def stop_run(store: Store, run: int, now: datetime) -> None:
    with store.transaction():
        store.stop_run(run, now)
        store.add_event(now, "orchestrator-stop", run=run)
