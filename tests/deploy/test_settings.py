"""Settings validation: every bad group-data value is named with its file and key."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from prep_iac.deploy.settings import DifusorSettings, settings_from_host
from prep_iac.models import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def load(tree: Path, inventory: str = "inventories/example.py") -> DifusorSettings:
    """Settings of the first host of ``inventory`` as ``pyinfra`` run in ``tree`` builds them."""
    with ctx_state.use(State()):
        hosts = make_inventory(str(tree / inventory), cwd=str(tree))
    return settings_from_host(next(iter(hosts)))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's group data and example inventory to edit."""
    shutil.copytree(ROOT / "group_data", tmp_path / "group_data")
    shutil.copytree(ROOT / "inventories", tmp_path / "inventories")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(tree: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tree)
    return [str(p) for p in info.value.problems]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_example_inventory_is_valid_with_the_group_defaults(tree: Path) -> None:
    settings = load(tree)
    assert settings.sftp_user == "iec"
    assert settings.journald_retention_days >= 30
    assert settings.tls
    assert [str(n) for n in settings.ssh_sources] == ["203.0.113.0/26", "198.51.100.0/28"]


def test_bad_network_in_group_data_names_file_index_value_and_expectation(tree: Path) -> None:
    append(tree / "group_data" / "difusores.py", 'iec_sources = ["198.51.100.0/28", "300.1.1.1/8"]')
    inventory = tree / "inventories" / "example.py"
    edit(inventory, '"iec_sources": ["198.51.100.0/28"],', "")
    [problem] = problems(tree)
    assert problem.startswith(
        "group_data/difusores.py: iec_sources[1]: got '300.1.1.1/8'; expected an IPv4/IPv6 network"
    )


def test_network_with_host_bits_is_refused(tree: Path) -> None:
    edit(tree / "inventories" / "example.py", "198.51.100.0/28", "198.51.100.7/28")
    [problem] = problems(tree)
    assert problem.startswith("inventory group 'difusores': iec_sources[0]: got '198.51.100.7/28'")
    assert "must be zero" in problem


def test_retention_below_thirty_days_names_all_py(tree: Path) -> None:
    edit(
        tree / "group_data" / "all.py",
        "journald_retention_days = 90",
        "journald_retention_days = 7",
    )
    [problem] = problems(tree)
    assert problem == (
        "group_data/all.py: journald_retention_days: got 7; expected greater than or equal to 30"
    )


def test_missing_required_key_says_no_file_sets_it(tree: Path) -> None:
    edit(tree / "inventories" / "example.py", '"difusor_name": "Universidad Ejemplo",', "")
    [problem] = problems(tree)
    assert problem == (
        "group data (no file sets it): difusor_name: got nothing (missing); expected Field required"
    )


def test_short_rsa_key_is_refused_and_long_one_accepted(tree: Path) -> None:
    keys = {}
    for bits in (2048, 3072):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "rsa", "-b", str(bits), "-N", "", "-f", f"k{bits}"],
            check=True,
            cwd=tree,
        )
        keys[bits] = (tree / f"k{bits}.pub").read_text().strip()
    inventory = tree / "inventories" / "example.py"
    text = inventory.read_text()
    inventory.write_text(text.replace('f"{PLACEHOLDER_KEY} iec-prep-2018"', repr(keys[2048])))
    [problem] = problems(tree)
    assert problem.startswith("inventory group 'difusores': iec_keys[0]: got 'ssh-rsa AAAA")
    assert "RSA of at least 3072 bits" in problem
    # pyinfra caches inventory code by file name: the accepted variant is a new file.
    accepted = inventory.with_name("example_rsa.py")
    accepted.write_text(text.replace('f"{PLACEHOLDER_KEY} iec-prep-2018"', repr(keys[3072])))
    assert load(tree, "inventories/example_rsa.py").iec_keys[0].startswith("ssh-rsa ")


def test_frame_ancestor_must_be_an_origin(tree: Path) -> None:
    edit(
        tree / "inventories" / "example.py",
        '"https://www.difusor.example"',
        '"www.difusor.example/x"',
    )
    [problem] = problems(tree)
    assert problem.startswith(
        "inventory group 'difusores': frame_ancestors[1]: got 'www.difusor.example/x'; "
        "expected a CSP source such as 'https://www.example.org'"
    )


def test_cross_field_problems_are_all_reported_with_their_sources(tree: Path) -> None:
    inventory = tree / "inventories" / "example.py"
    edit(inventory, '"tls_key": "/etc/ssl/prep/privkey.pem",', "")
    edit(
        inventory,
        '"ha_peers": ["203.0.113.11"]}',
        '"ha_peers": ["203.0.113.11"], "sftp_user": "root"}',
    )
    assert problems(tree) == [
        "group data (no file sets it): tls_key: got None; "
        "expected set together with the other TLS path",
        "inventory host 'prep1.difusor.example': sftp_user: got 'root'; "
        "expected a user other than admin_user 'root'",
    ]


def test_pyinfra_stops_before_touching_a_host_and_prints_the_problem(tree: Path) -> None:
    append(tree / "group_data" / "difusores.py", 'iec_sources = ["198.51.100.0/28", "300.1.1.1/8"]')
    inventory = tree / "inventories" / "local.py"
    inventory.write_text(
        (tree / "inventories" / "example.py")
        .read_text()
        .replace('"iec_sources": ["198.51.100.0/28"],', "")
        .replace('("prep1.difusor.example", {', '("@local", {')
        .replace('        ("prep2.difusor.example", {"ssh_hostname": "203.0.113.11", '
                 '"ha_peers": ["203.0.113.10"]}),\n', "")
    )  # fmt: skip
    assert "prep2" not in inventory.read_text()  # @local only: nothing is contacted
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", str(inventory),
         str(ROOT / "deploys" / "difusor.py")],
        cwd=tree, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "group_data/difusores.py: iec_sources[1]: got '300.1.1.1/8'" in output


def test_upload_area_smaller_than_a_first_push_is_refused_naming_the_file(tree: Path) -> None:
    edit(tree / "group_data" / "difusores.py", "upload_area_mib = 256", "upload_area_mib = 16")
    [problem] = problems(tree)
    assert problem == (
        "group_data/difusores.py: upload_area_mib: got 16; expected greater than or equal to 64"
    )
