"""Fact parsers against real command output captured from hosts, as pyinfra's own tests do.

Each ``<module.Fact>/<case>.json`` holds the fact's arguments (``args``), the command it
must run, the output a real host printed and the fact expected from it.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from prep_iac.deploy.facts.confinement import Confinement, HostConfinement
from prep_iac.deploy.facts.nftables import NftablesRuleset

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.*/*.json"))


def load(case: Path) -> dict[str, Any]:
    return dict(json.loads(case.read_text()))


def as_json(value: Any) -> Any:
    """Tuples (NamedTuple facts) as lists, the way the fixtures store them."""
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fact_parses_real_output(case: Path) -> None:
    module, name = case.parent.name.rsplit(".", 1)
    fact = getattr(import_module(f"prep_iac.deploy.facts.{module}"), name)()
    data = load(case)
    assert str(fact.command(*data["args"])) == data["command"]
    assert as_json(fact.process(data["output"])) == data["fact"]


def test_ruleset_in_use_compares_equal_to_the_freshly_loaded_one() -> None:
    fresh = load(HERE / "nftables.NftablesRuleset" / "difusor-ruleset.json")
    in_use = load(HERE / "nftables.NftablesRuleset" / "difusor-ruleset-in-use.json")
    # Same rules; the blocklist gained an element and the drop counter counted packets.
    assert fresh["output"] != in_use["output"]
    fact = NftablesRuleset()
    assert fact.process(fresh["output"]) == fact.process(in_use["output"])


def test_static_set_elements_are_part_of_the_ruleset() -> None:
    fresh = load(HERE / "nftables.NftablesRuleset" / "difusor-ruleset.json")
    objects = NftablesRuleset().process(fresh["output"])["inet prep"]
    sets = {o["set"]["name"]: o["set"] for o in objects if "set" in o}
    assert sets["admin4"]["elem"] == ["198.19.250.1"]
    assert "elem" not in sets["blocklist4"]
    assert "handle" not in json.dumps(objects)


def test_nspawn_host_neither_accounts_nor_audits_a_privileged_container_accounts_only() -> None:
    fact = HostConfinement()
    nspawn = fact.process(
        load(HERE / "confinement.HostConfinement" / "testbed-nspawn-host.json")["output"]
    )
    docker = fact.process(
        load(HERE / "confinement.HostConfinement" / "docker-with-all-capabilities.json")["output"]
    )
    assert (nspawn.can_account_processes, nspawn.can_audit) == (False, False)
    assert (docker.can_account_processes, docker.can_audit) == (True, False)
    assert Confinement("none", docker.capabilities).can_audit
