"""The audit without a testbed: its catalogue, waivers, and the four outputs, with the
publication checks run against a real HTTP server on loopback playing a difusor."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from prep_iac.audit import report
from prep_iac.audit.checks import CHECKS
from prep_iac.audit.controls import Status, catalogue
from prep_iac.audit.run import Audit, audit
from prep_iac.audit.target import Target
from prep_iac.audit.waivers import Waiver, Waivers, load_waivers
from prep_iac.models.loading import ConfigError

CUT = "20180701_2000"
INDEX = (
    '<!doctype html><title>PREP</title><p id="prep-corte">Corte de información: '
    '<time datetime="2018-07-01T20:00:00-05:00">01/07/2018 20:00</time></p>'
).encode()
CORTE = json.dumps({"corte": CUT, "fecha_hora": "2018-07-01T20:00:00-05:00"}).encode()
PUBLICATION = ("PUB-GRATIS", "PUB-CORTE-VISIBLE", "PUB-MARCOS")


class Portal(http.server.BaseHTTPRequestHandler):
    """A difusor's publication: the cut's page and corte.json, with its headers."""

    headers_out: ClassVar[dict[str, str]] = {}
    status = 200

    def do_GET(self) -> None:
        body = {"/": INDEX, "/corte.json": CORTE}.get(self.path.split("?")[0], b"")
        self.send_response(self.status if body else 404)
        for key, value in {"X-PREP-Corte": CUT, **self.headers_out}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[type[Portal]]:
    handler = type("Handler", (Portal,), {"headers_out": {}, "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.port = server.server_address[1]  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def visitor_audit(portal: type[Portal], waivers: Waivers | None = None) -> Audit:
    target = Target(
        name="portal", address="127.0.0.1", http_host="prep.test",
        http_port=portal.port,  # type: ignore[attr-defined]
    )  # fmt: skip
    return audit([target], waivers or Waivers(), only=set(PUBLICATION) | {"HW-MINIMOS"})


def by_id(done: Audit) -> dict[str, Status]:
    return {f.control.id: f.status for f in done.findings}


def test_every_control_has_one_check_and_a_quoted_clause() -> None:
    ids = [c.id for c in catalogue()]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(CHECKS)
    assert all(c.quote and c.remedy and c.clause for c in catalogue())
    clauses = {part.split(".")[0] for c in catalogue() for part in c.clause.split(", ")}
    assert clauses == {"I", "II", "III", "IV", "VI"}


def test_a_free_framable_page_showing_its_cut_time_passes_and_no_shell_is_never_a_pass(
    portal: type[Portal],
) -> None:
    done = visitor_audit(portal)
    assert by_id(done) == {
        "PUB-GRATIS": Status.PASS, "PUB-CORTE-VISIBLE": Status.PASS,
        "PUB-MARCOS": Status.PASS, "HW-MINIMOS": Status.NOT_CHECKED,
    }  # fmt: skip
    shown = next(f for f in done.findings if f.control.id == "PUB-CORTE-VISIBLE")
    assert "01/07/2018 20:00" in " ".join(shown.evidence)
    minimums = next(f for f in done.findings if f.control.id == "HW-MINIMOS")
    assert "sin acceso de administrador" in minimums.evidence[0]
    assert done.blocking == []


def test_a_page_behind_a_login_or_refusing_frames_fails_with_its_evidence(
    portal: type[Portal],
) -> None:
    portal.status = 401
    portal.headers_out = {"WWW-Authenticate": "Basic", "X-Frame-Options": "DENY"}
    done = visitor_audit(portal)
    assert by_id(done)["PUB-GRATIS"] is Status.FAIL
    assert by_id(done)["PUB-MARCOS"] is Status.FAIL
    assert by_id(done)["PUB-CORTE-VISIBLE"] is Status.FAIL
    assert [f.control.id for f in done.blocking] == ["PUB-GRATIS", "PUB-CORTE-VISIBLE"]
    framing = next(f for f in done.findings if f.control.id == "PUB-MARCOS")
    assert "X-Frame-Options: DENY" in " ".join(framing.evidence)


def test_a_valid_waiver_waives_a_failure_and_an_expired_one_does_not(
    portal: type[Portal],
) -> None:
    portal.headers_out = {"X-Frame-Options": "SAMEORIGIN"}
    reason = "El portal aún no enmarca el PREP; se corrige el 20 de junio."
    valid = Waivers(waivers=[Waiver(control="PUB-MARCOS", reason=reason,
                                    expires=date.today() + timedelta(days=1))])  # fmt: skip
    framing = next(f for f in visitor_audit(portal, valid).findings if f.control.id == "PUB-MARCOS")
    assert framing.status is Status.WAIVED
    assert framing.waiver and reason in framing.waiver and "vigente" in framing.waiver
    expired = Waivers(waivers=[Waiver(control="PUB-MARCOS", reason=reason,
                                      expires=date.today() - timedelta(days=1))])  # fmt: skip
    framing = next(
        f for f in visitor_audit(portal, expired).findings if f.control.id == "PUB-MARCOS"
    )
    assert framing.status is Status.FAIL
    assert framing.waiver and "VENCIDA" in framing.waiver
    # A waiver never turns "not checked" into anything else.
    unchecked = Waivers(waivers=[Waiver(control="HW-MINIMOS", reason=reason, expires=date.max)])
    minimums = next(
        f for f in visitor_audit(portal, unchecked).findings if f.control.id == "HW-MINIMOS"
    )
    assert minimums.status is Status.NOT_CHECKED


def test_a_waiver_file_with_an_unknown_control_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n  - control: PUB-MARCOS\n    reason: Un motivo suficiente.\n"
        "    expires: 2018-07-10\n  - control: NO-EXISTE\n    reason: x\n    expires: nunca\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_waivers(path)
    text = str(caught.value)
    assert f"{path}:5: waivers[1].control: got 'NO-EXISTE'; expected a control id" in text
    assert "waivers[1].reason" in text and "waivers[1].expires" in text


def test_json_junit_and_the_spanish_html_report_say_the_same(
    portal: type[Portal], tmp_path: Path
) -> None:
    portal.headers_out = {"X-Frame-Options": "DENY"}
    done = visitor_audit(portal)
    report.write_json(done, tmp_path / "audit.json")
    report.write_junit(done, tmp_path / "audit.xml")
    report.write_html(done, tmp_path / "audit.html")
    data = json.loads((tmp_path / "audit.json").read_text())
    statuses = {f["control"]["id"]: f["status"] for f in data["findings"]}
    assert statuses["PUB-MARCOS"] == "fail" and statuses["HW-MINIMOS"] == "not-checked"
    suite = ET.parse(tmp_path / "audit.xml").getroot().find("testsuite")  # noqa: S314 (ours)
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    failed = [c.get("name", "") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["PUB-MARCOS El portal del difusor puede mostrar el PREP en un marco"]
    # The report as the IEC opens it: Debian's Chromium renders it, in Spanish.
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (bash .ci/setup installs it)"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (tmp_path / "audit.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert 'id="portal-PUB-MARCOS"' in dom
    row = dom.split('id="portal-PUB-MARCOS"', 1)[1].split("</tr>", 1)[0]
    assert "no cumple" in row and "X-Frame-Options: DENY" in row and "frames" in row
    assert "Cómo corregirlo" in row
    assert hashlib.sha256(dom.encode()).hexdigest()  # rendered, not empty
    assert "Verificación de la infraestructura del difusor" in dom
