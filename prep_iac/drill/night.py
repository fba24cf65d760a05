"""The drill: a compressed election night on real hosts, with faults, checked end to end.

``run_drill`` brings up a testbed (one host per node), provisions every host
with the real difusor deploy (in parallel), generates a synthetic night, and
runs the real orchestrator loop (``runner.Runner``) on a drill clock while the
scenario's faults are injected at the periods it names: links down, a slow
link, sshd stopped, a changed host key, a cut altered after the IEC signed it.
The PREP's side is played by dropping each period's cut into SOURCE as the
period opens (the directory, then its ``.complete`` marker).

At the end it checks, from outside, what clause III promises: exactly the
expected difusor disabled at exactly its 3rd failed period and nobody else;
short outages recovered; the changed host key refused as such; the altered cut
refused by the hosts with the previous cut still served; the disabled difusor
serving the Spanish notice; its link off the IEC's list; every other node
serving the last cut (``X-PREP-Corte``); and the e-mail that a real SMTP
server on 127.0.0.1 received (``drill_mail``: one mail per failed period to
the difusor's contact, the disablement, the IEC's operators, no flood, none
to healthy difusores). The testbed is always torn down.

Before the window the hosts are seeded with the night's first cut (the app
shell is identical between cuts; simulacros leave it on every host), so each
drill period moves only what changed, as on the real night.

**Example:** ``prep-iac drill`` (root), or ``run_drill(default_scenario(), workdir)``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

import prep_iac
from prep_iac.audit.continuity import continuity
from prep_iac.audit.controls import Status
from prep_iac.audit.target import from_inventory
from prep_iac.cuts import generate_night
from prep_iac.drill.mail import mail_checks, mail_counts, notify_settings
from prep_iac.drill.mailbox import Mailbox, smtp_server
from prep_iac.hostside.activate import sha256_file
from prep_iac.informe import write_night_reports
from prep_iac.memoria.fetch import InventoryHost, fetch_logs
from prep_iac.models.difusor import Difusor, DifusorStatus, Node, Registry, TechnicalContact
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import outbox
from prep_iac.orchestrate.runner import (
    FINAL_MARKER,
    MARKER,
    CutSource,
    PeriodPushes,
    Runner,
    default_handlers,
)
from prep_iac.orchestrate.schedule import Drill, Period, PeriodClock, utc_now
from prep_iac.orchestrate.settings import IecListSettings, OrchestratorSettings
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.freshness import SignedStatement
from prep_iac.publish.manifest import FileEntry
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import Credentials, DifusorResult, push_many
from prep_iac.publish.signing import generate_signing_key
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed, DeployFailed, DeployHung, difusor_on, make_key
from prep_iac.testbed.ha import failover, ha_data, holders
from prep_iac.testbed.host import HOST_KEY
from prep_iac.testbed.settings import RELEASES, TestbedSettings, release_suite
from prep_iac.testbed.state import HostState

SCENARIO = "templates/drill.yaml"
FaultKind = Literal[
    "link-down", "shape", "stop-sshd", "host-key", "tamper", "cut-pause", "iec-outage"
]
# Faults of the PREP's side (no new cut) and the IEC's own (its uplink down on the
# machine's side: every link at once): they name no difusor.
PREP_FAULTS = ("cut-pause", "iec-outage")
SEED_BUDGET_S = 120.0
# Five fresh deploys in parallel take 4-5 min on a 2-core machine.
DEPLOY_TIMEOUT_S = 600.0
LOGGER = logging.getLogger(__name__)


class DrillDifusor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    legal_name: str
    hosts: list[int] = Field(min_length=1, description="Testbed host numbers, one per node.")
    floating: bool = Field(
        default=False, description="Its nodes share a floating address (keepalived, VRRP)."
    )


class Fault(BaseModel):
    """One fault: from period ``start`` for ``periods`` periods, on a difusor (or one node);
    ``cut-pause`` is the PREP's: it produces no new cut for those periods; ``iec-outage``
    the IEC's: its own uplink is down (every link, on the machine's side)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    difusor: str | None = Field(default=None, description="None only for the PREP's faults.")
    node: int | None = Field(default=None, description="Node index; None: every node.")
    start: int = Field(ge=0)
    periods: int = Field(default=1, ge=1)
    rate_mbit: float | None = Field(default=None, gt=0, description="For 'shape'.")

    def active(self, index: int) -> bool:
        return self.start <= index < self.start + self.periods


class DrillFailover(BaseModel):
    """The node of a floating-address difusor that holds the address fails right after
    period ``period``'s push, with a visitor on the address, and is mended before the
    next period opens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    difusor: str
    period: int = Field(ge=0)
    kind: Literal["power", "nginx", "link"] = "power"
    observe_s: float = Field(default=4.0, gt=0)
    max_gap_s: float = Field(default=4.0, gt=0, description="Clause II.a: keepalived's defaults.")


class Scenario(BaseModel):
    """A drill: difusores on testbed hosts, a compressed night and faults by period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    election: str = "coahuila-2018"
    period_seconds: float = Field(gt=1)
    periods: int = Field(ge=4)
    transfer_budget_seconds: int = Field(gt=0, description="Election seconds (drill-scaled).")
    difusores: list[DrillDifusor] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list)
    expect_disabled: dict[str, int] = Field(
        default_factory=dict, description="Difusor -> the period at which it must be disabled."
    )
    close_at: int | None = Field(
        default=None, ge=1, description="The period whose cut is the PREP's last (then closed)."
    )
    failover: DrillFailover | None = None
    releases: dict[int, str] = Field(
        default_factory=dict,
        description="Testbed host number -> its Debian release (bookworm/12, trixie/13);"
        " the others run the testbed's default.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Scenario:
        ids = {d.id for d in self.difusores}
        hosts = [h for d in self.difusores for h in d.hosts]
        if len(set(hosts)) != len(hosts) or sorted(hosts) != list(range(1, len(hosts) + 1)):
            raise ValueError(f"hosts must be 1..N, each once; got {hosts}")
        for fault in self.faults:
            if (fault.kind in PREP_FAULTS) != (fault.difusor is None):
                raise ValueError(
                    f"a {fault.kind} fault names {'no' if fault.difusor else 'a'}"
                    f" difusor: only {', '.join(PREP_FAULTS)} name none"
                )
            if fault.difusor is not None and fault.difusor not in ids:
                raise ValueError(f"fault on unknown difusor {fault.difusor!r}")
        if self.close_at is not None and self.close_at >= self.periods:
            raise ValueError(f"close_at {self.close_at} is not before the last period")
        if self.failover is not None:
            floating = {d.id for d in self.difusores if d.floating and len(d.hosts) > 1}
            if self.failover.difusor not in floating:
                raise ValueError(
                    f"failover on {self.failover.difusor!r}: not a difusor of two or more"
                    f" nodes with a floating address ({sorted(floating) or 'none'})"
                )
            if self.failover.period >= self.periods:
                raise ValueError(f"failover at period {self.failover.period}: past the night")
        unknown = set(self.expect_disabled) - ids
        if unknown:
            raise ValueError(f"expect_disabled names unknown difusores {sorted(unknown)}")
        self._no_chained_strikes(ids - set(self.expect_disabled))
        strays = sorted(set(self.releases) - set(hosts))
        if strays:
            raise ValueError(f"releases name hosts {strays}, not in 1..{len(hosts)}")
        for number, release in self.releases.items():
            try:
                release_suite(release)
            except ValueError as error:
                raise ValueError(f"releases, host {number}: {error}") from None
        return self

    def _no_chained_strikes(self, staying: set[str]) -> None:
        """Refuse faults on a difusor that must stay active which, with the period after
        its failover (a node may still be booting), cover the election's strike limit
        of consecutive periods: it would be disabled, rightly, and the drill would fail."""
        limit = load_election(self.election).strike_limit
        for difusor in sorted(staying):
            failing = {i for f in self.faults if f.difusor == difusor and f.kind != "shape"
                       for i in range(f.start, f.start + f.periods)}  # fmt: skip
            if self.failover is not None and self.failover.difusor == difusor:
                failing.add(self.failover.period + 1)
            run = next((i for i in sorted(failing)
                        if all(i + k in failing for k in range(limit))), None)  # fmt: skip
            if run is not None:
                raise ValueError(
                    f"faults on {difusor!r} may fail periods {run}-{run + limit - 1} in a row"
                    f" ({limit} strikes, counting the period after its failover): it would be"
                    " disabled; leave a clean period between them or list it in expect_disabled"
                )

    def host_releases(self, default: str) -> list[str]:
        """The Debian codename of every testbed host, in order."""
        return [
            release_suite(self.releases.get(index, default))
            for index in range(1, self.host_count + 1)
        ]

    @property
    def host_count(self) -> int:
        return sum(len(d.hosts) for d in self.difusores)

    @property
    def lan(self) -> bool:
        """Whether the testbed needs its LAN (some difusor has a floating address)."""
        return any(d.floating for d in self.difusores)

    def difusor_faults(self) -> list[Fault]:
        return [f for f in self.faults if f.difusor is not None]

    def cut_dropped(self, index: int) -> bool:
        """Whether the PREP publishes a new cut as period ``index`` opens."""
        paused = any(f.kind == "cut-pause" and f.active(index) for f in self.faults)
        closed = self.close_at is not None and index > self.close_at
        return not paused and not closed

    def quiet(self, index: int) -> bool:
        """A period with no new cut: the PREP paused, or closed before it."""
        return index > 0 and not self.cut_dropped(index)


def default_scenario() -> Scenario:
    path = Path(str(files("prep_iac.drill").joinpath(SCENARIO)))
    return load_model(Scenario, path)


def project_root() -> Path:
    """The checkout holding ``deploys/difusor.py`` and ``group_data/`` (the deploy runs there)."""
    root = Path(prep_iac.__file__).resolve().parents[1]
    if not (root / "deploys" / "difusor.py").is_file():
        raise RuntimeError(f"the drill deploys from a prep-iac checkout; none at {root}")
    return root


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class DrillResult:
    """What the drill saw: verdicts per period, checks, timings; ``ok`` if every check passed."""

    scenario: Scenario
    periods: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, list[str]] = field(default_factory=dict)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    served: dict[str, dict[str, str]] = field(default_factory=dict)
    mail: dict[str, Any] = field(default_factory=dict)
    failover: dict[str, Any] = field(default_factory=dict)
    releases: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
            "periods": self.periods,
            "verdicts": self.verdicts,
            "states": self.states,
            "served": self.served,
            "mail": self.mail,
            "failover": self.failover,
            "releases": self.releases,
            "timings": self.timings,
            "faults": [f.model_dump() for f in self.scenario.faults],
        }


# -- the night's pieces ------------------------------------------------------------------


@dataclass
class Nodes:
    """Each difusor's hosts (and their deployed handles), by node index."""

    hosts: dict[str, list[HostState]]
    deployed: dict[str, Deployed]

    def of(self, fault: Fault) -> list[HostState]:
        if fault.kind == "iec-outage":
            return [h for hosts in self.hosts.values() for h in hosts]  # the IEC's link: all
        if fault.difusor is None:
            return []  # the PREP's fault: no host is touched
        hosts = self.hosts[fault.difusor]
        return hosts if fault.node is None else [hosts[fault.node]]


class Faults:
    """Applies and undoes the scenario's faults as periods open (``on_period_start``)."""

    def __init__(self, bed: Testbed, scenario: Scenario, nodes: Nodes, work: Path) -> None:
        self.bed, self.scenario, self.nodes, self.work = bed, scenario, nodes, work
        self.log: list[str] = []
        self._down: set[str] = set()

    def links_down(self) -> set[str]:
        """Hosts whose link is cut now (visitors cannot reach them either)."""
        return set(self._down)

    def __call__(self, period: Period) -> None:
        for fault in self.scenario.faults:
            if fault.kind == "tamper":
                continue  # applied to the push itself (``Tamper``)
            for host in self.nodes.of(fault):
                if period.index == fault.start:
                    self._apply(fault, host, undo=False)
                elif period.index == fault.start + fault.periods:
                    self._apply(fault, host, undo=True)

    def _apply(self, fault: Fault, host: HostState, undo: bool) -> None:
        name = host.name
        if fault.kind in ("link-down", "iec-outage"):
            (self.bed.link_up if undo else self.bed.link_down)(name)
            (self._down.discard if undo else self._down.add)(name)
        elif fault.kind == "shape":
            if undo:
                self.bed.unshape(name)
            else:
                self.bed.shape(name, fault.rate_mbit)
        elif fault.kind == "stop-sshd":
            (self.bed.start_service if undo else self.bed.stop_service)(name, "ssh")
        elif fault.kind == "host-key":
            self._swap_host_key(host, undo)
        self.log.append(f"{'undo' if undo else 'apply'} {fault.kind} on {name}")

    def _swap_host_key(self, host: HostState, undo: bool) -> None:
        """Give the host a new ed25519 key (undo: put the original back) and restart sshd."""
        key = self.bed.paths(host).root / HOST_KEY
        saved = self.work / "host-keys" / host.name
        if undo:
            for suffix in ("", ".pub"):
                shutil.copy2(saved / f"key{suffix}", key.with_name(key.name + suffix))
        else:
            saved.mkdir(parents=True, exist_ok=True)
            for suffix in ("", ".pub"):
                shutil.copy2(key.with_name(key.name + suffix), saved / f"key{suffix}")
                key.with_name(key.name + suffix).unlink()
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        self.bed.exec(host.name, "systemctl", "restart", "ssh")


class Tamper:
    """``push_many`` that sends the tampered difusores a cut altered after it was signed.

    The attacker changes ``corte.json`` (it changes in every cut, so it is
    always sent) and makes the manifest agree with it (its size and SHA-256),
    but cannot sign that manifest: the hosts must refuse it for its signature.
    The copy shares every other file with the real cut (hard links).
    """

    def __init__(self, scenario: Scenario, work: Path) -> None:
        self.faults = [f for f in scenario.difusor_faults() if f.kind == "tamper"]
        self.work = work
        self.period = -1

    def track(self, period: Period) -> None:
        self.period = period.index

    def victims(self) -> set[str]:
        return {f.difusor for f in self.faults if f.difusor and f.active(self.period)}

    def altered(self, cut: PreparedCut) -> PreparedCut:
        target = self.work / "tampered" / cut.manifest.cut_id
        page = target / "corte.json"
        if not target.exists():
            shutil.copytree(cut.directory, target, copy_function=os.link)
            data = page.read_bytes()
            page.unlink()  # a new inode: the real cut is left intact
            page.write_bytes(data.replace(b'"corte"', b'"corte_alterado"', 1))
        entry = FileEntry(path="corte.json", size=page.stat().st_size, sha256=sha256_file(page))
        manifest = cut.manifest.model_copy(
            update={"files": [entry if f.path == entry.path else f for f in cut.manifest.files]}
        )
        return PreparedCut(target, manifest, manifest.to_bytes(), cut.signature)

    def __call__(
        self, cut: PreparedCut, difusores: list[Difusor], credentials: Credentials,
        budget_s: float, concurrency: int = 8,
        on_result: Callable[[DifusorResult], None] | None = None,
        statements: Mapping[str, SignedStatement] | None = None,
        fail_fast: bool = False,
    ) -> list[DifusorResult]:  # fmt: skip
        victims = self.victims()
        hit = [d for d in difusores if d.id in victims]
        rest = [d for d in difusores if d.id not in victims]
        args = (credentials, budget_s, concurrency, on_result, statements, fail_fast)
        if not hit:
            return push_many(cut, rest, *args)
        with ThreadPoolExecutor(max_workers=2) as pool:
            bad = pool.submit(push_many, self.altered(cut), hit, *args)
            good = pool.submit(push_many, cut, rest, *args)
            return [*good.result(), *bad.result()]


# -- running it ------------------------------------------------------------------------


def build_registry(scenario: Scenario, bed: Testbed, election: str) -> Registry:
    """The scenario's difusores, each node a testbed host with its key pinned."""
    keys = {d.id: d.nodes[0] for d in bed.registry(election).difusores}
    difusores = []
    for entry in scenario.difusores:
        nodes = [keys[f"difusor-{h}"] for h in entry.hosts]
        difusores.append(
            Difusor(
                id=entry.id,
                legal_name=entry.legal_name,
                portal_url=f"http://{nodes[0].host}/",
                logo=f"logos/{entry.id}.svg",
                contact=TechnicalContact(
                    name="Guardia del simulacro",
                    role="Operación",
                    phone="+52 844 000 0000",
                    email=f"{entry.id}@simulacro.example.org",
                    hours="24 h",
                ),
                nodes=[Node(host=n.host, port=n.port, host_key=n.host_key) for n in nodes],
            )
        )
    return Registry(election=election, difusores=difusores)


def deploy_all(
    bed: Testbed, stack: ExitStack, work: Path, iec_key: Path, signing_key: Path,
    scenario: Scenario, progress: Callable[[str], None] = lambda _line: None,
    parallel: int | None = None, ha_advert_s: float = 1.0,
) -> dict[str, Deployed]:  # fmt: skip
    """Every host of ``bed`` provisioned with the real difusor deploy, ``parallel`` at a time
    (default all), trusting
    ``iec_key`` from the machine's end of each link and cuts signed by ``signing_key``;
    each host as the scenario's difusor it serves, with the drill-scaled age limit
    ((strike limit + 1) × the drill's period) that a real host has in real minutes. The
    nodes of a difusor with a floating address advertise every ``ha_advert_s``."""
    difusor_of = {f"difusor-{h}": d.id for d in scenario.difusores for h in d.hosts}
    election = load_election(scenario.election)
    max_age = round((election.strike_limit + 1) * scenario.period_seconds)
    project = project_root()
    floating: dict[str, dict[str, Any]] = {}
    for entry in scenario.difusores:
        if entry.floating:
            floating.update(ha_data(bed, [f"difusor-{h}" for h in entry.hosts], ha_advert_s))
    deployed: dict[str, Deployed] = {}
    for host in bed.hosts:
        place = work / "deploy" / host.name
        place.mkdir(parents=True)
        target = stack.enter_context(difusor_on(bed, host, place, project))
        target.write_inventory(
            iec_key=iec_key,
            # The orchestrator connects from the machine's end of each link.
            iec_sources=[f"{host.gateway}/32"],
            iec_signing_keys=[signing_key.with_suffix(".pub").read_text().strip()],
            difusor_id=difusor_of[host.name],
            difusor_name=f"Difusor del simulacro {host.index}",
            publication_max_age_seconds=max_age,
            # Its peers (of the same difusor) are in the inventory too: the deploy checks them.
            peers={
                other: floating[other]
                for other, of in difusor_of.items()
                if other != host.name and other in floating and of == difusor_of[host.name]
            },
            **floating.get(host.name, {}),
        )
        deployed[host.name] = target
    began = time.monotonic()

    def deploy(target: Deployed) -> None:
        deploy_once_more_if_hung(target)
        progress(f"  {target.host.name} deployed in {time.monotonic() - began:.0f} s")

    with ThreadPoolExecutor(max_workers=parallel or len(deployed)) as pool:
        for future in [pool.submit(deploy, d) for d in deployed.values()]:
            future.result()
    return deployed


def deploy_once_more_if_hung(target: Deployed) -> None:
    """The deploy is idempotent: one that failed or hung is run again, once, before the
    drill gives up (its log is kept in ``deploy.log``). In CI, five fresh hosts
    deployed at once hung and saw Suricata and NUT fail their first start; the
    cause was the hosts sharing one cgroup tree (fixed in the testbed), and the
    retry stays as a guard against a one-off failure of a mirror or a service."""
    try:
        target.deploy(timeout=DEPLOY_TIMEOUT_S)
    except DeployFailed as exc:
        LOGGER.warning("%s; running the deploy once more", str(exc).splitlines()[0])
        if isinstance(exc, DeployHung):
            # Killing pyinfra leaves its remote command running: in CI it was an
            # `apt-get update` whose lock then failed the second run.
            target.root(
                "pkill -KILL -x apt-get; pkill -KILL -f '^/usr/lib/apt/methods/'", check=False
            )
        target.deploy(timeout=DEPLOY_TIMEOUT_S)


def served(target: Deployed) -> tuple[int, str, bytes]:
    """What a visitor gets: status, the ``X-PREP-Corte`` header of /corte.json, the home page."""
    status, headers, _ = target.http("/corte.json")
    _, _, page = target.http("/")
    return status, headers.get("x-prep-corte", ""), page


class Recorder:
    """``on_period_end``: the timeline and the served cuts the checks need mid-run."""

    def __init__(self, result: DrillResult, nodes: Nodes, scenario: Scenario) -> None:
        self.result, self.nodes, self.scenario = result, nodes, scenario
        self.served_at: dict[int, dict[str, str]] = {}
        self.tamper_periods = {
            i
            for f in scenario.faults
            if f.kind == "tamper"
            for i in range(f.start, f.start + f.periods)
        }

    def __call__(self, report: PeriodPushes) -> None:
        entry: dict[str, Any] = {
            "index": report.period.index,
            "start": report.period.start.isoformat(),
            "cut_id": report.cut_id,
            "pushes": {
                r.difusor: {
                    "ok": r.ok,
                    "nodes": [
                        {
                            "node": n.node,
                            "outcome": n.outcome,
                            "error_class": n.error_class,
                            "bytes": n.bytes_sent,
                            "seconds": n.duration_s,
                        }
                        for n in r.nodes
                    ],
                }
                for r in report.results
            },
        }
        if report.period.index in self.tamper_periods:
            # Right after the altered cut was refused: what do visitors get?
            entry["served"] = {
                host.name: served(self.nodes.deployed[host.name])[1]
                for fault in self.scenario.faults
                if fault.kind == "tamper"
                for host in self.nodes.of(fault)
            }
        self.result.periods.append(entry)

    def sample(self, index: int, unreachable: set[str]) -> None:
        """What every host shows at the end of period ``index``: through HTTP, as a visitor
        sees it, or, for a host whose link is cut, from inside (its ``live`` link)."""

        def look(name: str, target: Deployed) -> dict[str, str]:
            if name in unreachable:
                done = target.testbed.exec(name, "readlink", "/srv/prep/live", check=False)
                link = done.stdout.strip()
                serving = "notice" if link == "notice" else link.rpartition("/")[2] or "?"
                return {"via": "inside", "serving": serving}
            try:
                _, corte, page = served(target)
            except OSError as exc:
                return {"via": "http", "serving": f"? {exc}"}
            return {"via": "http", "serving": "notice" if NOTICE_TEXT in page else corte}

        # Every host at once: the loop waits for this hook before the next period opens.
        hosts = self.nodes.deployed
        with ThreadPoolExecutor(max_workers=len(hosts) or 1) as pool:
            looks = {name: pool.submit(look, name, target) for name, target in hosts.items()}
            self.result.periods[-1]["sampled"] = {n: f.result() for n, f in looks.items()}


def run_drill(
    scenario: Scenario, work: Path, name: str = "drill", stop: threading.Event | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> DrillResult:  # fmt: skip
    """Run the whole drill in ``work`` (created); the testbed ``name`` is always torn down."""
    stop = stop or threading.Event()
    result = DrillResult(scenario)
    began = time.monotonic()
    election = load_election(scenario.election).model_copy(
        update={"transfer_budget_seconds": scenario.transfer_budget_seconds}
    )
    work.mkdir(parents=True, exist_ok=True)
    night: list[Path] = []
    generating = threading.Thread(
        target=lambda: night.extend(
            Path(i.path) for i in generate_night(election, work / "night", cuts=scenario.periods)
        ),
        daemon=True,
    )
    generating.start()
    progress(f"testbed '{name}': {scenario.host_count} hosts")
    releases = scenario.host_releases(TestbedSettings().suite)
    bed = Testbed.up(name, hosts=scenario.host_count, lan=scenario.lan, release=releases)
    try:
        with ExitStack() as stack:
            result.timings["testbed_up_s"] = round(time.monotonic() - began, 1)
            iec_key = make_key(work / "iec_ed25519")
            signing_key = generate_signing_key(work / "iec_signing")
            progress("deploying every host (in parallel)")
            mark = time.monotonic()
            deployed = deploy_all(bed, stack, work, iec_key, signing_key, scenario, progress)
            result.timings["deploy_s"] = round(time.monotonic() - mark, 1)
            result.releases = _releases(bed)
            generating.join()
            registry = build_registry(scenario, bed, election.id)
            nodes = Nodes(
                {d.id: [bed.host(f"difusor-{h}") for h in d.hosts] for d in scenario.difusores},
                deployed,
            )
            credentials = Credentials(iec_key, connect_timeout=3)
            progress(f"seeding the first cut to {len(bed.hosts)} hosts")
            mark = time.monotonic()
            first = prepare_cut(night[0], election, signing_key, work / "prepared")
            seeded = push_many(first, registry.difusores, credentials, SEED_BUDGET_S)
            result.timings["seed_s"] = round(time.monotonic() - mark, 1)
            if not all(r.ok for r in seeded):
                raise RuntimeError(f"seeding failed: {[r for r in seeded if not r.ok]}")
            _night(scenario, election, registry, nodes, bed, work, signing_key, credentials,
                   night, result, stop, progress)  # fmt: skip
    finally:
        progress(f"tearing down testbed '{name}'")
        bed.down()
        result.timings["total_s"] = round(time.monotonic() - began, 1)
    return result


def _releases(bed: Testbed) -> dict[str, dict[str, str]]:
    """What each host says it runs, beside the release it was made from."""
    seen: dict[str, dict[str, str]] = {}
    for host in bed.hosts:
        answer = bed.ssh(host.name, "cat /etc/debian_version", check=False)
        seen[host.name] = {
            "suite": host.suite,
            "expected": RELEASES.get(host.suite, "?"),
            "debian_version": answer.stdout.strip() if answer.returncode == 0 else "",
        }
    return seen


def _release_check(result: DrillResult) -> Check:
    """Every host ran the Debian release the scenario gave it (each deployed, then
    judged like any other by the checks that follow)."""
    wrong = {
        host: seen["debian_version"] or "no answer"
        for host, seen in result.releases.items()
        if seen["debian_version"].split(".")[0] != seen["expected"]
    }
    by_release: dict[str, list[str]] = {}
    for host, seen in sorted(result.releases.items()):
        by_release.setdefault(f"Debian {seen['expected']}", []).append(host)
    detail = "; ".join(f"{r}: {', '.join(h)}" for r, h in sorted(by_release.items()))
    if wrong:
        detail += f"; not the release asked: {wrong}"
    return Check("hosts deployed on their Debian releases", bool(result.releases) and not wrong,
                 detail or "no host answered")  # fmt: skip


def _night(
    scenario: Scenario, election: Election, registry: Registry, nodes: Nodes, bed: Testbed,
    work: Path, signing_key: Path, credentials: Credentials, night: list[Path],
    result: DrillResult, stop: threading.Event, progress: Callable[[str], None],
) -> None:  # fmt: skip
    source = work / "source"
    source.mkdir()
    listing = work / "iec-list"
    drill = Drill.compress(election, utc_now() + timedelta(seconds=1), scenario.period_seconds)
    clock = PeriodClock(election, drill=drill)
    faults = Faults(bed, scenario, nodes, work)
    tamper = Tamper(scenario, work)
    recorder = Recorder(result, nodes, scenario)

    def drop_cut(period: Period) -> None:  # the PREP's side: the period's cut, then its marker
        if not scenario.cut_dropped(period.index):
            return  # paused, or closed: no new cut
        cut = night[period.index]
        cut.rename(source / cut.name)
        (source / f"{cut.name}{MARKER}").touch()
        if period.index == scenario.close_at:  # the PREP's last cut: it closes
            (source / f"{cut.name}{FINAL_MARKER}").touch()

    failing: list[threading.Thread] = []

    def done(report: PeriodPushes) -> None:
        recorder(report)
        recorder.sample(report.period.index, faults.links_down())
        if scenario.failover and report.period.index == scenario.failover.period:
            # In a thread: the night goes on; it is over before the next period opens.
            failing.append(threading.Thread(
                target=_failover, args=(scenario.failover, bed, nodes, result), daemon=True
            ))  # fmt: skip
            failing[-1].start()
        failed = sorted({r.difusor for r in report.results if not r.ok})
        progress(f"period {report.period.index:2d} cut {report.cut_id}: failed {failed or '-'}")
        if report.period.index >= scenario.periods - 1:
            stop.set()

    with smtp_server() as box, Store(work / "orchestrator.sqlite3") as store:
        settings = OrchestratorSettings(
            notify=notify_settings(box),
            iec_list=IecListSettings(directory=listing),
            instructions_dir=work / "instructions",
        )
        runner = Runner(
            store, registry, election, CutSource(source, election), signing_key,
            work / "prepared", credentials, clock,
            handlers=default_handlers(settings, store, registry, work, election, credentials,
                                      clock.now, signing_key),
            poll_s=0.2, grace_s=scenario.period_seconds,
            on_period_start=[faults, tamper.track, drop_cut], on_period_end=[done],
            pusher=tamper,
        )  # fmt: skip
        mark = time.monotonic()
        runner.run(stop)
        result.timings["night_s"] = round(time.monotonic() - mark, 1)
        for thread in failing:
            thread.join()
        # Undo what is still broken, so every host can be checked from outside.
        for fault in scenario.faults:
            if fault.start + fault.periods >= scenario.periods and fault.kind != "tamper":
                for host in nodes.of(fault):
                    faults._apply(fault, host, undo=True)
        # A suspension still waiting for a link goes now, as the running loop would.
        sent = outbox.perform_pending(store, runner.handlers, clock.now)
        suspended = {o.action.difusor for o in sent if o.ok and o.action.kind == "suspend"}
        _await_notice([h for d in suspended if d for h in nodes.hosts.get(d, [])], nodes)
        _collect(store, registry, nodes, result)
        result.checks = _checks(scenario, election, store, registry, nodes, listing, result)
        result.checks += _failover_checks(scenario, result)
        result.checks += _mail(scenario, election, store, registry, box, settings, result)
        result.checks.append(_reports(work, election, registry, nodes, bed))
        result.checks += _node_down_checks(scenario, nodes, bed)


def _failover(fault: DrillFailover, bed: Testbed, nodes: Nodes, result: DrillResult) -> None:
    names = [h.name for h in nodes.hosts[fault.difusor]]
    host = f"{fault.difusor}.simulacro.example"
    try:
        done = failover(bed, names, fault.kind, host, observe_s=fault.observe_s, after_s=2.0)
    except Exception as exc:  # reported as the check's detail
        result.failover = {"error": f"{type(exc).__name__}: {exc}"}
        return
    result.failover = done.as_dict()


def _failover_checks(scenario: Scenario, result: DrillResult) -> list[Check]:
    fault = scenario.failover
    if fault is None:
        return []
    name = f"failover on {fault.difusor} ({fault.kind} at period {fault.period})"
    seen = result.failover
    if not seen or "error" in seen:
        return [Check(name, False, f"not measured: {(seen or {}).get('error', 'no result')}")]
    during, after = seen["during"], seen["after"]
    others = [h for h in seen["holders_during"] if h != seen["master"]]
    # The node that took the address recorded it (keepalived's notify, the event hook).
    recorded = [e for h in others for e in seen["events"].get(h, []) if e.startswith("vrrp-MASTER")]
    ok = (
        during["longest_s"] <= fault.max_gap_s
        and after["longest_s"] <= fault.max_gap_s
        and len(others) == 1
        and seen["single_holder_after_s"] is not None
        and not seen["went_back"]
        and bool(recorded)
    )
    detail = (
        f"{seen['master']} lost: longest gap {during['longest_s']} s"
        f" ({during['failed']} of {during['requests']} requests failed), then held by {others};"
        f" back: gap {after['longest_s']} s, one holder after {seen['single_holder_after_s']} s"
        f" ({seen['holders_after']}); cut went back: {seen['went_back']};"
        f" recorded by the new holder: {recorded or 'nothing'}"
        f" (at most {fault.max_gap_s} s allowed)"
    )
    return [Check(name, ok, detail)]


def _reports(
    work: Path, election: Election, registry: Registry, nodes: Nodes, bed: Testbed
) -> Check:
    """The night's reports, as the IEC and each difusor write them after the election: the
    IEC's informe from the store, and each difusor's memoria técnica from the access and
    event logs fetched over SSH from its hosts (in ``work/reports``)."""
    since = datetime.now(UTC) - timedelta(days=1)
    fetched = {
        d.id: fetch_logs(
            [InventoryHost(h.name, str(h.address), 22, "root") for h in nodes.hosts[d.id]],
            work / "logs" / d.id,
            since=since,
            key=bed.ssh_files.key,
            known_hosts=bed.known_hosts,
        )
        for d in registry.difusores
    }
    out = work / "reports"
    write_night_reports(
        work / "orchestrator.sqlite3", out, election, registry,
        access_logs={d: f.access for d, f in fetched.items()},
        host_logs={d: f.host for d, f in fetched.items()},
    )  # fmt: skip
    unread = [failure for f in fetched.values() for failure in f.failed]
    memorias = {d: (out / f"memoria-{d}" / "memoria.html").is_file() for d in fetched}
    ok = (out / "informe" / "informe.html").is_file() and all(memorias.values()) and not unread
    return Check(
        "the night's reports: the IEC's informe and every difusor's memoria técnica", ok,
        f"informe and memorias {memorias} in {out}; hosts not read: {unread or 'none'}",
    )  # fmt: skip


def _node_down_checks(scenario: Scenario, nodes: Nodes, bed: Testbed) -> list[Check]:
    """``prep-iac continuity``'s NODO-CAIDO, as a difusor runs it, on each difusor with a
    floating address after the night (its hosts hold the PREP's final statement, so the
    last cut stays served): nginx stopped on the node holding the address; the other
    nodes serve the same cut throughout, and a visitor on the address misses it for at
    most ``MAX_FAILOVER_S``."""
    checks = []
    project = project_root()
    for entry in scenario.difusores:
        if not entry.floating:
            continue
        names = [f"difusor-{h}" for h in entry.hosts]
        targets = {n: from_inventory(nodes.deployed[n].inventory, project)[0] for n in names}
        settings = targets[names[0]].settings
        address = str(settings.ha_address) if settings else ""
        holding = holders(bed, names, address)
        victim = holding[0] if len(holding) == 1 else names[0]
        others = [t for n, t in targets.items() if n != victim]
        done = continuity(targets[victim], others, only={"NODO-CAIDO"})
        step = next((s for s in done.steps if s.id == "NODO-CAIDO"), None)
        ok = (
            len(holding) == 1
            and step is not None
            and step.status is Status.PASS
            and any(e.startswith(f"dirección flotante {address}") for e in step.evidence)
        )
        detail = (
            f"holders before: {holding}; "
            + (f"{step.status.value}: {'; '.join(step.evidence)}; {step.requests};"
               f" {victim} served again after {step.recovery_s} s" if step else
               f"no step: {[(s.id, s.evidence) for s in done.steps]}")
        )  # fmt: skip
        checks.append(
            Check(f"continuity NODO-CAIDO on {entry.id} (nginx stopped on {victim})", ok, detail)
        )
    return checks


def _mail(
    scenario: Scenario, election: Election, store: Store, registry: Registry, box: Mailbox,
    settings: OrchestratorSettings, result: DrillResult,
) -> list[Check]:  # fmt: skip
    """What the SMTP server got (``drill_mail``); the counts go to the summary."""
    starts = [datetime_of(result, i) for i in range(len(result.periods))]
    checks = mail_checks(
        box, registry, result.verdicts, starts, set(scenario.expect_disabled), store, election,
        settings.notify,
    )  # fmt: skip
    result.mail = mail_counts(box, registry)
    outages = sum(f.periods for f in scenario.faults if f.kind == "iec-outage")
    if outages:
        told = [m for m in box.to(settings.notify.operators[0])
                if m["X-PREP-Message"] == "iec-fault"]  # fmt: skip
        contacts = [m for d in registry.difusores for m in box.to(d.contact.email)
                    if m["X-PREP-Message"] == "iec-fault"]  # fmt: skip
        checks.append((
            "mail: the operators told of each period of the IEC's outage, no contact",
            len(told) == outages and not contacts,
            f"{len(told)} iec-fault notices to the operators for {outages} periods;"
            f" {len(contacts)} to contacts",
        ))  # fmt: skip
    return [Check(*check) for check in checks]


NOTICE_TEXT = "Publicación de resultados preliminares suspendida".encode()


def _await_notice(hosts: list[HostState], nodes: Nodes, timeout_s: float = 30.0) -> None:
    """Until every one of ``hosts`` shows the notice (its path unit applied the suspension
    just uploaded), or ``timeout_s``: the checks then report what they find."""

    def shows(name: str) -> bool:
        try:
            return NOTICE_TEXT in served(nodes.deployed[name])[2]
        except OSError:
            return False

    deadline = time.monotonic() + timeout_s
    waiting = [h.name for h in hosts]
    while waiting and time.monotonic() < deadline:
        waiting = [n for n in waiting if not shows(n)]
        if waiting:
            time.sleep(0.2)  # polling the host's page, not waiting for a guess


def _collect(store: Store, registry: Registry, nodes: Nodes, result: DrillResult) -> None:
    for difusor in registry.difusores:
        row = ["" for _ in result.periods]
        for verdict in store.verdicts(difusor.id):
            index = _index_of(result, verdict.period)
            if index is not None:
                row[index] = verdict.verdict
        result.verdicts[difusor.id] = row
    for state in store.states():
        result.states[state.difusor] = {
            "status": state.status.value,
            "strikes": state.strikes,
            "last_cut_id": state.last_cut_id,
            "last_error_class": state.last_error_class,
            "reason": state.reason,
        }
    for name, target in nodes.deployed.items():
        status, corte, page = served(target)
        result.served[name] = {
            "http": str(status),
            "corte": corte,
            "notice": "yes" if NOTICE_TEXT in page else "no",
        }


def _index_of(result: DrillResult, when: datetime) -> int | None:
    """The drill period that starts at ``when`` (any zone)."""
    for entry in result.periods:
        if datetime.fromisoformat(entry["start"]) == when:
            return int(entry["index"])
    return None


def _checks(
    scenario: Scenario, election: Election, store: Store, registry: Registry, nodes: Nodes,
    listing: Path, result: DrillResult,
) -> list[Check]:  # fmt: skip
    checks: list[Check] = [_release_check(result)] if scenario.releases else []
    verdicts = result.verdicts
    last_cut = result.periods[-1]["cut_id"] if result.periods else None
    checks.append(
        Check(
            "every period ran",
            len(result.periods) == scenario.periods,
            f"{len(result.periods)} of {scenario.periods} periods closed",
        )
    )
    disabled = {
        e.difusor: e for e in store.events(kinds=("disabled", "manual-disable")) if e.difusor
    }
    for difusor, period in scenario.expect_disabled.items():
        event = disabled.get(difusor)
        at = _index_of(result, event.period) if event and event.period else None
        row = verdicts.get(difusor, [])
        failed_before = [i for i, v in enumerate(row[: (at or 0) + 1]) if v == "failed"]
        third = len(failed_before) == election.strike_limit and failed_before[-1] == at
        checks.append(
            Check(
                f"{difusor} disabled at period {period}",
                at == period and third,
                f"disabled at period {at}; failed periods up to it: {failed_before}",
            )
        )
        target = nodes.hosts[difusor]
        notice = [result.served[h.name]["notice"] == "yes" for h in target]
        checks.append(
            Check(
                f"{difusor} serves the notice",
                all(notice),
                ", ".join(f"{h.name}: notice {result.served[h.name]['notice']}" for h in target),
            )
        )
    others = sorted(set(disabled) - set(scenario.expect_disabled))
    checks.append(Check("nobody else disabled", not others, f"also disabled: {others or 'none'}"))
    checks.append(_list_check(listing, scenario))
    for fault in scenario.difusor_faults():
        if fault.difusor in scenario.expect_disabled:
            continue
        checks.append(_fault_check(fault, result, store, registry, election))
    checks += _notice_checks(scenario, nodes, result)
    for entry in registry.difusores:
        if entry.id in scenario.expect_disabled:
            continue
        got = {
            n.host: result.served[_host_name(nodes, entry.id, n.host)]["corte"] for n in entry.nodes
        }
        state = result.states.get(entry.id, {})
        checks.append(
            Check(
                f"{entry.id} up to date",
                state.get("status") == "active" and set(got.values()) == {last_cut},
                f"{state.get('status')}, strikes {state.get('strikes')}, serving {got}"
                f" (last cut {last_cut})",
            )
        )
    return checks


def _notice_checks(scenario: Scenario, nodes: Nodes, result: DrillResult) -> list[Check]:
    """From the hosts sampled every period: no active difusor's portal ever went dark, in
    quiet periods (a PREP pause, after its close) or any other; a disabled difusor that
    the IEC cannot reach shows the notice by itself once its last statement runs out."""
    checks = []
    active = {h.name for d, hosts in nodes.hosts.items() if d not in scenario.expect_disabled
              for h in hosts}  # fmt: skip
    dark, quiet_samples = [], 0
    for entry in result.periods:
        for name, seen in entry.get("sampled", {}).items():
            if name not in active:
                continue
            quiet_samples += scenario.quiet(int(entry["index"]))
            if seen["serving"] == "notice":
                dark.append(f"{name} at period {entry['index']}")
    checks.append(
        Check(
            "no active difusor ever showed the notice (quiet periods included)",
            not dark and quiet_samples > 0,
            f"{quiet_samples} samples in quiet periods; dark: {dark or 'none'}",
        )
    )
    if scenario.close_at is not None:
        checks.append(_close_check(scenario, nodes, result))
    checks += [_outage_check(f, scenario, result) for f in scenario.faults
               if f.kind == "iec-outage"]  # fmt: skip
    for difusor, at in scenario.expect_disabled.items():
        inside = [
            (int(e["index"]), name, seen["serving"])
            for e in result.periods if int(e["index"]) > at
            for name, seen in e.get("sampled", {}).items()
            if seen["via"] == "inside" and name in {h.name for h in nodes.hosts[difusor]}
        ]  # fmt: skip
        if not inside:
            continue  # the scenario gave it back its link at once: nothing to see from inside
        alone = [i for i, _, serving in inside if serving == "notice"]
        checks.append(
            Check(
                f"{difusor} shows the notice by itself while the IEC cannot reach it",
                bool(alone),
                f"seen from inside after its disabling: {inside}",
            )
        )
    return checks


def _outage_check(fault: Fault, scenario: Scenario, result: DrillResult) -> Check:
    """The IEC's own outage is nobody's strike: every active difusor's verdict in it is
    ``iec-fault`` (no strike, no reset) and the period after it a success."""
    window = range(fault.start, fault.start + fault.periods)
    after = fault.start + fault.periods
    rows = {d: row for d, row in result.verdicts.items() if d not in scenario.expect_disabled}
    during = {d: [row[i] for i in window if i < len(row)] for d, row in rows.items()}
    then = {d: row[after] if after < len(row) else "end" for d, row in rows.items()}
    ok = all(set(v) == {"iec-fault"} for v in during.values()) and all(
        v in ("success", "end") for v in then.values()
    )
    return Check(f"iec-outage (periods {window[0]}-{window[-1]}): nobody struck", ok,
                 f"verdicts {during}; then {then}")  # fmt: skip


def _close_check(scenario: Scenario, nodes: Nodes, result: DrillResult) -> Check:
    """After the PREP's close every active difusor's host holds a final statement (no
    expiry: it keeps its last cut published through the rest of the window and after)."""
    holding = {}
    for difusor, hosts in nodes.hosts.items():
        if difusor in scenario.expect_disabled:
            continue
        for host in hosts:
            target = nodes.deployed[host.name]
            done = target.testbed.exec(host.name, "cat", "/srv/prep/status/status.json")
            fresh = json.loads(done.stdout).get("freshness") or {}
            holding[host.name] = (fresh.get("cut_id"), fresh.get("final"))
    last = result.periods[-1]["cut_id"] if result.periods else None
    ok = bool(holding) and set(holding.values()) == {(last, True)}
    return Check(
        f"after the PREP's close (period {scenario.close_at}) every active host holds a final"
        " statement for the last cut", ok, f"{holding} (last cut {last})",
    )  # fmt: skip


def _host_name(nodes: Nodes, difusor: str, address: str) -> str:
    return next(h.name for h in nodes.hosts[difusor] if str(h.address) == address)


def _list_check(listing: Path, scenario: Scenario) -> Check:
    try:
        data = json.loads((listing / "difusores.json").read_text())
    except (OSError, ValueError) as exc:
        return Check("IEC list", False, f"no list rendered: {exc}")
    entries = {e["id"]: e for e in data["difusores"]}
    wrong = [
        d for d, e in entries.items()
        if (d in scenario.expect_disabled) != (e["state"] == DifusorStatus.DISABLED.value
                                               and e["portal_url"] is None)
    ]  # fmt: skip
    return Check(
        "IEC list: only the disabled difusor's link is off", not wrong and bool(entries),
        ", ".join(f"{d}: {e['state']}" for d, e in entries.items()),
    )  # fmt: skip


def _fault_check(
    fault: Fault, result: DrillResult, store: Store, registry: Registry, election: Election
) -> Check:
    assert fault.difusor is not None  # the PREP's faults have their own checks
    row = result.verdicts.get(fault.difusor, [])
    window = [i for i in range(fault.start, fault.start + fault.periods) if i < len(row)]
    after = fault.start + fault.periods
    during = [row[i] for i in window]
    name = f"{fault.kind} on {fault.difusor} (periods {window[0]}-{window[-1]})"
    errors: set[str] = set()
    for i in window:
        start = datetime_of(result, i)
        errors |= {a.error_class for a in store.attempts(fault.difusor, start) if not a.confirmed}
    if fault.kind == "shape":
        seconds = [
            n["seconds"]
            for i in window
            for n in result.periods[i]["pushes"].get(fault.difusor, {}).get("nodes", [])
        ]
        ok = set(during) == {"success"}
        return Check(name + ": slow but within the budget", ok,
                     f"verdicts {during}; node push seconds {seconds}")  # fmt: skip
    recovered = after >= len(row) or row[after] == "success"
    ok = set(during) == {"failed"} and recovered
    then = row[after] if after < len(row) else "end"
    detail = f"verdicts {during}, then {then}; errors {sorted(errors)}"
    if fault.kind == "host-key":
        ok = ok and errors == {"host-key-changed"}
    if fault.kind == "tamper":
        ok = ok and bool(errors) and all(e.startswith("rejected:") for e in errors)
        previous = result.periods[window[0] - 1]["cut_id"] if window[0] else None
        served_then = result.periods[window[0]].get("served", {})
        ok = ok and bool(served_then) and set(served_then.values()) == {previous}
        detail += f"; served right after: {served_then} (previous cut {previous})"
    return Check(name, ok, detail)


def datetime_of(result: DrillResult, index: int) -> datetime:
    return datetime.fromisoformat(result.periods[index]["start"])
