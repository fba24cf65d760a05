"""The IEC's difusor registry and the host minimums of clause II."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prep_iac.models import (
    ConfigError,
    DifusorStatus,
    HostKey,
    HostRequirements,
    Registry,
    load_model,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "registry-ok.yaml"


def variant(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load(FIXTURE.read_text())
    edit(data)
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_model(Registry, path)
    for p in info.value.problems:
        assert p.source == str(path)
        assert p.line is not None
    return [(p.field, p.expected) for p in info.value.problems]


def test_valid_registry_loads_with_pinned_keys_and_defaults() -> None:
    registry = load_model(Registry, FIXTURE)
    uadec = registry.get("uadec")
    assert [n.port for n in uadec.nodes] == [22, 2222]
    assert uadec.nodes[0].host_key.type == "ssh-ed25519"
    assert registry.get("vanguardia").status is DifusorStatus.ACTIVE
    assert registry.get("vanguardia").sftp_user == "iec"


def test_duplicate_difusor_id_is_named_with_both_places(tmp_path: Path) -> None:
    def dup(data: dict[str, Any]) -> None:
        data["difusores"][1]["id"] = "uadec"

    [(field, expected)] = problems(variant(tmp_path, dup))
    assert field == "difusores[1].id"
    assert "difusores[0]" in expected


def test_two_difusores_cannot_share_a_publication_target(tmp_path: Path) -> None:
    def same_target(data: dict[str, Any]) -> None:
        data["difusores"][1]["nodes"][0]["host"] = "198.18.1.2"

    [(field, expected)] = problems(variant(tmp_path, same_target))
    assert field == "difusores[1].nodes[0]"
    assert "difusores[0]" in expected


def test_sharing_a_host_through_distinct_paths_is_allowed(tmp_path: Path) -> None:
    def shared_host(data: dict[str, Any]) -> None:
        data["difusores"][1]["nodes"][0]["host"] = "198.18.1.2"
        data["difusores"][1]["publication_path"] = "/vanguardia"

    assert len(load_model(Registry, variant(tmp_path, shared_host)).difusores) == 2


def test_repeated_node_within_a_difusor_is_rejected(tmp_path: Path) -> None:
    def repeated(data: dict[str, Any]) -> None:
        nodes = data["difusores"][0]["nodes"]
        nodes[1] = dict(nodes[0])

    [(field, expected)] = problems(variant(tmp_path, repeated))
    assert field == "difusores[0].nodes[1].host"
    assert "nodes[0]" in expected


def test_every_bad_field_is_reported(tmp_path: Path) -> None:
    def many(data: dict[str, Any]) -> None:
        d = data["difusores"][0]
        d["contact"]["email"] = "not-an-email"
        d["nodes"][0]["port"] = 70000
        d["nodes"][1]["host_key"] = "ssh-dss AAAAB3NzaC1kc3M="
        d["portal_url"] = "ftp//nope"
        d["publication_path"] = "/../etc"
        del d["contact"]["phone"]

    found = dict(problems(variant(tmp_path, many)))
    assert set(found) == {
        "difusores[0].contact.email",
        "difusores[0].nodes[0].port",
        "difusores[0].nodes[1].host_key.type",
        "difusores[0].portal_url",
        "difusores[0].publication_path",
        "difusores[0].contact.phone",
    }
    assert "ssh-ed25519" in found["difusores[0].nodes[1].host_key.type"]


def test_missing_field_error_says_missing(tmp_path: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        del data["difusores"][1]["nodes"]

    with pytest.raises(ConfigError) as info:
        load_model(Registry, variant(tmp_path, drop))
    [problem] = info.value.problems
    assert problem.field == "difusores[1].nodes"
    assert problem.value == "nothing (missing)"


def test_unknown_key_is_rejected_not_ignored(tmp_path: Path) -> None:
    def typo(data: dict[str, Any]) -> None:
        data["difusores"][0]["sftp_usr"] = "iec"

    [(field, _)] = problems(variant(tmp_path, typo))
    assert field == "difusores[0].sftp_usr"


def test_host_key_parses_a_public_key_line() -> None:
    key = HostKey.parse(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8n0Qk6kE9oH0t8m3u4bW4yJ0rS9o2m6vC3yXz1qE7p root@h"
    )
    assert str(key).startswith("ssh-ed25519 AAAAC3")
    with pytest.raises(ValueError, match="<type> <base64>"):
        HostKey.parse("garbage")


def test_host_requirements_cite_their_clauses() -> None:
    reqs = {r.name: r for r in HostRequirements().items()}
    assert (reqs["disk_gb"].minimum, reqs["disk_gb"].unit, reqs["disk_gb"].clause) == (
        100,
        "GB",
        "II.c",
    )
    assert (reqs["memory_gb"].minimum, reqs["cpu_cores"].minimum) == (8, 2)
    assert reqs["link_mbps"].clause == "II.b.1"
    assert reqs["transfer_minutes"].clause == "II.b.2"
    assert reqs["web_ids"].clause == "II.d.ii"
    assert reqs["ups_and_generator"].clause == "II.e"
    assert all(
        reqs[k].minimum is True
        for k in ("redundant_disk", "redundant_power_supply", "redundant_nic")
    )
