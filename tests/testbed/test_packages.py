"""Hosts install Debian packages through the machine's caching proxy, from
bookworm main, updates, security and backports, without any route out."""

from __future__ import annotations

import pytest

from prep_iac.testbed import Testbed

pytestmark = pytest.mark.testbed

APT = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold"
# Small, without dependencies; only in bookworm-backports (not in main).
BACKPORTS_ONLY = "debian-tag2upload-keyring"


def test_apt_update_reaches_all_four_suites_through_the_proxy(testbed: Testbed) -> None:
    host = testbed.hosts[-1].name
    update = testbed.ssh(host, f"{APT} update")
    assert "Err:" not in update.stdout and "W:" not in update.stderr, update.stdout + update.stderr
    policy = testbed.ssh(host, "apt-cache policy").stdout
    for suite in ("n=bookworm,", "n=bookworm-updates,", "n=bookworm-security,"):
        assert suite in policy
    assert "n=bookworm-backports," in policy
    proxy = testbed.ssh(host, "apt-config dump Acquire::http::Proxy").stdout
    assert str(testbed.settings.proxy_address) in proxy


def test_installs_a_package_from_main_and_one_from_backports(testbed: Testbed) -> None:
    host = testbed.hosts[-1].name
    testbed.ssh(host, f"{APT} update")
    testbed.ssh(host, f"{APT} install hello")
    testbed.ssh(host, f"{APT} install -t bookworm-backports {BACKPORTS_ONLY}")
    assert testbed.ssh(host, "hello").stdout.strip() == "Hello, world!"
    policy = testbed.ssh(host, f"apt-cache policy {BACKPORTS_ONLY}").stdout
    installed = policy.split("***", 1)[1].splitlines()
    assert "bpo12" in installed[0]
    assert "bookworm-backports/main" in installed[1]
    log = (testbed.settings.proxy_log / "apt-cacher.log").read_text()
    assert "hello_" in log and BACKPORTS_ONLY in log


PROBE = """
import urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{"http": "{proxy}"}}))
try:
    opener.open("http://127.0.0.1/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", timeout=10)
except urllib.error.HTTPError as exc:
    print(exc.code, exc.reason)
"""


def test_the_proxy_serves_only_the_debian_archives(testbed: Testbed) -> None:
    # A location that is not a remapped archive (loopback: nothing leaves the machine).
    proxy = f"http://{testbed.settings.proxy_address}:{testbed.settings.proxy_port}"
    out = testbed.ssh(testbed.hosts[-1].name, f"python3 -c '{PROBE.format(proxy=proxy)}'").stdout
    assert out.strip() == "403 Forbidden file type or location"
