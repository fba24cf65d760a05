"""End to end: deploy a testbed host as a difusor twice, then check it from outside.

The second run must change nothing (as pyinfra's own end-to-end test asserts).
Every check goes over real SSH, SFTP, HTTP and TCP from the machine, from the
admin's, the IEC's and a stranger's source addresses.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import re
import runpy
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from prep_iac.audit.tools import tls_scan
from prep_iac.deploy.baseline import KERNEL_PARAMETERS, SYSCTL_FILE
from prep_iac.deploy.facts.nftables import NftablesRuleset
from prep_iac.deploy.integrity import AIDE_DATABASE
from prep_iac.deploy.rendering import render
from prep_iac.deploy.settings import settings_from_host
from prep_iac.deploy.web import ACME_WEBROOT
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import (
    STRANGER,
    Deployed,
    Run,
    connect,
    difusor_on,
    make_key,
)

pytestmark = pytest.mark.testbed

CUT = "20180701_2000"
ROOT = Path(__file__).resolve().parents[2]
GROUP_DEFAULTS = runpy.run_path(str(ROOT / "group_data" / "difusores.py"))
MAX_CONNECTIONS = int(GROUP_DEFAULTS["max_connections_per_source"])
NEW_PER_SECOND = int(GROUP_DEFAULTS["new_connections_per_second"])


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    return []


@pytest.fixture(scope="module")
def deployed(
    testbed: Testbed, tmp_path_factory: pytest.TempPathFactory, runs: list[Run]
) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("difusor")
    with difusor_on(testbed, testbed.hosts[0], work, ROOT) as target:
        runs.append(target.deploy())
        runs.append(target.deploy())
        yield target


def test_second_deploy_changes_nothing(deployed: Deployed, runs: list[Run]) -> None:
    first, second = runs[:2]
    assert first.changed > 0
    assert second.changed == 0, second.output[-3000:]


def test_host_below_minimums_is_deployed_with_a_visible_warning(
    deployed: Deployed, runs: list[Run]
) -> None:
    output = runs[0].output
    assert "below the minimums (forced for a test host)" in output
    assert "disk gb:" in output
    assert "clause II.c asks for 100 GB" in output


def test_host_below_minimums_is_refused_without_the_force_flag(deployed: Deployed) -> None:
    deployed.write_inventory(force_below_minimums=False)
    try:
        run = deployed.deploy(check=False)
    finally:
        deployed.write_inventory()
    assert run.returncode != 0
    assert "is below the difusor minimums: disk gb:" in run.output
    assert 'clause II.c asks for 100 GB ("Disco Duro 100 GB")' in run.output
    assert "Starting operation" not in run.output


def test_sshd_nginx_and_nft_accept_the_deployed_configuration(deployed: Deployed) -> None:
    for command in ("sshd -t", "nginx -t -q", "nft -c -f /etc/nftables.conf"):
        assert deployed.root(command, check=False).returncode == 0, command


def test_iec_uploads_into_incoming_inside_its_chroot(deployed: Deployed) -> None:
    with deployed.sftp_client() as client, client.open_sftp() as sftp:
        assert sftp.normalize(".") == "/incoming"
        assert sorted(sftp.listdir("/")) == ["incoming", "live", "notice", "releases", "status"]
        assert sftp.listdir("/..") == sftp.listdir("/")
        sftp.mkdir(f"{CUT}.part")
        with sftp.open(f"{CUT}.part/index.html", "w") as handle:
            handle.write(b"<p>corte</p>")
        # Looked at before the rename: the host's activation takes a complete upload at once.
        owner = deployed.root(f"stat -c %U /srv/prep/incoming/{CUT}.part/index.html").stdout.strip()
        sftp.rename(f"{CUT}.part", CUT)
        for forbidden in ("/x", "/releases/x", "/notice/index.html", "/status/x"):
            with pytest.raises(OSError):
                sftp.open(forbidden, "w").close()
        with pytest.raises(OSError):
            sftp.stat("/etc/passwd")
    assert owner == "iec"
    deployed.root(f"rm -rf /srv/prep/incoming/{CUT}")


def test_iec_gets_no_shell_no_command_no_tty_and_no_forwarding(deployed: Deployed) -> None:
    with deployed.sftp_client() as client:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        with pytest.raises(paramiko.SSHException):
            channel.get_pty()
        channel = transport.open_session()
        channel.settimeout(5)
        channel.exec_command("id; cat /etc/passwd")
        # The command is replaced by internal-sftp, which answers only SFTP requests.
        output = b""
        with contextlib.suppress(TimeoutError):
            while chunk := channel.recv(1024):
                output += chunk
        assert b"uid=" not in output and b"root:" not in output
        channel.close()
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", 80), ("127.0.0.1", 0))
        with pytest.raises(paramiko.SSHException):
            transport.request_port_forward("127.0.0.1", 0)


def test_iec_key_is_refused_outside_the_iec_sources(deployed: Deployed) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        deployed.sftp_client(source=deployed.admin_source)


def test_stranger_cannot_reach_ssh_but_reaches_the_site(deployed: Deployed) -> None:
    with pytest.raises(TimeoutError):
        connect(deployed.address, 22, STRANGER, timeout=3)
    connect(deployed.address, 22, deployed.admin_source).close()
    status, _, _ = deployed.http("/", source=STRANGER)
    assert status == 200


def test_password_and_legacy_algorithms_are_refused(deployed: Deployed) -> None:
    base = [
        "ssh",
        "-F",
        str(deployed.testbed.ssh_config),
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=INFO",
    ]
    legacy = (
        ["Ciphers=aes128-cbc"],
        ["Ciphers=aes128-ctr", "MACs=hmac-sha1"],
        ["KexAlgorithms=diffie-hellman-group14-sha1"],
        ["HostKeyAlgorithms=ecdsa-sha2-nistp256"],
    )
    for options in legacy:
        result = subprocess.run(
            [*base, *(f"-o{o}" for o in options), deployed.host.name, "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 255
        assert "no matching" in result.stderr, result.stderr
    banner = subprocess.run(
        [*base, "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
         deployed.host.name, "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Permission denied (publickey)" in banner.stderr


def publish(deployed: Deployed) -> None:
    """Stand in for the host-side activation: a release, then an atomic switch of live.

    With the activation's umask: an admin's own session has the hardened 027 (on
    Debian 13, whose PAM applies login.defs' UMASK to SSH sessions too).
    """
    release = f"/srv/prep/releases/{CUT}"
    deployed.root(
        f"umask 022 && mkdir -p {release} && printf '<h1>PREP</h1>' > {release}/index.html"
        f" && printf 'console.log(1)' > {release}/app.js && gzip -k -9 {release}/app.js"
        f" && ln -sfn releases/{CUT} /srv/prep/.live.t && mv -T /srv/prep/.live.t /srv/prep/live"
    )


def suspend(deployed: Deployed) -> None:
    deployed.root("ln -sfn notice /srv/prep/.live.t && mv -T /srv/prep/.live.t /srv/prep/live")


def test_published_cut_is_served_with_its_id_frame_policy_and_caching(deployed: Deployed) -> None:
    publish(deployed)
    try:
        status, headers, body = deployed.http("/")
        assert (status, body) == (200, b"<h1>PREP</h1>")
        assert headers["x-prep-corte"] == CUT
        assert headers["content-security-policy"] == (
            "frame-ancestors 'self' https://portal.testbed.example"
        )
        assert "x-frame-options" not in headers
        assert headers["cache-control"] == "public, max-age=30, must-revalidate"
        assert headers["etag"] and headers["last-modified"]
        assert headers["x-content-type-options"] == "nosniff"
        assert "referrer-policy" in headers and "permissions-policy" in headers
        assert headers["server"] == "nginx"
        status, headers, body = deployed.http("/app.js", headers={"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip"
        assert gzip.decompress(body) == b"console.log(1)"
        assert headers["cache-control"] == "public, max-age=600"
        assert deployed.http("/no-such-page.html")[0] == 404
    finally:
        suspend(deployed)


def test_suspended_site_shows_the_spanish_notice_on_every_path(deployed: Deployed) -> None:
    suspend(deployed)
    for path in ("/", "/results/ayuntamientos.html"):
        status, headers, body = deployed.http(path)
        assert status == 200
        assert "Publicación de resultados preliminares suspendida" in body.decode()
        assert "x-prep-corte" not in headers
        assert headers["cache-control"] == "no-cache"


def test_flooding_client_gets_429_while_another_client_is_served(deployed: Deployed) -> None:
    conn = socket.create_connection(
        (deployed.address, 80), timeout=10, source_address=(deployed.admin_source, 0)
    )
    request = f"GET / HTTP/1.1\r\nHost: {deployed.address}\r\n\r\n".encode()
    conn.sendall(request * 400)
    received = b""
    while received.count(b"HTTP/1.1 ") < 400:
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    conn.close()
    assert received.count(b"HTTP/1.1 200") >= 100
    assert received.count(b"HTTP/1.1 429") > 0
    status, _, _ = deployed.http("/", source=deployed.iec_source)
    assert status == 200


def test_access_log_is_json_lines_with_the_memoria_fields(deployed: Deployed) -> None:
    deployed.http(
        "/?memoria",
        source=STRANGER,
        headers={"User-Agent": "prueba-memoria", "Referer": "https://x.test/"},
    )
    lines = deployed.root("tail -n 50 /var/log/nginx/prep-access.log").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    mine = [r for r in records if r["user_agent"] == "prueba-memoria"][-1]
    assert mine["uri"] == "/?memoria"
    assert mine["referer"] == "https://x.test/"
    assert mine["status"] == 200
    assert mine["remote_addr"] == STRANGER
    for field in ("time", "host", "request_time", "bytes_sent", "upstream", "corte"):
        assert field in mine
    throttled = deployed.root("grep -c '\"status\":429' /var/log/nginx/prep-access.log").stdout
    assert int(throttled) > 0
    rotate = deployed.root("cat /etc/logrotate.d/nginx").stdout
    assert "rotate 90" in rotate and "daily" in rotate


def test_kernel_hardening_is_written_and_applied_where_settable(deployed: Deployed) -> None:
    written = deployed.root(f"cat {SYSCTL_FILE}").stdout
    assert written == render("sysctl-hardening.conf.j2", parameters=KERNEL_PARAMETERS)
    for key, wanted in KERNEL_PARAMETERS.items():
        path = "/proc/sys/" + key.replace(".", "/")
        probe = deployed.root(f"test -w {path} && echo rw; cat {path}", check=False).stdout.split()
        if probe and probe[0] == "rw":
            assert probe[1:] == [str(wanted)], key


def test_journal_is_persistent_and_kept_at_least_thirty_days(deployed: Deployed) -> None:
    config = deployed.root("cat /etc/systemd/journald.conf.d/90-prep.conf").stdout
    assert "Storage=persistent" in config and "MaxRetentionSec=90day" in config
    assert deployed.root("ls /var/log/journal").stdout.strip()


def test_blocklisted_stranger_is_dropped_but_a_blocklisted_admin_is_not(deployed: Deployed) -> None:
    for source in (STRANGER, deployed.admin_source):
        deployed.root(f"nft add element inet prep blocklist4 {{ {source} timeout 1m }}")
    try:
        with pytest.raises(TimeoutError):
            connect(deployed.address, 80, STRANGER, timeout=3)
        connect(deployed.address, 22, deployed.admin_source).close()
    finally:
        deployed.root("nft flush set inet prep blocklist4")


def test_https_with_provided_certificates_serves_the_same_site(deployed: Deployed) -> None:
    deployed.root(
        "mkdir -p /etc/ssl/prep && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
        " -nodes -days 2 -subj /CN=prep.testbed.example -keyout /etc/ssl/prep/key.pem"
        " -out /etc/ssl/prep/cert.pem 2>/dev/null && chmod 600 /etc/ssl/prep/key.pem"
    )
    deployed.write_inventory(
        tls_certificate="/etc/ssl/prep/cert.pem", tls_key="/etc/ssl/prep/key.pem"
    )
    try:
        deployed.deploy()
        status, headers, _ = deployed.http("/notice/")
        assert status == 301 and headers["location"].startswith("https://")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a certificate made a moment ago
        conn = http.client.HTTPSConnection(
            deployed.address, 443, timeout=10, context=context,
            source_address=(deployed.admin_source, 0),
        )  # fmt: skip
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Strict-Transport-Security") == "max-age=31536000"
        assert "frame-ancestors" in (response.getheader("Content-Security-Policy") or "")
        assert "suspendida" in response.read().decode()
        conn.close()
        # The pentest's TLS check: testssl.sh finds nothing grave but the certificate
        # (self-signed a moment ago), and no protocol older than TLS 1.2 is offered.
        found = tls_scan(deployed.address, 443, "prep.testbed.example")
        assert found.checked > 30, found
        assert found.failures == found.certificate, found.failures
        assert any(f.startswith("cert_chain_of_trust:") for f in found.certificate), found
        offered = [w for w in found.warnings if w.startswith(("SSLv", "TLS1:", "TLS1_1:"))]
        assert not offered, offered
    finally:
        deployed.write_inventory()
        deployed.deploy()


def test_concurrent_connections_above_the_cap_are_reset_for_that_source_only(
    deployed: Deployed,
) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(connect(deployed.address, 80, STRANGER))
            time.sleep(1 / 50)  # under the new-connection rate, so only the cap applies
        with pytest.raises(ConnectionRefusedError):
            connect(deployed.address, 80, STRANGER)
        assert deployed.http("/", source=deployed.admin_source)[0] == 200
    finally:
        for sock in held:
            sock.close()


def test_burst_of_new_connections_above_the_rate_is_dropped(deployed: Deployed) -> None:
    attempts = []
    for _ in range(300):
        sock = socket.socket()
        sock.bind((deployed.iec_source, 0))
        sock.setblocking(False)
        sock.connect_ex((deployed.address, 80))
        attempts.append(sock)
    time.sleep(0.5)  # dropped SYNs are retried only after 1 s
    _, writable, _ = select.select([], attempts, [], 0)
    for sock in attempts:
        sock.close()
    # The meter lets a burst of twice the per-second rate through at once.
    assert NEW_PER_SECOND <= len(writable) < len(attempts)


def test_firewall_deleted_by_hand_is_restored_by_the_next_deploy(
    deployed: Deployed, runs: list[Run]
) -> None:
    deployed.root("nft delete table inet prep")
    run = deployed.deploy()
    runs.append(run)
    assert run.changed == 1
    assert "blocklist4" in deployed.root("nft list table inet prep").stdout


def test_rotating_the_iec_key_removes_the_old_one(
    deployed: Deployed, tmp_path: Path, runs: list[Run]
) -> None:
    new_key = make_key(tmp_path / "iec_new_ed25519")
    deployed.write_inventory(iec_key=new_key)
    try:
        runs.append(deployed.deploy())
        with pytest.raises(paramiko.AuthenticationException):
            deployed.sftp_client()
        deployed.sftp_client(key=new_key).close()
    finally:
        deployed.write_inventory()


def test_bans_survive_a_redeploy_that_reloads_the_firewall(
    deployed: Deployed, runs: list[Run]
) -> None:
    deployed.root(f"nft add element inet prep blocklist4 {{ {STRANGER} timeout 10m }}")
    deployed.root("nft add element inet prep blocklist6 { 2001:db8::bad timeout 20m }")
    # A changed file makes the deploy replace the table, as a new template would.
    deployed.root("echo '# edited by hand' >> /etc/nftables.conf")
    try:
        runs.append(deployed.deploy())
        assert "edited by hand" not in deployed.root("cat /etc/nftables.conf").stdout
        kept4 = deployed.root("nft list set inet prep blocklist4").stdout
        kept6 = deployed.root("nft list set inet prep blocklist6").stdout
        assert STRANGER in kept4 and "2001:db8::bad" in kept6
        # What was left of the timeout, not a fresh one.
        assert re.search(rf"{re.escape(STRANGER)} timeout 10m expires [0-9]m", kept4), kept4
        with pytest.raises(TimeoutError):
            connect(deployed.address, 80, STRANGER, timeout=3)
    finally:
        deployed.root("nft flush set inet prep blocklist4; nft flush set inet prep blocklist6")


def test_ruleset_rejected_by_nft_is_never_loaded(deployed: Deployed, runs: list[Run]) -> None:
    loaded = NftablesRuleset().process(deployed.root("nft -j list ruleset").stdout.splitlines())
    on_disk = deployed.root("sha256sum /etc/nftables.conf").stdout
    # Valid group data (an int >= 1) that nft cannot take: ct count is 32 bits.
    deployed.write_inventory(max_connections_per_source=10**20)
    try:
        run = deployed.deploy(check=False)
        assert run.returncode != 0
        # The failing operation is named, with nft's own message on the candidate file.
        assert "nftables ruleset, checked with nft -c" in run.output, run.output[-3000:]
        assert "nftables.conf.prep-new:" in run.output and "Error: syntax error" in run.output
        after = deployed.root("nft -j list ruleset").stdout.splitlines()
        assert NftablesRuleset().process(after) == loaded
        assert deployed.root("sha256sum /etc/nftables.conf").stdout == on_disk
        connect(deployed.address, 22, deployed.admin_source).close()
    finally:
        deployed.write_inventory()
    runs.append(deployed.deploy())


def test_acme_challenge_is_served_but_no_other_dot_path(deployed: Deployed) -> None:
    token = "prep-acme-token"  # noqa: S105 (an ACME challenge name, no secret)
    deployed.root(f"echo {token}.thumbprint > {ACME_WEBROOT}/.well-known/acme-challenge/{token}")
    try:
        status, headers, body = deployed.http(f"/.well-known/acme-challenge/{token}")
        assert (status, body) == (200, f"{token}.thumbprint\n".encode())
        assert headers["content-type"].startswith("text/plain")
        for path in ("/.git/config", "/.env", "/.well-known/../.htpasswd", "/.well-known/x"):
            assert deployed.http(path)[0] == 404, path
    finally:
        deployed.root(f"rm -f {ACME_WEBROOT}/.well-known/acme-challenge/{token}")


def test_testbed_inventory_drives_the_dummy_ups(
    testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREP_IAC_TESTBED", testbed.name)
    monkeypatch.chdir(ROOT)
    with ctx_state.use(State()):
        inventory = make_inventory(str(ROOT / "inventories" / "testbed.py"), cwd=str(ROOT))
    for host in inventory:
        settings = settings_from_host(host)
        assert (settings.ups_mode, settings.ups_driver) == ("standalone", "dummy-ups"), host.name


def test_hardening_lynis_asked_for_is_in_place(deployed: Deployed) -> None:
    sshd = deployed.root("sshd -T").stdout
    assert "clientalivecountmax 2" in sshd and "tcpkeepalive no" in sshd
    assert "noexec" in deployed.root("findmnt -no OPTIONS /dev/shm").stdout
    assembler = deployed.root("stat -c %a $(readlink -f /usr/bin/as)").stdout.strip()
    assert assembler == "750"
    login = deployed.root("bash -lc 'echo $TMOUT; ulimit -c'").stdout.split()
    assert login == ["900", "0"]
    assert deployed.root("systemctl is-enabled chkrootkit.timer").stdout.strip() == "enabled"
    # AIDE's baseline is built in the background after the first deploy.
    deadline = time.monotonic() + 300
    while deployed.root(f"test -s {AIDE_DATABASE}", check=False).returncode:
        assert time.monotonic() < deadline, deployed.root(
            "systemctl status prep-aide-init --no-pager", check=False
        ).stdout
        time.sleep(5)
    assert deployed.root("grep ^Checksums /etc/aide/aide.conf").stdout == "Checksums = sha512\n"
