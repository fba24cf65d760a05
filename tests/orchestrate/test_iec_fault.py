"""The IEC's own faults are never a difusor's strike: the quorum rule and the canary."""

from __future__ import annotations

import pytest

from prep_iac.models.difusor import Difusor, Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.notify import Notifier, NotifySettings
from prep_iac.orchestrate.store import Store
from prep_iac.orchestrate.strikes import IecFaultRule

from .helpers import Night
from .servers import Mailbox, smtp_server

IDS = ("uadec", "vanguardia", "milenio", "zocalo")


@pytest.fixture
def four(store: Store, registry: Registry, election: Election) -> Night:
    """A night with four difusores, each on a node of its own."""
    template = registry.get("uadec").model_dump()
    difusores = [
        Difusor.model_validate(
            {**template, "id": ident,
             "nodes": [{**template["nodes"][0], "host": f"198.18.{9 + i}.2"}]}
        )
        for i, ident in enumerate(IDS)
    ]  # fmt: skip
    return Night(store, registry.model_copy(update={"difusores": difusores}), election)


def period(night: Night, index: int, errors: dict[str, str | None]) -> None:
    """Open, push every difusor (None: confirmed; else failed with that error), close."""
    night.open(index)
    for difusor, error in errors.items():
        night.push(difusor, index, error is None, error_class=error or "unreachable")
    night.close(index)


def verdicts(night: Night) -> dict[str, list[str]]:
    return {d: [v.verdict for v in night.store.verdicts(d)] for d in IDS}


def test_every_difusor_unreachable_at_once_is_the_iecs_fault_and_nobody_is_struck(
    four: Night,
) -> None:
    period(four, 0, {"uadec": "unreachable", **dict.fromkeys(IDS[1:])})
    for index in (1, 2, 3, 4):  # the IEC's uplink is down for four periods
        period(four, index, dict.fromkeys(IDS, "unreachable"))
    period(four, 5, dict.fromkeys(IDS))
    assert verdicts(four)["uadec"] == ["failed", *["iec-fault"] * 4, "success"]
    assert verdicts(four)["zocalo"] == ["success", *["iec-fault"] * 4, "success"]
    assert all(four.store.state(d).status.value == "active" for d in IDS)
    # No strike and no reset: uadec's strike from period 0 carried over until its success.
    assert [v.strikes_after for v in four.store.verdicts("uadec")] == [1, 1, 1, 1, 1, 0]
    faults = four.store.events(kinds=("iec-fault",))
    assert [e.period for e in faults] == [four.start(i) for i in (1, 2, 3, 4)]
    assert faults[0].detail["cause"] == "quorum"
    assert four.store.events(kinds=("strike",))[0].period == four.start(0)
    assert len(four.store.events(kinds=("strike",))) == 1


@pytest.mark.parametrize(
    "errors",
    [
        # Two independent failures among four: theirs, not the IEC's.
        {"uadec": "unreachable", "vanguardia": "unreachable", "milenio": None, "zocalo": None},
        # Everyone failed, but one for a reason that no outage of the IEC explains.
        {**dict.fromkeys(IDS[:3], "unreachable"), "zocalo": "host-key-changed"},
        # Everyone failed, each on the host's side.
        dict.fromkeys(IDS, "rejected:bad-signature"),
    ],
)
def test_failures_the_iec_does_not_explain_are_strikes(
    four: Night, errors: dict[str, str | None]
) -> None:
    period(four, 0, errors)
    failed = [d for d, error in errors.items() if error]
    assert {d for d in IDS if verdicts(four)[d] == ["failed"]} == set(failed)
    assert four.store.events(kinds=("iec-fault",)) == []


def test_with_few_difusores_the_quorum_needs_its_minimum(
    store: Store, registry: Registry, election: Election
) -> None:
    night = Night(store, registry, election)  # two difusores: below the minimum of three
    for index in range(3):
        night.period(index, {"uadec": False, "vanguardia": False})
    assert night.store.state("uadec").status.value == "disabled"
    assert night.store.events(kinds=("iec-fault",)) == []


def test_a_configured_share_makes_most_network_failures_the_iecs(four: Night) -> None:
    four.open(0)
    for difusor in IDS:
        four.push(difusor, 0, difusor == "zocalo")
    strikes.close_period(four.store, four.registry, four.election, four.start(0),
                         four.start(1), rule=IecFaultRule(share=0.75))  # fmt: skip
    assert verdicts(four) == {**{d: ["iec-fault"] for d in IDS[:3]}, "zocalo": ["success"]}


def test_a_failed_canary_makes_the_periods_failures_the_iecs(four: Night) -> None:
    four.open(0)
    four.push("uadec", 0, False, error_class="timeout")
    for difusor in IDS[1:]:
        four.push(difusor, 0, True)
    strikes.close_period(four.store, four.registry, four.election, four.start(0),
                         four.start(1), canary_failed="canario: timed out")  # fmt: skip
    assert verdicts(four)["uadec"] == ["iec-fault"]
    assert four.store.state("uadec").strikes == 0
    [fault] = four.store.events(kinds=("iec-fault",))
    assert (fault.detail["cause"], fault.detail["failed"]) == ("canary", ["uadec"])


def test_the_operators_are_told_once_per_iec_fault_period_and_no_contact_is(
    four: Night,
) -> None:
    period(four, 0, dict.fromkeys(IDS, "unreachable"))
    notices = [a for a in four.store.pending_actions() if a.kind == "notify"]
    assert [(a.difusor, a.payload["message"]) for a in notices] == [(None, "iec-fault")]
    assert notices[0].payload["failed"] == list(IDS)


def test_the_iec_fault_notice_reaches_the_operators_only_in_spanish(four: Night) -> None:
    period(four, 0, dict.fromkeys(IDS, "unreachable"))
    [action] = [a for a in four.store.pending_actions() if a.kind == "notify"]
    with smtp_server() as box:
        config = NotifySettings.model_validate(
            {"smtp": {"host": "127.0.0.1", "port": box.port, "starttls": False,
                      "sender": "prep@iec.example.org"},
             "operators": ["guardia@iec.example.org"]}
        )  # fmt: skip
        Notifier(config, four.store, four.registry, four.election, lambda: four.start(1))(action)
        assert [rcpt for rcpt, _ in box.messages] == [["guardia@iec.example.org"]]
        [mail] = box.to("guardia@iec.example.org")
    assert mail["Subject"] == (
        "[PREP COAH 2018] Falla del lado del IEC en el periodo de las 18:00:"
        " sin penalización a los Difusores"
    )
    body = Mailbox.text(mail)
    assert "no suma ni reinicia el conteo" in body
    assert "uadec, vanguardia, milenio, zocalo" in body
