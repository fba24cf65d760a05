"""``prep-iac continuity``: drill a live difusor's own continuity, with the admin's consent.

Clause IV asks for "pruebas de continuidad"; the calls ask that the latest cut
stay published "en todo momento" for the whole window. Each step breaks one
thing on the host and measures, with a visitor polling the page every
``POLL_S``, how long until the same cut is served again:

- ``NGINX-MUERTO``: nginx killed (SIGKILL): systemd must bring it back
  (the deploy's ``Restart=always``) within ``max_recovery_s``, with the same cut;
- ``DISCO-LLENO``: the filesystem under the logs filled to the last block for
  ``FULL_S``: the publication must go on being served meanwhile;
- ``RELOJ``: the host's clock against the auditor's: a skew is reported;
- ``NODO-CAIDO``: with two or more nodes (the inventory's, else the node's
  ``ha_peers``), nginx stopped on one: every other node must go on serving the
  same cut (each must serve it before, or the step is not checked), and with a floating
  address (``ha_address``) a visitor on it must miss the page for at most
  ``MAX_FAILOVER_S`` (clause II.a), the cut never going back;
- ``REINICIO`` (only with ``reboot``): the host rebooted: serving again, the
  same cut live, and how long it took.

Every step undoes what it did, whatever happens.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from prep_iac.audit.controls import Status
from prep_iac.audit.failover import Visitor
from prep_iac.audit.target import Http, NotChecked, Shell, Target, admin_shell

POLL_S = 0.05
FULL_S = 5.0
MAX_FAILOVER_S = 4.0  # keepalived's defaults: 3 adverts of 1 s missed, and the skew
MAX_CLOCK_OFFSET_S = 1.0
REBOOT_WAIT_S = 600.0
FILLER = "/var/tmp/prep-iac-continuity.fill"  # noqa: S108 (a path on the host)


class Step(BaseModel):
    id: str
    title: str
    action: str
    status: Status
    recovery_s: float | None = Field(default=None, description="Until the same cut was served.")
    requests: str = ""
    evidence: list[str] = Field(default_factory=list)


class Continuity(BaseModel):
    started: datetime
    finished: datetime
    host: str
    address: str
    cut: str
    steps: list[Step]

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status is Status.FAIL]


def http_of(target: Target) -> Http:
    """A visitor's requests to ``target``'s publication."""
    return Http(address=target.address, host=target.http_host or target.address,
                tls=target.tls, source=target.source, port=target.http_port)  # fmt: skip


def served_cut(http: Http) -> str | None:
    """The cut the page is served from ("" for a page of no cut, the notice), or None
    when the page is not served."""
    try:
        status, headers, _ = http.get("/")
    except NotChecked:
        return None
    return headers.get("x-prep-corte", "") if status == 200 else None


class Poll:
    """Requests to the page until the cut is served again, and the gap without it.

    With ``cut`` None any cut served counts (a visitor's view during an attack).
    """

    def __init__(self, http: Http, cut: str | None) -> None:
        self.http, self.cut = http, cut
        self.ok = self.failed = 0
        self.first_failure: float | None = None

    def once(self) -> bool:
        served = served_cut(self.http)
        good = served is not None and (self.cut is None or served == self.cut)
        if good:
            self.ok += 1
        else:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = time.monotonic()
        return good

    def until_served(self, since: float, limit: float) -> float | None:
        """Seconds from ``since`` until the cut was served again; None after ``limit``."""
        while time.monotonic() - since < limit:
            if self.once():
                return round(time.monotonic() - since, 2)
            time.sleep(POLL_S)
        return None

    def during(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.once()
            time.sleep(POLL_S)

    def summary(self) -> str:
        what = "la página" if self.cut is None else "el corte"
        return f"{self.ok} de {self.ok + self.failed} peticiones sirvieron {what}"


def nginx_killed(shell: Shell, http: Http, cut: str, max_recovery_s: float) -> Step:
    step = Step(id="NGINX-MUERTO", title="nginx muere", status=Status.PASS,
                action="systemctl kill -s KILL nginx")  # fmt: skip
    restarts = shell.output("systemctl show nginx -p NRestarts").strip()
    poll = Poll(http, cut)
    killed = time.monotonic()
    shell.output("systemctl kill -s KILL nginx")
    step.recovery_s = poll.until_served(killed, max(60.0, max_recovery_s * 3))
    step.requests = poll.summary()
    after = shell.output("systemctl show nginx -p NRestarts").strip()
    step.evidence.append(f"antes: {restarts}; después: {after}")
    if step.recovery_s is None:
        step.status = Status.FAIL
        step.evidence.append("nginx no volvió a servir el corte en un minuto")
        shell.run("systemctl start nginx")
    elif step.recovery_s > max_recovery_s:
        step.status = Status.FAIL
        step.evidence.append(f"tardó más de {max_recovery_s:.0f} s")
    return step


def disk_full(shell: Shell, http: Http, cut: str) -> Step:
    step = Step(id="DISCO-LLENO", title="Disco lleno", status=Status.PASS,
                action=f"fallocate hasta llenar el sistema de archivos de {FILLER}")  # fmt: skip
    poll = Poll(http, cut)
    try:
        free = int(shell.output("df -B1 --output=avail /var/tmp | tail -n 1").strip())
        shell.run(f"fallocate -l {max(free - 4096, 4096)} {FILLER} || true")
        step.evidence.append(
            shell.output("df -h --output=target,pcent /var/tmp | tail -n 1").strip()
        )
        poll.during(FULL_S)
    finally:
        shell.run(f"rm -f {FILLER}")
    step.requests = poll.summary()
    if poll.failed:
        step.status = Status.FAIL
        step.evidence.append("la publicación dejó de servirse con el disco lleno")
    return step


def clock(shell: Shell) -> Step:
    step = Step(id="RELOJ", title="Reloj del servidor", status=Status.PASS,
                action="date +%s.%N en el servidor contra el reloj del auditor")  # fmt: skip
    before = time.time()
    remote = float(shell.output("date +%s.%N"))
    offset = remote - (before + time.time()) / 2
    step.evidence.append(f"desfase: {offset:+.3f} s")
    if abs(offset) >= MAX_CLOCK_OFFSET_S:
        step.status = Status.FAIL
        step.evidence.append(
            "el reloj del servidor no coincide con el del auditor: la fecha y hora del corte"
            " que muestra la página no cambia, pero sus bitácoras y sus vigencias sí"
        )
    return step


def node_down(target: Target, shell: Shell, others: list[Target], cut: str) -> Step:
    step = Step(id="NODO-CAIDO", title="Un nodo del difusor cae", status=Status.PASS,
                action=f"systemctl stop nginx en {target.name}")  # fmt: skip
    others = others or peer_targets(target)
    if not others:
        step.status = Status.NOT_APPLICABLE
        step.evidence.append("el inventario tiene un solo nodo")
        return step
    # A node this auditor cannot reach, or serving another cut, says nothing of the fall.
    before = {o.name: served_cut(http_of(o)) for o in others}
    unfit = {name: answer for name, answer in before.items() if answer != cut}
    if unfit:
        step.status = Status.NOT_CHECKED
        for name, answer in unfit.items():
            what = "no responde desde aquí" if answer is None else f"sirve {answer or 'el aviso'}"
            step.evidence.append(f"{name}: {what} antes de la prueba (este nodo sirve {cut})")
        return step
    polls = [Poll(http_of(other), cut) for other in others]
    floating = target.settings.ha_address if target.settings else None
    visitor = (
        Visitor(replace(http_of(target), address=str(floating)), limit_s=FULL_S + 30)
        if floating else None
    )  # fmt: skip
    if visitor:
        visitor.start()
    stopped = time.monotonic()
    try:
        shell.output("systemctl stop nginx")
        deadline = time.monotonic() + FULL_S
        while time.monotonic() < deadline:
            for poll in polls:
                poll.once()
            time.sleep(POLL_S)
    finally:
        shell.run("systemctl start nginx")
        if visitor:
            visitor.stop()
    if visitor and floating:
        seen = visitor.gaps(stopped, stopped + FULL_S)
        step.evidence.append(f"dirección flotante {floating}: {seen.summary()}")
        if seen.longest_s > MAX_FAILOVER_S or seen.went_back:
            step.status = Status.FAIL
            step.evidence.append(
                f"la dirección flotante no pasó a otro nodo en {MAX_FAILOVER_S:.0f} s"
                if seen.longest_s > MAX_FAILOVER_S
                else "el corte servido retrocedió"
            )
    back = Poll(http_of(target), cut).until_served(stopped, 60)
    step.recovery_s = back
    step.requests = "; ".join(
        f"{o.name}: {p.summary()}" for o, p in zip(others, polls, strict=True)
    )
    if any(p.failed for p in polls):
        step.status = Status.FAIL
        step.evidence.append("otro nodo dejó de servir el corte")
    return step


def peer_targets(target: Target) -> list[Target]:
    """The node's HA peers (``ha_peers``) as visitors reach them: for an inventory that
    lists one node of the difusor, its settings naming the others."""
    return [
        replace(target, name=f"nodo {peer}", address=peer, admin=None, iec=None, peers=())
        for peer in target.peers
    ]


def reboot(shell: Shell, http: Http, cut: str) -> Step:
    step = Step(id="REINICIO", title="Reinicio del servidor", status=Status.PASS,
                action="systemctl reboot")  # fmt: skip
    poll = Poll(http, cut)
    started = time.monotonic()
    with contextlib.suppress(NotChecked):
        shell.run("systemd-run --on-active=1 systemctl reboot")
    # Wait for the page to go, then for it to come back with the same cut.
    while time.monotonic() - started < 60 and poll.once():
        time.sleep(POLL_S)
    step.recovery_s = poll.until_served(started, REBOOT_WAIT_S)
    step.requests = poll.summary()
    if step.recovery_s is None:
        step.status = Status.FAIL
        step.evidence.append(f"no volvió a servir el corte en {REBOOT_WAIT_S:.0f} s")
    return step


@contextlib.contextmanager
def _checked(step_id: str, title: str, steps: list[Step]) -> Iterator[None]:
    """A step that cannot be made (no shell, a command failing) is recorded as such."""
    try:
        yield
    except NotChecked as exc:
        steps.append(Step(id=step_id, title=title, action="", status=Status.NOT_CHECKED,
                          evidence=[str(exc)]))  # fmt: skip


def continuity(
    target: Target, others: list[Target], max_recovery_s: float = 10.0, with_reboot: bool = False,
    only: set[str] | None = None,
) -> Continuity:  # fmt: skip
    """The steps on ``target`` (``others``: the difusor's other nodes)."""
    started = datetime.now(UTC)
    http = http_of(target)
    cut = served_cut(http)
    steps: list[Step] = []
    with admin_shell(target) as shell:
        if not cut:
            missing = Step(id="PUBLICACION", title="El corte se sirve", action="GET /",
                           status=Status.FAIL, evidence=["no se sirve ningún corte"])  # fmt: skip
            steps.append(missing)
        else:
            plan: list[tuple[str, str, Callable[[], Step]]] = [
                (
                    "NGINX-MUERTO",
                    "nginx muere",
                    lambda: nginx_killed(shell, http, cut, max_recovery_s),
                ),
                ("DISCO-LLENO", "Disco lleno", lambda: disk_full(shell, http, cut)),
                ("RELOJ", "Reloj del servidor", lambda: clock(shell)),
                ("NODO-CAIDO", "Un nodo cae", lambda: node_down(target, shell, others, cut)),
            ]
            if with_reboot:
                plan.append(("REINICIO", "Reinicio", lambda: reboot(shell, http, cut)))
            for step_id, title, run in plan:
                if only and step_id not in only:
                    continue
                with _checked(step_id, title, steps):
                    steps.append(run())
    return Continuity(started=started, finished=datetime.now(UTC), host=target.name,
                      address=target.address, cut=cut or "", steps=steps)  # fmt: skip
