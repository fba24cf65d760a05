"""The event hook every detector calls, run here as the host runs it, and the UPS settings.

``prep-event`` is rendered from its template with a temporary log and targets
file; a local HTTP server stands in for the webhook.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from prep_iac.deploy.rendering import render
from prep_iac.deploy.settings import DifusorSettings

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()


def hook(tmp_path: Path, webhook: str | None) -> tuple[Path, Path]:
    log, config, script = (
        tmp_path / "events.log",
        tmp_path / "targets.json",
        tmp_path / "prep-event",
    )
    config.write_text(render("prep-event.json.j2", emails=[], webhook=webhook))
    script.write_text(render("prep-event.py.j2", log=str(log), config=str(config)))
    return script, log


def test_event_is_a_json_line_and_reaches_the_webhook(
    tmp_path: Path, webhook: tuple[str, list[bytes]]
) -> None:
    url, received = webhook
    script, log = hook(tmp_path, url)
    for event in ("ONBATT", "LOWBATT"):
        subprocess.run([sys.executable, str(script), "ups", event, "ups@localhost"], check=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["ONBATT", "LOWBATT"]
    assert set(records[0]) == {"time", "host", "source", "event", "detail"}
    assert records[0]["source"] == "ups" and records[0]["detail"] == "ups@localhost"
    assert records[0]["time"].endswith("Z")
    assert [json.loads(body) for body in received] == records


def test_event_is_logged_even_when_the_webhook_is_down(tmp_path: Path) -> None:
    script, log = hook(tmp_path, "http://127.0.0.1:9/unreachable")
    result = subprocess.run(
        [sys.executable, str(script), "mdadm", "DegradedArray", "/dev/md0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert "webhook failed" in result.stderr
    assert json.loads(log.read_text())["event"] == "DegradedArray"


def base_settings(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "difusor_id": "x", "difusor_name": "x", "server_names": ["prep.example.org"],
        "frame_ancestors": ["'self'"],
        "iec_sources": ["198.51.100.0/28"], "iec_keys": [KEY], "sftp_user": "iec",
        "publication_root": "/srv/prep", "admin_sources": ["203.0.113.0/26"],
        "admin_keys": [KEY], "admin_user": "root", "http_rate_per_second": 20,
        "http_burst": 120, "http_connections_per_source": 64, "new_connections_per_second": 60,
        "max_connections_per_source": 256, "ssh_new_connections_per_minute": 30,
        "journald_retention_days": 90, "journald_max_use": "4G",
        "access_log_retention_days": 90, "ntp_pools": ["pool.ntp.org"],
        "automatic_reboot": False, "ups_mode": "none", "notify_emails": [], "ha_peers": [],
        "force_below_minimums": False, "iec_signing_keys": [], "election": "coahuila-2018",
        "keep_releases": 5, "publication_max_age_seconds": None, "upload_area_mib": 256,
    }  # fmt: skip
    values.update(changes)
    return values


def test_standalone_ups_needs_a_driver_and_a_password() -> None:
    with pytest.raises(ValidationError) as info:
        DifusorSettings.model_validate(base_settings(ups_mode="standalone"))
    assert "ups_driver" in str(info.value) and "ups_password" in str(info.value)
    settings = DifusorSettings.model_validate(
        base_settings(ups_mode="standalone", ups_driver="usbhid-ups", ups_password="s3cret-pw")  # noqa: S106 (a test value)
    )
    assert settings.ups_shutdown_command == "/sbin/shutdown -h +0"
