"""The orchestrator's loop: every update period, the newest cut to every active difusor.

**Where cuts come from** (the contract with the PREP system): ``SOURCE`` is a
directory the PREP drops cuts into. An entry of ``SOURCE`` is a complete cut when

- it is a directory ``SOURCE/<name>/`` and the empty marker ``SOURCE/<name>.complete``
  exists (written after the last file of the directory was closed; the marker
  lives beside the directory so that it is never published), or
- it is a file ending in ``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2`` or
  ``.tar.xz``, which the PREP writes under another name and renames into place.

Names starting with ``.`` or ending in ``.part``, ``.partial``, ``.tmp`` or
``.complete`` are never cuts. Among complete cuts the newest is the one whose
results CSV states the latest cut time (never the file name or its mtime).

**A cut that cannot be prepared** is never a crash: one that cannot be read or
unpacked is recorded (``cut-invalid``) and skipped, and the newest one that
prepares is served instead; when signing fails (a missing or unreadable signing
key, one ``ssh-keygen`` cannot sign with) the event is ``signing-failed`` and no
unprepared cut is tried again in that period. Either way the operators get a
``preparation-failed`` notice through the outbox (one per cut and period), no
difusor is struck for the IEC's fault (a period with no cut judges nobody), and
the next period tries again.

**Each period** (``PeriodClock``: the election's window and zone, or a drill):

1. ``open_period`` with the newest cut, prepared (hashed and signed) once per cut;
2. a round of ``push_many`` to every active difusor, within the transfer budget
   and the time left, all sharing one deadline: the cut to nodes that are
   behind, and to every node a freshness statement signed for its difusor this
   period (``prep_iac.publish.freshness``), valid for (strike limit + 1) ×
   period. Difusores that confirmed the previous period go first, and a node
   that cannot be connected to gives its worker back at once (``fail_fast``),
   so dead nodes never make live ones late. Each difusor's result is recorded
   as it arrives; the period is judged by what the nodes confirmed in it;
3. difusores not yet confirmed get further rounds, with a growing pause, while
   a whole transfer budget still fits before the period ends (clause III's
   error "not solved" during the period: an early failure is not yet a strike);
4. a newer cut that arrives while the budget still fits becomes the period's cut
   and everyone gets it;
5. after the first round, ``perform_pending`` (notices, the suspension, the
   IEC's list: what the previous period decided), so the outbox never delays
   a period's pushes; no action starts with less than a connect timeout and a
   second of the period left (the rest wait for the next period); at the
   boundary, ``heartbeat`` and ``close_period``.

**Nothing holds the loop past a period's end.** Every step of a connection is
bounded by the time left (paramiko's own waits are 15 s for a key exchange and
an hour for a channel); a push still in flight at the period's end (a server
that takes the upload and stalls) is recorded as a failed attempt (``timeout``),
event ``push-overran``, and that difusor gets no second push while the first is
in flight (each period it is held counts as failed). A node no worker reached
before the deadline is recorded as not attempted: the IEC's capacity, no strike.

**The PREP's close.** Once the PREP has published its last cut (the operator's
``prep-iac close-prep``, or the PREP's marker ``SOURCE/<name>.final`` beside a
complete cut), every statement is *final*: no expiry, "publicación concluida".
Periods go on being served and judged until the window ends, so a difusor that
goes dark after the close is still found. When the window ends the loop sends
every active difusor's nodes one more final statement (event
``publication-concluded``), so the last cut stays published after the window
too, whatever the host's clock does; outside the window nothing else is pushed.

**Stopping** (SIGTERM): no new push starts; pushes in flight get ``grace_s`` to
finish. The event ``orchestrator-stopping`` names the difusores whose push in
the period finished and those abandoned (none if nothing was in flight). The
period is left open: the next run closes it unjudged (the orchestrator was not
up at its end), so nobody gets a strike for it. An abandoned push is safe on
the host: an upload not yet renamed out of ``.part`` is never activated and
the next push removes it.

**Drills**: with ``PeriodClock(drill=...)`` the store records election time
(attempt times and durations scaled by the drill's speed), so the clause-III
decisions are exactly those of a real night.
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prep_iac.cuts import CutFormatError, read_cut_time
from prep_iac.models.difusor import Difusor, Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate import outbox, strikes
from prep_iac.orchestrate.canary import Canary, probe
from prep_iac.orchestrate.iec_list import ListPublisher
from prep_iac.orchestrate.notify import Notifier
from prep_iac.orchestrate.outbox import Handler
from prep_iac.orchestrate.schedule import Period, PeriodClock, local
from prep_iac.orchestrate.settings import OrchestratorSettings
from prep_iac.orchestrate.store import Store, ts
from prep_iac.orchestrate.strikes import CutRef, IecFaultRule, Message
from prep_iac.orchestrate.suspension import SuspensionSender
from prep_iac.publish.freshness import SignedStatement, sign_statements, validity
from prep_iac.publish.manifest import CutError, cut_directory
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import JOIN_S, Credentials, DifusorResult, NodeResult, push_many
from prep_iac.publish.signing import SigningError

MARKER = ".complete"
FINAL_MARKER = ".final"  # beside a complete cut: the PREP's last
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
PARTIAL = (".part", ".partial", ".tmp", MARKER, FINAL_MARKER)
PREP_CLOSED = "prep-closed"
HEARTBEAT_S = 5.0

Pusher = Callable[..., list[DifusorResult]]
"""``push_many``'s signature: (cut, difusores, credentials, budget_s, concurrency, on_result,
statements)."""


@dataclass(frozen=True)
class FoundCut:
    """A complete cut in SOURCE and the time it states."""

    path: Path
    cut_id: str
    cut_time: datetime

    @property
    def ref(self) -> CutRef:
        return CutRef(self.cut_id, self.cut_time)


class CutSource:
    """The PREP's drop directory, read by the contract in this module's docstring.

    + directory: SOURCE
    + election: names cuts (``cut_id``) and places the stated local time in its zone
    """

    def __init__(self, directory: Path, election: Election) -> None:
        self.directory = directory
        self.election = election
        self._times: dict[tuple[str, int, int], FoundCut] = {}
        self._latest: datetime | None = None  # the newest instant read: places the next cut
        self.invalid: dict[str, str] = {}  # entry name -> why; reported once each

    def complete(self) -> list[Path]:
        """Entries of SOURCE that are complete cuts, in name order."""
        try:
            entries = sorted(self.directory.iterdir())
        except FileNotFoundError:
            return []
        names = {p.name for p in entries}
        found = []
        for path in entries:
            name = path.name
            if name.startswith(".") or name.endswith(PARTIAL) or name in self.invalid:
                continue
            directory = path.is_dir() and name + MARKER in names
            if directory or (path.is_file() and name.lower().endswith(ARCHIVES)):
                found.append(path)
        return found

    def cuts(self) -> list[FoundCut]:
        """Every complete, readable cut, oldest first by the time it states.

        Entries not read before are read in the order the PREP produced them
        (modification time): a wall-clock time that a fall-back repeats is
        placed against the cut read before it (``Election.stated_instant``).
        """
        found, fresh = [], []
        for path in self.complete():
            stat = path.stat()
            key = (path.name, stat.st_mtime_ns, stat.st_size)
            if key in self._times:
                found.append(self._times[key])
            else:
                fresh.append((stat.st_mtime_ns, path.name, key, path))
        for _, _, key, path in sorted(fresh):
            cut = self._read(path, key)
            if cut is not None:
                found.append(cut)
        return sorted(found, key=lambda c: c.cut_time)

    def mark_invalid(self, path: Path, why: str) -> None:
        self.invalid[path.name] = why

    def closed_by(self) -> FoundCut | None:
        """The complete cut the PREP marked as its last (``<name>.final``), if any."""
        for cut in reversed(self.cuts()):
            if (self.directory / f"{cut.path.name}{FINAL_MARKER}").exists():
                return cut
        return None

    def _read(self, path: Path, key: tuple[str, int, int]) -> FoundCut | None:
        try:
            if path.is_file() and not path.name.lower().endswith(".zip"):
                with cut_directory(path) as directory:
                    stated = read_cut_time(directory)
            else:
                stated = read_cut_time(path)
        except (CutError, CutFormatError, OSError) as exc:
            self.mark_invalid(path, str(exc))
            return None
        try:
            when = self.election.stated_instant(stated.local, stated.offset_label, self._latest)
        except ValueError as exc:  # a time the zone skips, or an offset it does not have
            self.mark_invalid(path, f"{stated.source}: {exc}")
            return None
        when = local(when, self.election.tz)  # compares as an instant, also in the fall-back
        if self._latest is None or when > self._latest:
            self._latest = when
        self._times[key] = FoundCut(path, self.election.cut_id(when), when)
        return self._times[key]


# Pause after a round of pushes before the next one, per round so far (of the period).
RETRY_PAUSE = 0.05
# Threads (and SSH sessions) at most in flight, whatever the registry's size.
MAX_WORKERS = 64


@dataclass
class Tries:
    """One period's rounds of pushes of its current cut, and who confirmed it."""

    cut: CutRef | None = None
    confirmed: set[str] = field(default_factory=set)
    rounds: int = 0
    next_round: float = 0.0
    held: set[str] = field(default_factory=set)  # recorded as held by an earlier push

    def aim(self, cut: CutRef) -> None:
        """The period's cut is ``cut`` (it can rise while the budget fits): everyone anew."""
        if self.cut != cut:
            self.cut, self.confirmed, self.rounds, self.next_round = cut, set(), 0, 0.0


@dataclass
class PeriodPushes:
    """What the loop did in one period, for whoever watches (the drill's timeline)."""

    period: Period
    cut_id: str | None
    results: list[DifusorResult] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class Runner:
    """The loop; ``run`` returns when the window is over or ``stop`` is set.

    + store, registry, election: the state, who gets cuts, the rules
    + source: the PREP's drop directory
    + signing_key: signs each cut's manifest (the hosts verify it)
    + workdir: manifests and unpacked archives
    + credentials: the IEC's SSH login
    + clock: the period clock (a drill compresses it)
    + handlers: the outbox's handlers (``default_handlers``)
    + concurrency: nodes pushed at once
    + poll_s: how often SOURCE is read while a period runs (real seconds)
    + grace_s: how long pushes in flight may finish after ``stop`` (real seconds)
    + on_period_start: called with each period before its cut is chosen (drills inject faults)
    + on_period_end: called with what a period did, after it was closed
    + pusher: ``push_many`` or a stand-in with its signature
    + canaries: the IEC's own targets, probed once a period (``canary``)
    + iec_fault: when a period's failures are the IEC's (``strikes.IecFaultRule``)
    """

    store: Store
    registry: Registry
    election: Election
    source: CutSource
    signing_key: Path
    workdir: Path
    credentials: Credentials
    clock: PeriodClock
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    concurrency: int = 8
    poll_s: float = 1.0
    grace_s: float = 30.0
    on_period_start: Sequence[Callable[[Period], None]] = ()
    on_period_end: Sequence[Callable[[PeriodPushes], None]] = ()
    pusher: Pusher = push_many
    canaries: Sequence[Canary] = ()
    iec_fault: IecFaultRule = field(default_factory=IecFaultRule)
    _prepared: dict[str, PreparedCut] = field(default_factory=dict, init=False)
    # Preparation failures: (event, what, cut, error), reported once per period.
    _unprepared: list[tuple[str, str, FoundCut, str]] = field(default_factory=list, init=False)
    _reported: set[tuple[str, str]] = field(default_factory=set, init=False)
    _tried_in: int | None = field(default=None, init=False)  # the period failures are from
    _signing_failed: bool = field(default=False, init=False)
    _run: int = field(default=0, init=False)
    _beat: float = field(default=0.0, init=False)
    # Difusores whose push outlived its period (a server stalling mid-transfer), by the
    # push holding them: no second push goes to them until it returns.
    _in_flight: dict[str, int] = field(default_factory=dict, init=False)
    _flight_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _pushes: int = field(default=0, init=False)

    # -- the loop --------------------------------------------------------------

    def run(self, stop: threading.Event) -> str:
        """Serve periods until the window ends (``"window-over"``) or ``stop`` (``"stopped"``)."""
        self._run, _ = strikes.start_run(
            self.store, self.registry, self.election, os.getpid(), self.clock.now()
        )
        self._perform()
        outcome = "stopped"
        served: Period | None = None
        try:
            while not stop.is_set():
                period = self.clock.current()
                if period is None:
                    boundary = self.clock.next_boundary()
                    if boundary is None:
                        outcome = "window-over"
                        self._conclude()
                        break
                    self._wait_until(boundary, stop)
                    continue
                if served is not None and period.index > served.index + 1:
                    strikes.record_overrun(self.store, self.election, self.clock.now())
                self._serve(period, stop)
                served = period
        finally:
            strikes.stop_run(self.store, self._run, self.clock.now())
        return outcome

    def _serve(self, period: Period, stop: threading.Event) -> None:
        for hook in self.on_period_start:
            hook(period)
        self._note_close()
        report = PeriodPushes(period, None)
        tries = Tries()
        offered: str | None = ""  # the newest cut last offered to open_period
        outbox_done = False
        canary_failed: str | None = None
        while not stop.is_set() and self.clock.now() < period.end:
            newest = self._newest()
            newest_id = None if newest is None else newest[0].cut_id
            if newest_id != offered:
                offered = newest_id
                record = strikes.open_period(
                    self.store, self.registry, self.election, period,
                    None if newest is None else newest[0].ref, self.clock.now(),
                )  # fmt: skip
                report.cut_id = record.cut_id
                if record.cut_id is not None and record.cut_time is not None:
                    tries.aim(CutRef(record.cut_id, record.cut_time))
            if self._try_round(tries, period, report, stop):
                continue
            if not outbox_done:  # after the period's first round: it never delays pushes
                outbox_done = True
                canary_failed = self._probe(period)
                self._perform(period)
                continue
            self._heartbeat()
            self._sleep(min(self.poll_s, self.clock.real_seconds_until(period.end)), stop)
        if stop.is_set():
            report.interrupted = True
            self._event(
                "orchestrator-stopping", period=period.start, cut_id=report.cut_id,
                finished=sorted(r.difusor for r in report.results),
                abandoned=sorted(report.abandoned),
            )  # fmt: skip
            return
        now = self.clock.now()
        strikes.heartbeat(self.store, self._run, now)
        strikes.close_period(
            self.store, self.registry, self.election, period.start, now,
            canary_failed=canary_failed, rule=self.iec_fault,
        )  # fmt: skip
        for done in self.on_period_end:
            done(report)

    def _try_round(
        self, tries: Tries, period: Period, report: PeriodPushes, stop: threading.Event
    ) -> bool:
        """Push the period's cut (and statements) to the active difusores that have not
        confirmed it in this period, if a round is due; True if one ran.

        The first round goes whatever time is left; later ones (clause III: an error
        "not solved" during the period) only while a whole transfer budget still fits
        before the period ends, with a growing pause between rounds. Only the
        period's end judges.
        """
        ref = tries.cut
        if ref is None or time.monotonic() < tries.next_round:
            return False
        if tries.rounds and self.clock.real_seconds_until(period.end) < self.full_budget_s():
            return False
        pending = [d for d in strikes.targets(self.store, self.registry)
                   if d.id not in tries.confirmed]  # fmt: skip
        with self._flight_lock:
            held = [d for d in pending if d.id in self._in_flight]
        fresh = [d for d in held if d.id not in tries.held]
        if fresh:  # its server still holds an earlier period's push: it fails this one too
            tries.held |= {d.id for d in fresh}
            self._record_unfinished(
                fresh, period, ref, time.monotonic(), "a push begun in an earlier period "
                "is still in flight (its server stalls)",
            )  # fmt: skip
        pending = [d for d in pending if d not in held]
        if not pending:
            return False
        prepared = self._prepare(ref.cut_id)
        if prepared is None:  # the period's cut (from a previous run) is gone from SOURCE
            if not tries.rounds:
                self._event("cut-missing", period=period.start, cut_id=ref.cut_id)
            tries.rounds += 1
            tries.next_round = float("inf")
            return False
        finished, abandoned = self._push(prepared, self._ordered(pending, period), period, ref,
                                         stop)  # fmt: skip
        report.results += finished
        report.abandoned += abandoned
        tries.confirmed |= {r.difusor for r in finished if r.ok}
        tries.rounds += 1
        pause = self.clock.real_seconds(self.election.period) * RETRY_PAUSE * tries.rounds
        tries.next_round = time.monotonic() + max(self.poll_s, pause)
        return True

    def _probe(self, period: Period) -> str | None:
        """Why every canary failed this period (an event), or None."""
        failed = probe(self.canaries, self.credentials)
        if failed is not None:
            self._event("canary-failed", period=period.start, error=failed)
        return failed

    def _ordered(self, difusores: list[Difusor], period: Period) -> list[Difusor]:
        """Difusores that confirmed the previous period first: a dead one never holds up
        those that will answer."""
        previous = self.store.period_before(period.start)
        if previous is None:
            return difusores
        good = {v.difusor for v in self.store.verdicts(period=previous.start)
                if v.verdict == strikes.VerdictKind.SUCCESS}  # fmt: skip
        return sorted(difusores, key=lambda d: d.id not in good)

    def workers(self, difusores: list[Difusor]) -> int:
        """Nodes pushed at once in a round (``round_workers``)."""
        return round_workers(
            difusores, self.concurrency, self.credentials.connect_timeout, self.full_budget_s()
        )

    def full_budget_s(self) -> float:
        """The election's transfer budget on the real clock."""
        return self.clock.real_seconds(self.election.transfer_budget)

    # -- cuts ------------------------------------------------------------------

    def _newest(self) -> tuple[FoundCut, PreparedCut] | None:
        """The newest complete cut that prepares (hashes and signs) cleanly.

        Failures are reported once per period (``_report_unprepared``); a new
        period forgets them, so every cut is tried again.
        """
        period = self.clock.current()
        index = None if period is None else period.index
        if index != self._tried_in:
            self._tried_in, self._signing_failed = index, False
            self.source.invalid.clear()
            self._reported.clear()
        found = None
        for cut in reversed(self.source.cuts()):
            prepared = self._prepare_found(cut)
            if prepared is not None:
                found = (cut, prepared)
                break
        self._report_unprepared(period)
        return found

    def _prepare(self, cut_id: str) -> PreparedCut | None:
        if cut_id in self._prepared:
            return self._prepared[cut_id]
        found = [c for c in self.source.cuts() if c.cut_id == cut_id]
        return self._prepare_found(found[-1]) if found else None

    def _prepare_found(self, cut: FoundCut) -> PreparedCut | None:
        prepared = self._prepared.get(cut.cut_id)
        if prepared is not None:
            return prepared
        if self._signing_failed:  # this period's signing already failed: no more hashing
            return None
        try:
            prepared = prepare_cut(
                cut.path, self.election, self.signing_key, self.workdir, cut.cut_time
            )
        except SigningError as exc:
            self._signing_failed = True
            self._unprepared.append(("signing-failed", "signing", cut, str(exc)))
            return None
        except (CutError, CutFormatError, OSError) as exc:
            self.source.mark_invalid(cut.path, str(exc))
            self._unprepared.append(("cut-invalid", "cut", cut, str(exc)))
            return None
        self._prepared[cut.cut_id] = prepared
        self._prune(keep=cut.cut_id)
        return prepared

    def _report_unprepared(self, period: Period | None) -> None:
        """An event and an operators' notice for each cut that failed, once per period.

        Also for entries ``CutSource`` could not read at all (no cut id yet).
        """
        when = ts(period.start) if period is not None else ts(self.clock.now())
        unread = [("cut-invalid", "cut", None, n, why) for n, why in self.source.invalid.items()]
        failures = [(e, w, c, c.path.name, why) for e, w, c, why in self._unprepared] + unread
        self._unprepared.clear()
        for event, what, cut, name, why in failures:
            if (event, name) in self._reported:
                continue
            self._reported.add((event, name))
            strikes.alert_operators(
                self.store, self.clock.now(), event, Message.PREPARATION_FAILED,
                f"{event}:{name}:{when}", None if period is None else period.start,
                what=what, cut_id="" if cut is None else cut.cut_id,
                path=str(self.source.directory / name), error=why,
            )  # fmt: skip

    def _prune(self, keep: str) -> None:
        """Keep the prepared newest cuts only (unpacked archives take a cut's size each)."""
        by_time = sorted(self._prepared, key=lambda c: self._prepared[c].manifest.cut_time)
        for cut_id in by_time[:-3]:  # ids do not sort in time order across a fall-back
            if cut_id != keep:
                del self._prepared[cut_id]
                shutil.rmtree(self.workdir / "cuts" / cut_id, ignore_errors=True)

    # -- pushing ---------------------------------------------------------------

    def budget_s(self, period: Period) -> float:
        """Real seconds a push may take now: the transfer budget, or what is left of the period."""
        return max(0.0, min(self.full_budget_s(), self.clock.real_seconds_until(period.end)))

    def _push(
        self, cut: PreparedCut, difusores: list[Difusor], period: Period, ref: CutRef,
        stop: threading.Event,
    ) -> tuple[list[DifusorResult], list[str]]:  # fmt: skip
        """Push in a worker thread; record each result here (the store is this thread's).

        Returns the results and, if ``stop`` cut the wait short, the difusores abandoned.
        """
        results: queue.Queue[DifusorResult] = queue.Queue()
        failure: list[BaseException] = []
        done = threading.Event()
        statements = self._statements(difusores, ref, final=self.prep_closed())
        began = time.monotonic()
        period_end = began + self.clock.real_seconds_until(period.end)
        self._pushes += 1
        serial = self._pushes
        with self._flight_lock:
            self._in_flight.update({d.id: serial for d in difusores})

        def landed(difusor: str) -> None:
            with self._flight_lock:
                if self._in_flight.get(difusor) == serial:
                    del self._in_flight[difusor]

        def arrived(result: DifusorResult) -> None:
            landed(result.difusor)
            results.put(result)

        def work() -> None:
            try:
                self.pusher(
                    cut, difusores, self.credentials, self.budget_s(period),
                    concurrency=self.workers(difusores), on_result=arrived,
                    statements=statements, fail_fast=True,
                )  # fmt: skip
            except BaseException as exc:  # re-raised in the loop's thread
                failure.append(exc)
            finally:
                for difusor in difusores:
                    landed(difusor.id)
                done.set()

        threading.Thread(target=work, name=f"push-{ref.cut_id}", daemon=True).start()
        pending = {d.id for d in difusores}
        finished: list[DifusorResult] = []
        give_up: float | None = None
        overran = False
        while pending:
            try:
                result = results.get(timeout=0.2)
            except queue.Empty:
                if done.is_set() and results.empty():
                    break
                if stop.is_set():
                    give_up = give_up or time.monotonic() + self.grace_s
                    if time.monotonic() >= give_up:
                        break
                elif time.monotonic() >= period_end:  # never past the period: the next
                    overran = True  # one's pushes are due, for everyone else
                    break
                self._heartbeat()
                continue
            strikes.record_push(self.store, period.start, self.in_election_time(result), ref)
            pending.discard(result.difusor)
            finished.append(result)
        if failure:
            raise failure[0]
        if overran:
            held = [d for d in difusores if d.id in pending]
            self._record_unfinished(
                held, period, ref, began, "its push was still in flight at the period's end"
            )
            self._event("push-overran", period=period.start, cut_id=ref.cut_id,
                        difusores=sorted(pending))  # fmt: skip
            return finished, []
        return finished, sorted(pending)

    def _record_unfinished(
        self, difusores: list[Difusor], period: Period, ref: CutRef, began: float, why: str
    ) -> None:
        """A failed attempt (``timeout``) for each node of ``difusores``, whose push did
        not return in the period: the verdict is theirs (``failed``), never "not
        attempted", so a server that takes the connection and stalls is struck."""
        seconds = time.monotonic() - began
        started = self.clock.clock() - timedelta(seconds=seconds)
        for difusor in difusores:
            nodes = [
                NodeResult(
                    difusor.id, strikes.node_key(node.host, node.port), ref.cut_id,
                    attempts=1, duration_s=round(seconds, 3), error_class="timeout",
                    error=f"{node.host}:{node.port}: {why}", started_at=started.isoformat(),
                )
                for node in difusor.nodes
            ]  # fmt: skip
            result = DifusorResult(difusor.id, ref.cut_id, nodes)
            strikes.record_push(self.store, period.start, self.in_election_time(result), ref)

    def in_election_time(self, result: DifusorResult) -> DifusorResult:
        """The result with times on the election's clock (a drill's are compressed)."""
        drill = self.clock.drill
        if drill is None:
            return result
        nodes = [
            replace(
                node,
                started_at=drill.to_election(datetime.fromisoformat(node.started_at)).isoformat(),
                duration_s=node.duration_s * drill.speed,
            )
            for node in result.nodes
        ]
        return replace(result, nodes=nodes)

    # -- freshness ---------------------------------------------------------------

    def _statements(
        self, difusores: list[Difusor], ref: CutRef, final: bool
    ) -> dict[str, SignedStatement]:
        """This push's statement for each difusor, issued now on the real clock (the
        hosts' clock). A difusor whose statement cannot be signed gets the cut alone
        (confirming it is no strike), and the operators are alerted once per cut and
        period: its host's vouch runs out on its own if the key stays broken."""
        speed = self.clock.drill.speed if self.clock.drill else 1.0
        signed, failed = sign_statements(
            self.election.id, [d.id for d in difusores], ref.cut_id, ref.cut_time,
            self.clock.clock(), None if final else validity(self.election, speed),
            self.signing_key,
        )  # fmt: skip
        if failed:
            now = self.clock.now()
            period = self.clock.period_at(now)
            strikes.alert_operators(
                self.store, now, "statement-unsigned", Message.PREPARATION_FAILED,
                f"statement-unsigned:{ref.cut_id}:{ts(period.start if period else now)}",
                None if period is None else period.start, what="statement",
                cut_id=ref.cut_id, path=str(self.signing_key), error=next(iter(failed.values())),
                difusores=sorted(failed),
            )  # fmt: skip
        return signed

    def prep_closed(self) -> bool:
        """Whether the PREP has published its last cut (``close_prep`` or the marker)."""
        return prep_closed(self.store)

    def _note_close(self) -> None:
        """Record the PREP's close once, when the PREP marks its last cut in SOURCE."""
        if self.prep_closed():
            return
        last = self.source.closed_by()
        if last is not None:
            close_prep(self.store, self.clock.now(), "prep", cut_id=last.cut_id)

    def _conclude(self) -> None:
        """The window is over: every active difusor's nodes get a final statement for
        the newest cut, so its last cut stays published (event ``publication-concluded``)."""
        newest = self._newest()
        active = strikes.targets(self.store, self.registry)
        if newest is None or not active:
            return
        found, prepared = newest
        statements = self._statements(active, found.ref, final=True)
        results = self.pusher(
            prepared, active, self.credentials, self.full_budget_s(),
            concurrency=self.concurrency, statements=statements,
        )  # fmt: skip
        self._event(
            "publication-concluded", cut_id=found.cut_id,
            confirmed=sorted(r.difusor for r in results if r.ok),
            failed={r.difusor: sorted({n.error_class for n in r.nodes if not n.ok})
                    for r in results if not r.ok},
        )  # fmt: skip

    # -- bookkeeping -----------------------------------------------------------

    def _perform(self, period: Period | None = None) -> None:
        """The outbox; within ``period``, no action starts once too little of it is left
        for one (a connect timeout and a second): the rest waits for the next period,
        so a slow mail server or suspension target never makes the loop late."""
        reserve = self.credentials.connect_timeout + 1.0

        def keep_going() -> bool:
            return period is None or self.clock.real_seconds_until(period.end) > reserve

        outbox.perform_pending(self.store, self.handlers, self.clock.now, keep_going=keep_going)

    def _event(self, kind: str, period: datetime | None = None, **detail: Any) -> None:
        with self.store.transaction():
            self.store.add_event(self.clock.now(), kind, None, period, **detail)

    def _heartbeat(self) -> None:
        """Say the loop is alive, at most every ``HEARTBEAT_S`` (each one is a commit)."""
        if time.monotonic() - self._beat >= HEARTBEAT_S:
            strikes.heartbeat(self.store, self._run, self.clock.now())
            self._beat = time.monotonic()

    def _sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))

    def _wait_until(self, when: datetime, stop: threading.Event) -> None:
        """Wait (heartbeating) until election time ``when``, or ``stop``."""
        while not stop.is_set():
            left = self.clock.real_seconds_until(when)
            if left <= 0:
                return
            self._sleep(min(left, max(self.poll_s, 5.0)), stop)
            self._heartbeat()


def round_workers(
    difusores: list[Difusor], concurrency: int, connect_timeout: float, budget_s: float
) -> int:
    """Nodes pushed at once: ``concurrency``, or more when that many dead nodes, each
    holding a worker for a connect timeout, would take over half the budget, so that
    every node has its try in the round (100 nodes fit in one period)."""
    nodes = sum(len(d.nodes) for d in difusores)
    held = connect_timeout + JOIN_S  # a dead node's worst: its timeout, then closing it
    needed = math.ceil(nodes * held / max(budget_s / 2, 1e-3))
    return max(concurrency, min(MAX_WORKERS, needed))


def prep_closed(store: Store) -> bool:
    """Whether the PREP's close is recorded: every freshness statement is final then."""
    return bool(store.events(kinds=(PREP_CLOSED,)))


def close_prep(store: Store, now: datetime, operator: str, cut_id: str | None = None) -> bool:
    """Record that the PREP has published its last cut; False if it was already closed.

    From the next push on, every freshness statement is final (no expiry).
    """
    with store.transaction():
        if prep_closed(store):
            return False
        store.add_event(now, PREP_CLOSED, operator=operator, cut_id=cut_id)
    return True


def default_handlers(
    settings: OrchestratorSettings, store: Store, registry: Registry, registry_dir: Path,
    election: Election, credentials: Credentials | None, clock: Callable[[], datetime],
    signing_key: Path | None = None,
) -> dict[str, Handler]:  # fmt: skip
    """The outbox handlers the settings allow: notices, the IEC's list, the suspension."""
    handlers: dict[str, Handler] = {}
    if settings.notify.smtp is not None or settings.notify.webhooks:
        handlers["notify"] = Notifier(settings.notify, store, registry, election, clock)
    listing = settings.iec_list
    if listing.directory is not None or listing.s3 is not None:
        handlers["render-list"] = ListPublisher(
            store, registry, registry_dir, election, clock, listing.directory, listing.s3, listing
        )
    key = signing_key or settings.signing_key
    if key is not None and credentials is not None:
        handlers["suspend"] = SuspensionSender(
            registry, election.id, key, settings.instructions_dir, credentials
        )
    return handlers


def newest_prepared(
    source: CutSource, election: Election, signing_key: Path, workdir: Path
) -> tuple[FoundCut, PreparedCut] | None:
    """The newest complete cut of SOURCE, prepared; for one-off pushes (``reinstate``).

    Cuts that cannot be read are skipped; a ``SigningError`` (the key) is raised.
    """
    for cut in reversed(source.cuts()):
        try:
            return cut, prepare_cut(cut.path, election, signing_key, workdir, cut.cut_time)
        except (CutError, CutFormatError, OSError):
            continue
    return None
