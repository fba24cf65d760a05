"""The IEC's list of difusores: rendered from live states, published locally and to S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest

from prep_iac.orchestrate import outbox, strikes
from prep_iac.orchestrate.iec_list import (
    NOTICE,
    ListPublisher,
    RenderedList,
    S3Target,
    publish_local,
    publish_s3,
    render,
)

from .helpers import Night, push_result
from .servers import s3_server

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


class Entries(HTMLParser):
    """Each ``li[data-difusor]`` of the page: its links, images and text."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, dict[str, Any]] = {}
        self.current: dict[str, Any] | None = None
        self.corte = ""
        self._in_corte = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "li" and found.get("data-difusor"):
            self.current = {"links": [], "imgs": [], "text": ""}
            self.entries[str(found["data-difusor"])] = self.current
        elif self.current is not None and tag == "a":
            self.current["links"].append(found.get("href"))
        elif self.current is not None and tag == "img":
            self.current["imgs"].append(found.get("src"))
        self._in_corte = tag == "p" and found.get("class") == "corte"

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self.current = None
        self._in_corte = False

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current["text"] += data
        if self._in_corte:
            self.corte += data


def parse(page: bytes) -> Entries:
    parser = Entries()
    parser.feed(page.decode())
    return parser


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "registro"
    (directory / "logos").mkdir(parents=True)
    (directory / "logos" / "uadec.svg").write_bytes(SVG)
    (directory / "logos" / "vanguardia.png").write_bytes(PNG)
    return directory


def disabled_uadec(night: Night) -> None:
    for index in range(3):
        night.period(index, {"uadec": False, "vanguardia": True})


def rendered(night: Night, registry_dir: Path) -> RenderedList:
    return render(
        night.registry, registry_dir, night.store.states(), night.election,
        night.store.newest_confirmed(), night.start(3),
    )  # fmt: skip


def test_disabled_difusor_is_listed_without_link_and_with_the_notice(
    night: Night, registry_dir: Path
) -> None:
    disabled_uadec(night)
    files = {f.name: f for f in rendered(night, registry_dir).files}
    page = parse(files["index.html"].data)
    uadec, vanguardia = page.entries["uadec"], page.entries["vanguardia"]
    assert uadec["links"] == []
    assert uadec["imgs"] == ["logos/uadec.svg"]
    assert "Se interrumpió la transmisión de resultados a este difusor" in uadec["text"]
    assert vanguardia["links"] == ["https://vanguardia.example.com.mx/prep2018"]
    assert vanguardia["imgs"] == ["logos/vanguardia.png"]
    assert "Se interrumpió" not in vanguardia["text"]
    assert "01/07/2018 18:20 horas (hora local, UTC-05:00)" in page.corte


def test_list_json_carries_the_same_states(night: Night, registry_dir: Path) -> None:
    disabled_uadec(night)
    files = {f.name: f for f in rendered(night, registry_dir).files}
    data = json.loads(files["difusores.json"].data)
    assert data["latest_cut"] == {"id": "20180701_1820", "time": "2018-07-01T18:20:00-05:00"}
    by_id = {d["id"]: d for d in data["difusores"]}
    assert by_id["uadec"]["state"] == "disabled"
    assert by_id["uadec"]["portal_url"] is None
    assert by_id["uadec"]["notice"] == NOTICE
    assert by_id["vanguardia"]["portal_url"] == "https://vanguardia.example.com.mx/prep2018"


def test_reinstated_difusor_gets_its_link_back(night: Night, registry_dir: Path) -> None:
    disabled_uadec(night)
    night.open(3)
    at = night.start(3) + timedelta(minutes=1)
    result = push_result(night.registry, "uadec", night.cut(3).cut_id, at, True)
    strikes.reinstate(night.store, night.registry, night.start(3), result, night.cut(3), at, "op")
    page = parse({f.name: f for f in rendered(night, registry_dir).files}["index.html"].data)
    assert page.entries["uadec"]["links"] == ["https://www.example.edu.mx/prep"]


def test_missing_logo_shows_the_name_as_the_link(night: Night, tmp_path: Path) -> None:
    night.period(0, {"uadec": True, "vanguardia": True})
    result = render(
        night.registry, tmp_path, night.store.states(), night.election, None, night.start(1)
    )
    assert [m.split(":")[0] for m in result.missing_logos] == ["uadec", "vanguardia"]
    page = parse(result.files[-1].data)
    assert page.entries["uadec"]["imgs"] == []
    assert "Universidad Autónoma de Coahuila" in page.entries["uadec"]["text"]
    assert "Aún no se publica el primer corte" in page.corte


def test_local_publish_replaces_files_atomically(
    night: Night, registry_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sitio"
    publish_local(rendered(night, registry_dir), out)
    before = (out / "index.html").stat().st_ino
    disabled_uadec(night)
    publish_local(rendered(night, registry_dir), out)
    assert (out / "index.html").stat().st_ino != before  # a new file renamed over the old one
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "difusores.json", "index.html", "uadec.svg", "vanguardia.png",
    ]  # fmt: skip
    assert "inhabilitado" in (out / "index.html").read_text()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto accepts any credentials; these keep boto3 from looking for real ones.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_s3_publish_sets_content_types_and_cache_headers(
    night: Night, registry_dir: Path, s3_endpoint: str, aws: None
) -> None:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="iec-sitio")
    disabled_uadec(night)
    target = S3Target(bucket="iec-sitio", prefix="prep/difusores/", endpoint_url=s3_endpoint)
    keys = publish_s3(rendered(night, registry_dir), target)
    assert keys[-1] == "prep/difusores/index.html"
    heads = {k: client.head_object(Bucket="iec-sitio", Key=k) for k in keys}
    assert heads["prep/difusores/index.html"]["ContentType"] == "text/html; charset=utf-8"
    assert heads["prep/difusores/index.html"]["CacheControl"] == "public, max-age=60"
    assert (
        heads["prep/difusores/difusores.json"]["ContentType"] == "application/json; charset=utf-8"
    )
    assert heads["prep/difusores/logos/uadec.svg"]["ContentType"] == "image/svg+xml"
    assert heads["prep/difusores/logos/vanguardia.png"]["ContentType"] == "image/png"
    assert heads["prep/difusores/logos/uadec.svg"]["CacheControl"] == "public, max-age=3600"
    body = client.get_object(Bucket="iec-sitio", Key="prep/difusores/index.html")["Body"].read()
    assert parse(body).entries["uadec"]["links"] == []


def test_render_list_action_publishes_to_every_target(
    night: Night, registry_dir: Path, s3_endpoint: str, aws: None, tmp_path: Path
) -> None:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="iec-accion")
    disabled_uadec(night)
    publisher = ListPublisher(
        night.store, night.registry, registry_dir, night.election, lambda: night.start(3),
        directory=tmp_path / "sitio", s3=S3Target(bucket="iec-accion", endpoint_url=s3_endpoint),
    )  # fmt: skip
    outcomes = outbox.perform_pending(
        night.store, {"render-list": publisher}, lambda: night.start(3)
    )
    # one per period: each confirmed a newer cut (the third also disabled uadec)
    assert [o.action.kind for o in outcomes] == ["render-list"] * 3
    assert all(o.ok for o in outcomes)
    assert "inhabilitado" in (tmp_path / "sitio" / "index.html").read_text()
    body = client.get_object(Bucket="iec-accion", Key="index.html")["Body"].read()
    assert parse(body).entries["uadec"]["links"] == []
    # the notices and the suspension are another runner's: still pending
    assert sorted(a.kind for a in night.store.pending_actions()) == ["notify"] * 4 + ["suspend"]


def test_list_shows_each_newer_confirmed_cut_without_any_state_change(
    night: Night, registry_dir: Path, s3_endpoint: str, aws: None, tmp_path: Path
) -> None:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="iec-corte")
    publisher = ListPublisher(
        night.store, night.registry, registry_dir, night.election, lambda: night.start(3),
        directory=tmp_path / "sitio", s3=S3Target(bucket="iec-corte", endpoint_url=s3_endpoint),
    )  # fmt: skip

    def published() -> tuple[str, str]:
        local = parse((tmp_path / "sitio" / "index.html").read_bytes()).corte
        body = client.get_object(Bucket="iec-corte", Key="index.html")["Body"].read()
        return local, parse(body).corte

    everyone = {"uadec": True, "vanguardia": True}
    for index, shown in ((0, "18:00"), (1, "18:10")):
        actions = night.period(index, everyone)
        assert [a.kind for a in actions] == ["render-list"]
        outbox.perform_pending(night.store, {"render-list": publisher}, lambda: night.start(3))
        local, remote = published()
        assert f"01/07/2018 {shown} horas" in local
        assert f"01/07/2018 {shown} horas" in remote
    assert {s.status.value for s in night.store.states()} == {"active"}
    assert night.store.events(kinds=("disabled", "manual-disable", "reinstated")) == []
    # The PREP produced no newer cut: nothing new to announce, no render.
    night.open(2, cut_index=1)
    assert night.close(2) == []
