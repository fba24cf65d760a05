"""End to end: web attacks on a deployed difusor are blocked, banned and logged.

The host is the one ``test_difusor_e2e.py`` deploys (``hosts[0]``); here the
deploy is a no-change re-run when that module ran first. Requests come from
the machine over real TCP from three sources: the admin (never banned), the
IEC and a stranger (the one that floods and gets banned).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prep_iac.deploy.events import LOG as EVENT_LOG
from prep_iac.deploy.ids import MODSECURITY_AUDIT_LOG
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import STRANGER, Deployed, connect, difusor_on

pytestmark = pytest.mark.testbed

CUT = "20180701_2100"
SQL_INJECTION = "/?id=1'%20OR%20'1'='1"
PATH_TRAVERSAL = "/?file=../../../../etc/passwd"
EVE = "/var/log/suricata/eve.json"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployed(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("ids")
    with difusor_on(testbed, testbed.hosts[0], work, ROOT) as target:
        target.deploy()
        yield target
        target.root(f"fail2ban-client unban {STRANGER}", check=False)


def wait_for(probe: Callable[[], Any], seconds: float = 15, step: float = 0.5) -> Any:
    """The first truthy ``probe()`` within ``seconds``; fails the test otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            assert value, f"nothing within {seconds} s"
            return value
        time.sleep(step)


def json_lines(deployed: Deployed, path: str, lines: int = 200) -> list[dict[str, Any]]:
    """The last ``lines`` records; a line that is not one JSON record is skipped: the
    last may be half written, and under load (the pentest's SYN burst) Suricata's
    threads have been seen to interleave two events in one line of eve.json."""
    text = deployed.root(f"tail -n {lines} {path}").stdout
    records = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def publish_cut(deployed: Deployed) -> None:
    """A cut with every kind of file the PREP publishes, made live (with the
    activation's umask, as ``test_difusor_e2e.publish``)."""
    release = f"/srv/prep/releases/{CUT}"
    deployed.root(
        f"umask 022 && mkdir -p {release}/datos && cd {release}"
        " && printf '<!doctype html><title>PREP</title>' > index.html"
        " && printf 'body{color:#333}' > app.css && printf 'fetch(\"datos/x.json\")' > app.js"
        ' && printf \'{"actas":[{"id":1,"votos":"SELECT OR 1=1"}]}\' > datos/resultados.json'
        " && printf 'ID_ESTADO,VOTOS\\n5,1\\n' > datos/resultados.csv"
        " && python3 -c \"import zipfile; z = zipfile.ZipFile('datos/PREP.zip', 'w');"
        " z.writestr('PREP.csv', 'x'); z.close()\""
        f" && ln -sfn releases/{CUT} /srv/prep/.live.t && mv -T /srv/prep/.live.t /srv/prep/live"
    )


def test_published_files_are_never_blocked(deployed: Deployed) -> None:
    publish_cut(deployed)
    try:
        for path in ("/", "/index.html?v=20180701_2100", "/app.css", "/app.js",
                     "/datos/resultados.json", "/datos/resultados.csv",
                     "/datos/PREP.zip"):  # fmt: skip
            status, headers, _ = deployed.http(
                path, headers={"Accept": "*/*", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
            )
            assert status == 200, path
            assert headers["x-prep-corte"] == CUT
    finally:
        deployed.root("ln -sfn notice /srv/prep/.live.t && mv -T /srv/prep/.live.t /srv/prep/live")


def test_sql_injection_and_path_traversal_are_blocked_by_the_crs_and_logged(
    deployed: Deployed,
) -> None:
    for path in (SQL_INJECTION, PATH_TRAVERSAL):
        assert deployed.http(path)[0] == 403, path
    # A traversal in the path itself never reaches a file: nginx refuses it first.
    assert deployed.http("/../../etc/passwd")[0] == 400

    audit = json_lines(deployed, MODSECURITY_AUDIT_LOG)
    blocked = {
        t["request"]["uri"]: {m["details"]["ruleId"] for m in t["messages"]}
        for t in (r["transaction"] for r in audit)
        if t["response"]["http_code"] == 403
    }
    assert any(rule.startswith("942") for rule in blocked[SQL_INJECTION])  # SQL injection
    assert any(rule.startswith("930") for rule in blocked[PATH_TRAVERSAL])  # LFI/traversal
    record = next(
        r["transaction"] for r in audit if r["transaction"]["request"]["uri"] == SQL_INJECTION
    )
    assert record["client_ip"] == deployed.admin_source
    assert {"time_stamp", "unique_id", "request", "response", "messages"} <= record.keys()
    # The fail2ban filter of the CRS jail matches both blocks in nginx's error log.
    check = deployed.root(
        "fail2ban-regex /var/log/nginx/error.log /etc/fail2ban/filter.d/prep-modsecurity.conf"
    ).stdout
    assert "Failregex: 0 total" not in check


def test_suricata_records_the_attacks_as_eve_json(deployed: Deployed) -> None:
    deployed.http(SQL_INJECTION)
    deployed.http(PATH_TRAVERSAL)

    def alerts() -> set[int]:
        return {
            r["alert"]["signature_id"]
            for r in json_lines(deployed, EVE, 2000)
            if r.get("event_type") == "alert" and r.get("src_ip") == deployed.admin_source
        }

    found = wait_for(lambda: {9100001, 9100002} <= alerts())
    assert found
    record = next(r for r in json_lines(deployed, EVE, 2000) if r.get("event_type") == "alert"
                  and r["alert"]["signature_id"] == 9100002)  # fmt: skip
    assert {"timestamp", "src_ip", "dest_ip", "dest_port", "proto", "http"} <= record.keys()
    assert record["dest_ip"] == deployed.address


def test_flooding_client_is_limited_then_banned_into_the_blocklist(deployed: Deployed) -> None:
    conn = http.client.HTTPConnection(deployed.address, 80, timeout=5,
                                      source_address=(STRANGER, 0))  # fmt: skip
    statuses: list[int] = []
    try:
        for _ in range(400):  # bounded: above the burst, well within a second or two
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    except OSError:
        pass  # the ban may cut the connection's later requests
    finally:
        conn.close()
    assert 429 in statuses and statuses[0] == 200

    def banned() -> bool:
        listing = deployed.root("nft -j list set inet prep blocklist4").stdout
        return STRANGER in listing

    wait_for(banned)
    with pytest.raises(TimeoutError):
        connect(deployed.address, 80, STRANGER, timeout=3)
    assert deployed.http("/", source=deployed.iec_source)[0] == 200
    assert deployed.http("/", source=deployed.admin_source)[0] == 200

    bans = [r for r in json_lines(deployed, EVENT_LOG) if r["source"] == "fail2ban"]
    assert bans[-1]["event"] == "ban"
    assert bans[-1]["detail"].startswith(f"nginx-limit-req {STRANGER}")
    assert set(bans[-1]) == {"time", "host", "source", "event", "detail"}


def test_banned_client_is_served_again_after_unban(deployed: Deployed) -> None:
    deployed.root(f"fail2ban-client unban {STRANGER}")
    assert STRANGER not in deployed.root("nft -j list set inet prep blocklist4").stdout
    assert deployed.http("/", source=STRANGER)[0] == 200


BADBOTS_LINES = {
    # Scanners as they name themselves, whatever the case.
    "Mozilla/5.0 (compatible; Nikto/2.5)": True,
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)": True,
    "sqlmap/1.8#stable (https://sqlmap.org)": True,
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)": True,
    # Readers, and a crawler (counted apart in the memoria, never banned).
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0": False,
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": False,
}


def test_badbots_jail_matches_scanners_in_any_case_and_never_a_reader(
    deployed: Deployed, tmp_path: Path
) -> None:
    """fail2ban-regex on the host, with the deploy's filter, over access-log lines in the
    deploy's JSON format (fail2ban's regexes are case-sensitive: "Nikto" once slipped by)."""
    lines = [
        json.dumps({"time": f"2018-07-01T20:0{i}:00-05:00", "remote_addr": f"198.18.9.{i + 1}",
                    "host": "h", "method": "GET", "uri": "/", "status": 200,
                    "user_agent": agent}, separators=(",", ":"))
        for i, agent in enumerate(BADBOTS_LINES)
    ]  # fmt: skip
    lines.append(lines[-2].replace('"uri":"/"', '"uri":"/wp-login.php"'))  # a probe, by path
    sample = "/tmp/prep-badbots-sample.log"  # on the host
    deployed.root(f"cat > {sample} <<'EOF'\n" + "\n".join(lines) + "\nEOF")
    done = deployed.root(
        f"fail2ban-regex --print-all-matched {sample} /etc/fail2ban/filter.d/prep-badbots.conf"
    )
    matched = {a for a, bad in BADBOTS_LINES.items() if json.dumps(a)[1:-1] in done.stdout}
    expected = {a for a, bad in BADBOTS_LINES.items() if bad}
    assert expected <= matched, done.stdout[-3000:]
    assert "Lines: 7 lines, 0 ignored, 5 matched, 2 missed" in done.stdout, done.stdout[-3000:]


def test_ids_configurations_pass_their_own_checks(deployed: Deployed) -> None:
    for command in ("nginx -t -q", "nft -c -f /etc/nftables.conf", "sshd -t",
                    "suricata -T -c /etc/suricata/prep.yaml", "fail2ban-client -t"):  # fmt: skip
        result = deployed.root(command, check=False)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    for unit in ("nginx", "fail2ban", "suricata"):
        assert deployed.root(f"systemctl is-active {unit}").stdout.strip() == "active"
    jails = deployed.root("fail2ban-client status").stdout
    for jail in ("sshd", "nginx-limit-req", "prep-modsecurity", "prep-badbots"):
        assert jail in jails
