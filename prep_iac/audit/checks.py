"""One check per control of ``controls.yaml``: what it observes and how it judges.

A check reads the host through the accesses of a ``Probe`` and returns an
``Observation`` (its verdict and the evidence). It raises ``NotChecked`` when
what it needs is not there: no shell, no SFTP login, a tool missing, an answer
it cannot read. Checks of the deploy's own pieces reuse the deploy's facts and
judgements (``prep_iac.deploy``), so the audit and the deploy agree on what
"redundant" or "below the minimums" means.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_network
from typing import Any, TypeVar

from pyinfra.api.facts import FactBase

from prep_iac.audit.controls import Observation, Status
from prep_iac.audit.target import Http, NotChecked, Sftp, Shell, Target
from prep_iac.audit.tools import (
    fail2ban_jails,
    gixy,
    lynis_report,
    run_lynis,
    self_checks,
    ssh_audit,
)
from prep_iac.deploy.events import LOG as EVENT_LOG
from prep_iac.deploy.facts.resources import HostResources
from prep_iac.deploy.facts.storage import (
    BtrfsFilesystem,
    LvmVolumes,
    MdStat,
    MountOf,
    SmartDevices,
    ZpoolStatus,
)
from prep_iac.deploy.ha import STATE_FILE as HA_STATE
from prep_iac.deploy.hardware import GB, shortfalls
from prep_iac.deploy.ids import JAIL_BADBOTS, JAIL_FLOOD, JAIL_MODSECURITY, MODSECURITY_AUDIT_LOG
from prep_iac.deploy.integrity import AIDE_DATABASE
from prep_iac.deploy.storage import redundancy
from prep_iac.deploy.web import ACCESS_LOG
from prep_iac.models import HostRequirements
from prep_iac.wire import CUT_ID, MANIFEST_NAME, State

T = TypeVar("T")
Check = Callable[["Probe"], Observation]
CHECKS: dict[str, Check] = {}

LYNIS_TARGET = 80
LYNIS_MAX_AGE = timedelta(days=30)
MAX_CLOCK_OFFSET_S = 1.0
MIN_LINK_MBPS = 10
MIN_RETENTION_DAYS = 30
# Files of the cut compared byte for byte with its manifest, besides index.html.
SAMPLED_FILES = 24
NOLOGIN = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
# Answers that ask the visitor to log in or pay.
GATED = (401, 402, 407)
SQL_INJECTION = "/?id=1'%20OR%20'1'='1"
PATH_TRAVERSAL = "/?file=../../../../etc/passwd"
JAILS = ("sshd", JAIL_FLOOD, JAIL_MODSECURITY, JAIL_BADBOTS)


@dataclass
class Probe:
    """What the checks of one host share: the accesses and what was already read."""

    target: Target
    shell: Shell
    sftp: Sftp
    http: Http
    lynis: bool = False
    expected_cut: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return self.target.settings.publication_root if self.target.settings else "/srv/prep"

    def once(self, key: str, read: Callable[[], T]) -> T:
        """``read()`` the first time only; later checks reuse it (or its NotChecked)."""
        if key not in self.memo:
            try:
                self.memo[key] = read()
            except NotChecked as exc:
                self.memo[key] = exc
        value = self.memo[key]
        if isinstance(value, NotChecked):
            raise value
        return value  # type: ignore[no-any-return]

    def fact(self, cls: type[FactBase[T]], **kwargs: Any) -> T:
        """A deploy fact read through the shell: its command, then its own parser."""
        instance = cls()
        command = instance.command(**kwargs)
        assert isinstance(command, str), f"{cls.__name__} needs a plain command"
        result = self.shell.run(command)
        if result.rc != 0:
            default = getattr(instance, "default", None)
            if default is None:
                raise NotChecked(f"`{command[:80]}` terminó con {result.rc}")
            return default()  # type: ignore[no-any-return]
        return instance.process(result.stdout.splitlines())

    def page(self) -> tuple[int, dict[str, str], bytes]:
        return self.once("page", lambda: self.http.get("/"))

    def manifest(self) -> dict[str, Any]:
        """The live cut's manifest as the host keeps it (``status/manifest.json``)."""
        return self.once("manifest", lambda: json.loads(self._status_file(MANIFEST_NAME)))

    def status(self) -> dict[str, Any]:
        """The host's answer to the IEC (``status/status.json``)."""
        return self.once("status", lambda: json.loads(self._status_file("status.json")))

    def _status_file(self, name: str) -> bytes:
        if self.shell.host is not None:
            return self.shell.output(f"cat {shlex.quote(f'{self.root}/status/{name}')}").encode()
        try:
            with self.sftp.open().open(f"/status/{name}") as handle:
                return bytes(handle.read())
        except OSError as exc:
            raise NotChecked(f"no se pudo leer /status/{name} por SFTP: {exc}") from None


def check(control_id: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[control_id] = function
        return function

    return register


def verdict(ok: bool, *evidence: str) -> Observation:
    return Observation(status=Status.PASS if ok else Status.FAIL, evidence=list(evidence))


def settings_of(p: Probe) -> Any:
    if p.target.settings is None:
        raise NotChecked("sin el inventario del difusor (sus valores configurados)")
    return p.target.settings


# --- Publication (clause I), as a visitor -----------------------------------------------------


@check("PUB-GRATIS")
def free(p: Probe) -> Observation:
    try:
        status, headers, body = p.page()
    except NotChecked as exc:
        return verdict(False, f"el PREP no está disponible: {exc}")
    seen = f"GET / → {status}, {len(body)} bytes"
    if status in GATED or "www-authenticate" in headers:
        return verdict(False, seen, "el servidor pide autenticación o pago")
    if 300 <= status < 400:
        return verdict(False, seen, f"redirige a {headers.get('location', '?')}")
    return verdict(status == 200, seen)


def _cut_time(p: Probe) -> str:
    """The live cut's time: the manifest's, else the cut's own ``corte.json``."""
    try:
        return str(p.manifest()["cut_time"])
    except NotChecked:
        status, _, body = p.once("corte.json", lambda: p.http.get("/corte.json"))
        if status != 200:
            raise
        return str(json.loads(body)["fecha_hora"])


@check("PUB-CORTE-VISIBLE")
def cut_time_shown(p: Probe) -> Observation:
    status, headers, body = p.page()
    cut = headers.get("x-prep-corte", "")
    if status != 200 or not CUT_ID.match(cut):
        shown = "el aviso del difusor" if status == 200 else f"la respuesta {status}"
        return verdict(False, f"GET / muestra {shown}, no un corte (X-PREP-Corte: {cut!r})")
    when = datetime.fromisoformat(_cut_time(p))
    html = body.decode("utf-8", errors="replace")
    forms = {
        when.isoformat(),
        when.strftime("%d/%m/%Y %H:%M"),
        when.strftime("%Y-%m-%d %H:%M"),
        when.strftime("%d/%m/%Y"),
    }
    found = sorted(form for form in forms if form in html)
    evidence = [f"corte {cut} del {when.isoformat()}"]
    if found:
        return verdict(True, *evidence, f"la página lo muestra: {', '.join(found)}")
    return verdict(False, *evidence, "la página (index.html) no muestra esa fecha y hora")


@check("PUB-ULTIMO-CORTE")
def latest_cut_unmodified(p: Probe) -> Observation:
    manifest = p.manifest()
    cut = str(manifest["cut_id"])
    evidence = [f"el servidor tiene vivo el corte {cut}"]
    problems = []
    if p.expected_cut and cut != p.expected_cut:
        problems.append(f"el IEC confirmó el corte {p.expected_cut}, no {cut}")
    state = p.status().get("state")
    if state != State.LIVE or p.status().get("cut_id") != cut:
        problems.append(f"status.json: estado {state!r}, corte {p.status().get('cut_id')!r}")
    _, headers, _ = p.page()
    served = headers.get("x-prep-corte", "")
    if served != cut:
        problems.append(f"nginx sirve {served!r} (X-PREP-Corte), no {cut}")
    files = sorted(manifest["files"], key=lambda f: f["path"])
    chosen = [f for f in files if f["path"] == "index.html"]
    rest = [f for f in files if f["path"] != "index.html"]
    step = max(1, len(rest) // SAMPLED_FILES)
    chosen += rest[::step][:SAMPLED_FILES]
    differ = []
    for entry in chosen:
        status, _, body = p.http.get("/" + entry["path"])
        if status != 200 or hashlib.sha256(body).hexdigest() != entry["sha256"]:
            differ.append(f"{entry['path']} ({status}, {len(body)} bytes)")
    evidence.append(
        f"{len(chosen) - len(differ)} de {len(chosen)} archivos servidos (de {len(files)})"
        " idénticos byte a byte a su manifiesto firmado"
    )
    if differ:
        problems.append("difieren del manifiesto: " + ", ".join(differ[:10]))
    return verdict(not problems, *evidence, *problems)


FRAME_ANCESTORS = re.compile(r"frame-ancestors\s+([^;]+)")


@check("PUB-MARCOS")
def framable(p: Probe) -> Observation:
    _, headers, _ = p.page()
    policy = headers.get("content-security-policy", "")
    xfo = headers.get("x-frame-options")
    match = FRAME_ANCESTORS.search(policy)
    allowed = match.group(1).split() if match else []
    evidence = [f"frame-ancestors: {' '.join(allowed) or '(ninguno)'}"]
    if xfo:
        return verdict(False, *evidence, f"X-Frame-Options: {xfo} impide enmarcar el PREP")
    if p.target.settings is None:
        return verdict(allowed != ["'none'"], *evidence)
    wanted = list(p.target.settings.frame_ancestors)
    missing = [origin for origin in wanted if origin not in allowed]
    if missing:
        return verdict(False, *evidence, f"faltan los orígenes del portal: {' '.join(missing)}")
    return verdict(True, *evidence, "incluye los orígenes del inventario")


@check("IDS-WEB")
def web_attacks_contained(p: Probe) -> Observation:
    nonce = f"prepaudit{time.time_ns()}"
    evidence, blocked = [], True
    for attack in (SQL_INJECTION, PATH_TRAVERSAL):
        path = f"{attack}&{nonce}"
        status, _, _ = p.http.get(path)
        evidence.append(f"GET {path} → {status}")
        blocked &= status == 403
    if p.shell.host is not None:
        logged = _poll(lambda: p.shell.run(f"grep -q {nonce} {MODSECURITY_AUDIT_LOG}").rc == 0)
        if logged:
            evidence.append(f"ModSecurity lo registró en {MODSECURITY_AUDIT_LOG}")
        else:
            blocked = False
            evidence.append(f"nada en {MODSECURITY_AUDIT_LOG}")
    return verdict(blocked, *evidence)


def _poll(probe: Callable[[], object], seconds: float = 5, step: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if probe():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


# --- The IEC's account (clauses II.a, III) ----------------------------------------------------


@check("SFTP-CONFINADA")
def sftp_confined(p: Probe) -> Observation:
    evidence, problems = [], []
    seen = False
    if p.sftp.login is not None:
        session = p.sftp.open()
        home, top, above = session.normalize("."), sorted(session.listdir("/")), None
        above = sorted(session.listdir("/.."))
        evidence.append(f"SFTP: inicia en {home}; / contiene {', '.join(top)}")
        if above != top or any(name in top for name in ("etc", "usr", "home", "root")):
            problems.append("la cuenta ve fuera de la carpeta de publicación")
        refused, answer = p.sftp.exec_refused()
        evidence.append(f"ejecutar una orden: {answer}")
        if not refused:
            problems.append("la cuenta ejecuta órdenes")
        seen = True
    if p.shell.host is not None and p.target.settings is not None:
        settings = p.target.settings
        source = str(settings.iec_sources[0].network_address)
        spec = f"user={settings.sftp_user},host=audit,addr={source}"
        config = dict(
            line.split(" ", 1) for line in p.shell.output(f"sshd -T -C {spec}").splitlines()
            if " " in line
        )  # fmt: skip
        wanted: dict[str, Callable[[str], bool]] = {
            "chrootdirectory": lambda v: v not in ("none", ""),
            "forcecommand": lambda v: v.startswith("internal-sftp"),
            "allowtcpforwarding": lambda v: v == "no",
            "x11forwarding": lambda v: v == "no",
            "permittty": lambda v: v == "no",
        }
        for key, ok in wanted.items():
            value = config.get(key, "")
            evidence.append(f"sshd -T ({settings.sftp_user}): {key} {value}")
            if not ok(value):
                problems.append(f"{key} {value or '(sin valor)'}")
        seen = True
    if not seen:
        raise NotChecked("sin la cuenta del IEC ni acceso de administrador")
    return verdict(not problems, *evidence, *problems)


@check("ALTA-DISPONIBILIDAD")
def high_availability(p: Probe) -> Observation:
    peers = [str(peer) for peer in p.target.peers]
    settings = p.target.settings
    floating = settings.ha_address if settings else None
    if not peers:
        return verdict(False, "un solo servidor: ningún otro nodo recibe los cortes")
    evidence = [f"otros nodos del difusor: {', '.join(peers)}"]
    if floating is None:
        return verdict(False, *evidence, "sin dirección flotante (ha_address): los visitantes"
                       " llegan a un solo nodo y nada los lleva al otro si cae")  # fmt: skip
    problems = []
    for unit in ("keepalived", "prep-ha-monitor"):
        state = p.shell.run(f"systemctl is-active {unit}").stdout.strip() or "?"
        evidence.append(f"{unit}: {state}")
        if state != "active":
            problems.append(f"{unit} no está activo")
    held = f" {floating}/" in p.shell.output("ip -o -4 addr show")
    evidence.append(f"{floating} {'en este nodo' if held else 'en otro nodo'}")
    try:
        seen = json.loads(p.shell.output(f"cat {HA_STATE}"))
        evidence.append(f"veredicto del monitor: {seen.get('reason')} (desde {seen.get('since')})")
        if seen.get("fault"):
            problems.append("el monitor puso el nodo en falla: no sirve la publicación")
    except (NotChecked, ValueError) as exc:
        problems.append(f"sin el veredicto del monitor ({HA_STATE}): {exc}")
    return verdict(not problems, *evidence, *problems)


# --- Infrastructure (clause II.b-e), from the shell ------------------------------------------


@check("HW-MINIMOS")
def minimums(p: Probe) -> Observation:
    resources = p.fact(HostResources, path=p.root)
    seen = (
        f"{resources.cpu_cores} núcleos, {resources.memory_bytes / GB:.1f} GB de memoria,"
        f" {resources.disk_bytes / GB:.1f} GB de disco bajo {p.root}"
    )
    problems = shortfalls(resources, HostRequirements())
    return verdict(not problems, seen, *problems)


@check("HW-DISCO-REDUNDANTE")
def redundant_disk(p: Probe) -> Observation:
    found = redundancy(
        p.fact(MountOf, path=p.root),
        p.fact(MdStat),
        p.fact(LvmVolumes),
        p.fact(ZpoolStatus),
        p.fact(BtrfsFilesystem, path=p.root),
        p.fact(SmartDevices),
    )
    return verdict(found.redundant, found.reason)


def _default_device(p: Probe) -> str:
    """The interface of the default route, else the one holding the audited address."""
    routes = json.loads(p.shell.output("ip -j route show default") or "[]")
    if routes:
        return str(routes[0]["dev"])
    found = json.loads(
        p.shell.output(f"ip -j addr show to {shlex.quote(p.target.address)}") or "[]"
    )
    if not found:
        raise NotChecked(
            f"ninguna interfaz del servidor tiene ruta por defecto ni {p.target.address}"
        )
    return str(found[0]["ifname"])


@check("HW-RED-REDUNDANTE")
def redundant_nic(p: Probe) -> Observation:
    device = _default_device(p)
    # The route may leave through a bridge or a VLAN on top of the bond: look down the stack.
    script = (
        f"d={shlex.quote(device)}; for i in 1 2 3 4; do"
        " if [ -r /sys/class/net/$d/bonding/slaves ]; then"
        ' echo "bond $d $(cat /sys/class/net/$d/bonding/slaves)"; exit 0; fi;'
        " l=$(ls -d /sys/class/net/$d/lower_* 2>/dev/null | head -n 1);"
        ' [ -n "$l" ] || break; d=${l##*/lower_}; done; echo "single $d"'
    )
    kind, name, *slaves = p.shell.output(script).split()
    if kind == "bond" and len(slaves) >= 2:
        return verdict(
            True, f"la ruta por defecto sale por {device}: bond {name} de {', '.join(slaves)}"
        )
    detail = (
        f"bond {name} con {len(slaves)} tarjeta(s)"
        if kind == "bond"
        else f"una sola tarjeta ({name})"
    )
    return verdict(False, f"el servidor sale por {device}: {detail}")


@check("HW-FUENTE-REDUNDANTE")
def redundant_power(p: Probe) -> Observation:
    result = p.shell.run("command -v ipmitool >/dev/null && ipmitool sdr type 'Power Supply'")
    if result.rc != 0:
        raise NotChecked(
            "sin ipmitool o sin BMC: las fuentes de poder no se ven desde el sistema operativo;"
            " verificarlas físicamente"
        )
    supplies = [line for line in result.stdout.splitlines() if "|" in line]
    working = [line for line in supplies if "| ok" in line.lower()]
    return verdict(len(working) >= 2, f"{len(working)} de {len(supplies)} fuentes en estado ok",
                   *(line.strip() for line in supplies))  # fmt: skip


@check("HW-LINUX")
def linux(p: Probe) -> Observation:
    kernel = p.shell.output("uname -sr").strip()
    release = dict(
        line.split("=", 1) for line in p.shell.output("cat /etc/os-release").splitlines()
        if "=" in line
    )  # fmt: skip
    name = release.get("PRETTY_NAME", "?").strip('"')
    return verdict(kernel.startswith("Linux"), f"{name}; núcleo {kernel}")


@check("RED-ENLACE")
def link_speed(p: Probe) -> Observation:
    device = _default_device(p)
    text = p.shell.run(f"cat /sys/class/net/{shlex.quote(device)}/speed").stdout.strip()
    if not text.lstrip("-").isdigit() or int(text) <= 0:
        raise NotChecked(f"{device} no informa su velocidad")
    note = "velocidad de la interfaz; el ancho de banda contratado no se ve desde el servidor"
    return verdict(int(text) >= MIN_LINK_MBPS, f"{device}: {text} Mb/s ({note})")


def _ruleset(p: Probe) -> str:
    """The loaded nftables ruleset; empty when the host has no nftables at all."""

    def read() -> str:
        if p.shell.run("command -v nft").rc != 0:
            return ""
        return p.shell.output("nft list ruleset")

    return p.once("ruleset", read)


def _input_chains(ruleset: str) -> list[str]:
    return re.findall(r"chain \S+ \{\s*type filter hook input[^\n]*", ruleset)


@check("FW-FILTRO")
def firewall_default_drop(p: Probe) -> Observation:
    ruleset = _ruleset(p)
    chains = _input_chains(ruleset)
    enabled = p.shell.run("systemctl is-enabled nftables").stdout.strip()
    evidence = [*(" ".join(c.split()) for c in chains), f"nftables.service: {enabled}"]
    if not chains:
        found = "no hay ninguna cadena de entrada cargada" if ruleset else "no hay reglas"
        return verdict(False, f"nftables: {found}", f"nftables.service: {enabled}")
    ok = all("policy drop" in c for c in chains) and enabled == "enabled"
    return verdict(ok, *evidence)


def _timed_blocklist(ruleset: str) -> bool:
    """A set whose elements expire (bans) that a rule drops sources from."""
    timed = re.findall(r"set (\S+) \{[^}]*flags [^}\n]*timeout", ruleset)
    return any(re.search(rf"saddr @{name}\b[^\n]*drop", ruleset) for name in timed)


@check("FW-DOS")
def firewall_dos_limits(p: Probe) -> Observation:
    ruleset = _ruleset(p)
    web = [" ".join(line.split()) for line in ruleset.splitlines()
           if re.search(r"dport \{?[^}]*\b(80|443)\b", line)]  # fmt: skip
    found = {
        "límite de conexiones nuevas por origen": any("limit rate" in r for r in web),
        "límite de conexiones simultáneas por origen": any("ct count" in r for r in web),
        "lista de bloqueo con caducidad": _timed_blocklist(ruleset),
    }
    cookies = p.shell.run("cat /proc/sys/net/ipv4/tcp_syncookies").stdout.strip()
    found["SYN cookies (net.ipv4.tcp_syncookies = 1)"] = cookies == "1"
    evidence = [f"{name}: {'sí' if ok else 'NO'}" for name, ok in found.items()]
    return verdict(all(found.values()), *evidence)


@check("IDS-ACTIVO")
def ids_running(p: Probe) -> Observation:
    states = p.shell.run("systemctl is-active fail2ban suricata").stdout.split()
    services = dict(zip(("fail2ban", "suricata"), states + ["?"] * 2, strict=False))
    evidence = [f"{name}: {state}" for name, state in services.items()]
    problems = [name for name, state in services.items() if state != "active"]
    jails = fail2ban_jails(p.shell)
    evidence.append(f"jaulas de fail2ban: {', '.join(jails) or '(ninguna)'}")
    problems += [f"jaula {jail} inactiva" for jail in JAILS if jail not in jails]
    alert = p.shell.run(
        'grep \'"event_type":"alert"\' /var/log/suricata/eve.json | tail -n 1'
    ).stdout.strip()
    if alert:
        last = json.loads(alert)
        evidence.append(
            f"última alerta de Suricata: {last.get('timestamp')}"
            f" {last.get('alert', {}).get('signature')}"
        )
    else:
        evidence.append("Suricata no ha registrado alertas")
    return verdict(not problems, *evidence, *(f"falla: {x}" for x in problems))


@check("UPS-MONITOREO")
def ups_monitored(p: Probe) -> Observation:
    settings = settings_of(p)
    if settings.ups_mode == "none":
        return verdict(False, "ups_mode = 'none': el servidor no sabe de cortes de energía")
    state = p.shell.run("systemctl is-active nut-monitor").stdout.strip()
    server = settings.ups_server if settings.ups_mode == "netclient" else "localhost"
    status = p.shell.run(f"upsc {settings.ups_name}@{server} ups.status")
    evidence = [f"nut-monitor: {state}", f"upsc {settings.ups_name}@{server}: "
                f"{status.stdout.strip() or status.stderr.strip()}"]  # fmt: skip
    last = p.shell.run(f'grep \'"source": *"ups"\' {EVENT_LOG} | tail -n 1').stdout.strip()
    if last:
        event = json.loads(last)
        evidence.append(f"último evento de energía: {event['time']} {event['event']}")
    return verdict(state == "active" and status.rc == 0, *evidence)


# --- Access control and security tests (clause IV) --------------------------------------------


def _sshd(p: Probe) -> dict[str, str]:
    text = p.once("sshd", lambda: p.shell.output("sshd -T"))
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def unexempt_sources(config: dict[str, str], sources: Iterable[Any]) -> list[str]:
    """The sources that OpenSSH's PerSourcePenalties (9.8 and later) would shut out for a
    while after failed logins, because no network of ``PerSourcePenaltyExemptList``
    covers them; none when the sshd has no penalties (older, or turned off)."""
    penalties = config.get("persourcepenalties")
    if penalties is None or penalties.strip() == "no":
        return []
    listed = config.get("persourcepenaltyexemptlist", "none")
    exempt = [] if listed == "none" else [ip_network(n, strict=False) for n in listed.split(",")]
    shut_out = []
    for source in sources:
        wanted = ip_network(str(source), strict=False)
        covered = any(
            wanted.version == n.version
            and int(n.network_address) <= int(wanted.network_address)
            and int(wanted.broadcast_address) <= int(n.broadcast_address)
            for n in exempt
        )
        if not covered:
            shut_out.append(str(wanted))
    return shut_out


@check("ACCESO-SSH")
def ssh_access(p: Probe) -> Observation:
    config = _sshd(p)
    wanted = {
        "passwordauthentication": ("no",),
        "kbdinteractiveauthentication": ("no",),
        "permitemptypasswords": ("no",),
        "pubkeyauthentication": ("yes",),
        "permitrootlogin": ("no", "prohibit-password", "without-password"),
    }
    evidence, problems = [], []
    for key, good in wanted.items():
        value = config.get(key, "")
        evidence.append(f"{key} {value}")
        if value not in good:
            problems.append(f"sshd: {key} {value}")
    if not config.get("allowusers") and not config.get("allowgroups"):
        problems.append("sshd: sin AllowUsers ni AllowGroups")
    else:
        evidence.append(f"allowusers {config.get('allowusers', '')}")
    if "persourcepenalties" in config and p.target.settings is not None:
        shut_out = unexempt_sources(config, p.target.settings.iec_sources)
        if shut_out:
            problems.append(
                "sshd castiga a los orígenes que fallan (PerSourcePenalties) sin eximir al"
                f" IEC: {', '.join(shut_out)}; un envío fallido lo dejaría fuera hasta 10"
                " minutos (PerSourcePenaltyExemptList)"
            )
        else:
            evidence.append(
                "persourcepenaltyexemptlist"
                f" {config.get('persourcepenaltyexemptlist', '')} (los orígenes del IEC)"
            )
    port = config.get("port", "22")
    ruleset = _ruleset(p)
    chains = _input_chains(ruleset)
    open_to_all = [
        " ".join(line.split()) for line in ruleset.splitlines()
        if re.search(rf"dport {port}\b.*accept", line) and "saddr" not in line
    ]  # fmt: skip
    if not chains or not all("policy drop" in c for c in chains):
        problems.append(
            f"el cortafuegos no filtra la entrada: el puerto {port} acepta cualquier origen"
        )
    elif open_to_all:
        problems.append(f"el puerto {port} acepta cualquier origen: {open_to_all[0]}")
    else:
        evidence.append(f"el cortafuegos solo abre el puerto {port} a orígenes listados")
    return verdict(not problems, *evidence, *problems)


@check("ACCESO-IEC-SIN-SHELL")
def iec_without_shell(p: Probe) -> Observation:
    user = settings_of(p).sftp_user
    entry = p.shell.run(f"getent passwd {shlex.quote(user)}")
    if entry.rc != 0:
        return verdict(False, f"no existe la cuenta {user}: el IEC no puede publicar")
    shell = entry.stdout.strip().split(":")[-1]
    return verdict(shell in NOLOGIN, f"{user}: shell {shell}")


@check("SSH-ALGORITMOS")
def ssh_algorithms(p: Probe) -> Observation:
    login = p.target.admin or p.target.iec
    port = login.port if login else 22
    found = ssh_audit(p.target.address, port)
    evidence = [f"ssh-audit {p.target.address}:{port}: {len(found.failures)} fallas,"
                f" {len(found.warnings)} advertencias", *found.failures]  # fmt: skip
    return verdict(not found.failures, *evidence)


@check("CONF-VALIDA")
def configurations_valid(p: Probe) -> Observation:
    found = self_checks(p.shell)
    evidence = [
        f"{name}: {'correcta' if not out else out.strip()[-300:]}" for name, out in found.items()
    ]
    return verdict(not any(found.values()), *evidence)


@check("NGINX-GIXY")
def nginx_gixy(p: Probe) -> Observation:
    findings = gixy(p.shell)
    evidence = [f"gixy: {len(findings)} hallazgos"]
    evidence += [
        f"{f.get('severity')} {f.get('plugin')}: {f.get('summary')}" for f in findings[:10]
    ]
    return verdict(not findings, *evidence)


@check("ENDURECIMIENTO")
def hardening_index(p: Probe) -> Observation:
    if p.lynis:
        run_lynis(p.shell)
    report = lynis_report(p.shell)
    when = report.finished.isoformat(sep=" ") if report.finished else "fecha desconocida"
    if report.finished is None or datetime.now() - report.finished > LYNIS_MAX_AGE:
        raise NotChecked(f"el informe de Lynis es del {when}: correr `prep-iac audit --lynis`")
    evidence = [
        f"índice de Lynis {report.index} (informe del {when})",
        f"{len(report.suggestions)} sugerencias: {', '.join(report.suggestions[:12])}",
    ]
    return verdict(report.index >= LYNIS_TARGET, *evidence)


@check("INTEGRIDAD")
def file_integrity(p: Probe) -> Observation:
    database = p.shell.run(f"stat -c '%s %y' {AIDE_DATABASE}")
    timer = p.shell.run("systemctl is-enabled dailyaidecheck.timer").stdout.strip()
    evidence = [f"dailyaidecheck.timer: {timer or '(no existe)'}"]
    if database.rc != 0:
        return verdict(False, f"no hay base de AIDE en {AIDE_DATABASE}", *evidence)
    size, when = database.stdout.split(" ", 1)
    evidence.insert(0, f"base de AIDE {AIDE_DATABASE}: {size} bytes, {when.strip()[:19]}")
    return verdict(int(size) > 0 and timer == "enabled", *evidence)


@check("TIEMPO")
def clock(p: Probe) -> Observation:
    shown = p.shell.output("systemctl show chrony -p ActiveState -p ConditionResult")
    props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    if props.get("ActiveState") == "active":
        tracking = p.shell.output("chronyc -n tracking")
        leap = re.search(r"Leap status\s*:\s*(.*)", tracking)
        system = re.search(r"System time\s*:\s*(.*)", tracking)
        evidence = [
            f"chrony: {leap.group(1) if leap else '?'}; {system.group(1) if system else ''}"
        ]
        return verdict(bool(leap and leap.group(1).strip() == "Normal"), *evidence)
    if props.get("ConditionResult") == "no":
        # A container cannot set its clock (chrony's ConditionCapability=CAP_SYS_TIME):
        # its clock is its host's. Compare it with the auditor's.
        before = time.time()
        remote = float(p.shell.output("date +%s.%N"))
        offset = remote - (before + time.time()) / 2
        return verdict(
            abs(offset) < MAX_CLOCK_OFFSET_S,
            "el servidor no puede ajustar su reloj (contenedor): usa el de su anfitrión",
            f"desfase respecto al auditor: {offset * 1000:+.0f} ms",
        )
    return verdict(False, f"chrony no está activo ({props.get('ActiveState', '?')})")


RETENTION = re.compile(r"^MaxRetentionSec=(\d+)\s*(d|day|days|w|week|weeks|month|months|y|year)?$")
RETENTION_DAYS = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7,
                  "month": 30, "months": 30, "y": 365, "year": 365}  # fmt: skip


@check("BITACORAS")
def logs_retained(p: Probe) -> Observation:
    journald = p.shell.output("systemd-analyze cat-config systemd/journald.conf")
    values = [m for line in journald.splitlines() if (m := RETENTION.match(line.strip()))]
    days = (
        int(values[-1].group(1)) * RETENTION_DAYS.get(values[-1].group(2) or "", 0) if values else 0
    )
    evidence = [
        "journald: MaxRetentionSec "
        + (values[-1].group(0).split("=")[1] if values else "(sin límite de tiempo)")
    ]
    problems = []
    if values and days < MIN_RETENTION_DAYS:
        problems.append(f"journald conserva {days} días")
    rotate = re.findall(
        r"^\s*rotate\s+(\d+)", p.shell.run("cat /etc/logrotate.d/nginx").stdout, re.M
    )
    kept = min(map(int, rotate)) if rotate else 0
    evidence.append(f"logrotate de nginx: {kept} rotaciones")
    if kept < MIN_RETENTION_DAYS:
        problems.append(f"nginx conserva {kept} rotaciones (se piden {MIN_RETENTION_DAYS} días)")
    log = p.shell.run(f"stat -c '%s %y' {ACCESS_LOG}")
    if log.rc != 0:
        problems.append(f"no existe la bitácora de acceso {ACCESS_LOG}")
    else:
        size, when = log.stdout.split(" ", 1)
        evidence.append(f"{ACCESS_LOG}: {size} bytes, escrita {when.strip()[:19]}")
    return verdict(not problems, *evidence, *problems)
