"""The IEC's public list of difusores (clause I.7), rendered and published.

Each active difusor's logo links to its portal; a disabled one is shown
without a link and with the notice of clause III; pending difusores are not
listed. The page states the date and time of the newest cut a difusor confirmed
(``strikes`` re-renders it once per period when that changes). Files: ``index.html``
(Jinja2 template), ``difusores.json`` (the same data for the IEC's site) and
``logos/<id>.<ext>`` copied from the registry.

Publishing writes every file atomically, logos and JSON first and the page
last, so the page never points at a logo not yet there; to a local directory
(``write_atomic``: rename over the old file) and/or an S3 bucket, each object
with its content type and cache lifetime.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from prep_iac.hostside.activate import write_atomic
from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate.store import Action, DifusorState, Store

TEMPLATES = Environment(
    loader=PackageLoader("prep_iac.orchestrate", "templates/iec_list"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html.j2"]),
)
NOTICE = (
    "Se interrumpió la transmisión de resultados a este difusor conforme a la base III de la"
    " convocatoria; su portal puede no mostrar el último corte del PREP."
)


class ListSettings(BaseModel):
    """How the list looks and how long browsers and CDNs may keep it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "Difusores oficiales del PREP"
    notice: str = NOTICE
    page_max_age_s: int = Field(default=60, ge=0, description="index.html and JSON.")
    logo_max_age_s: int = Field(default=3600, ge=0)


class S3Target(BaseModel):
    """Where the IEC's site serves the list from (any S3-compatible service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3)
    prefix: str = Field(default="", description="Key prefix, e.g. 'prep/difusores/'.")
    region: str = "us-east-1"
    endpoint_url: HttpUrl | None = None


@dataclass(frozen=True)
class ListFile:
    name: str
    data: bytes
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class RenderedList:
    files: list[ListFile]  # in publishing order: the page last
    missing_logos: list[str]


def render(
    registry: Registry, registry_dir: Path, states: list[DifusorState], election: Election,
    latest_cut: tuple[str, datetime] | None, now: datetime, settings: ListSettings | None = None,
) -> RenderedList:  # fmt: skip
    """The list's files from the registry and the live states in the store."""
    settings = settings or ListSettings()
    status = {s.difusor: s.status for s in states}
    page_cache = f"public, max-age={settings.page_max_age_s}"
    logos: list[ListFile] = []
    missing: list[str] = []
    entries: list[dict[str, Any]] = []
    for difusor in registry.difusores:
        state = status.get(difusor.id, difusor.status)
        if state is DifusorStatus.PENDING:
            continue
        source = registry_dir / difusor.logo
        logo = None
        if source.is_file():
            logo = f"logos/{difusor.id}{source.suffix.lower()}"
            kind = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
            cache = f"public, max-age={settings.logo_max_age_s}"
            logos.append(ListFile(logo, source.read_bytes(), kind, cache))
        else:
            missing.append(f"{difusor.id}: {source}")
        disabled = state is DifusorStatus.DISABLED
        entries.append(
            {
                "id": difusor.id,
                "legal_name": difusor.legal_name,
                "portal_url": None if disabled else str(difusor.portal_url),
                "logo": logo,
                "state": state.value,
                "disabled": disabled,
                "notice": settings.notice if disabled else None,
            }
        )
    cut = None
    if latest_cut is not None:
        local = latest_cut[1].astimezone(election.tz)
        offset = f"{local:%z}"
        cut = {
            "id": latest_cut[0],
            "time": local.isoformat(),
            "local": f"{local:%d/%m/%Y %H:%M}",
            "zone": f"hora local, UTC{offset[:3]}:{offset[3:]}",
        }
    generated = now.astimezone(election.tz)
    page = TEMPLATES.get_template("index.html.j2").render(
        title=settings.title, election=election, difusores=entries, cut=cut,
        notice=settings.notice, refresh_s=max(settings.page_max_age_s, 30),
        generated_local=f"{generated:%d/%m/%Y %H:%M}",
    )  # fmt: skip
    data = {
        "election": election.id,
        "generated_at": generated.isoformat(),
        "latest_cut": None if cut is None else {"id": cut["id"], "time": cut["time"]},
        "difusores": [{k: v for k, v in e.items() if k != "disabled"} for e in entries],
    }
    files = [
        *logos,
        ListFile(
            "difusores.json",
            json.dumps(data, ensure_ascii=False, indent=2).encode() + b"\n",
            "application/json; charset=utf-8",
            page_cache,
        ),
        ListFile("index.html", page.encode(), "text/html; charset=utf-8", page_cache),
    ]
    return RenderedList(files, missing)


def publish_local(rendered: RenderedList, directory: Path) -> list[Path]:
    """Write the files under ``directory``, each replaced atomically, the page last."""
    written = []
    for item in rendered.files:
        path = directory / item.name
        write_atomic(path, item.data)
        written.append(path)
    return written


def publish_s3(rendered: RenderedList, target: S3Target, client: Any = None) -> list[str]:
    """Upload the files to ``target``, the page last; return the keys written.

    Credentials come from boto3's usual chain (environment, profile, role).
    """
    if client is None:
        import boto3  # only the S3 path needs it, and it is slow to import

        client = boto3.client(
            "s3",
            region_name=target.region,
            endpoint_url=None if target.endpoint_url is None else str(target.endpoint_url),
        )
    keys = []
    for item in rendered.files:
        key = f"{target.prefix}{item.name}"
        client.put_object(
            Bucket=target.bucket, Key=key, Body=item.data,
            ContentType=item.content_type, CacheControl=item.cache_control,
        )  # fmt: skip
        keys.append(key)
    return keys


@dataclass
class ListPublisher:
    """Render the list from the store and publish it; the outbox's ``render-list`` handler.

    + directory: a local directory to publish to, or None
    + s3: an S3 target to publish to, or None
    """

    store: Store
    registry: Registry
    registry_dir: Path
    election: Election
    clock: Callable[[], datetime]
    directory: Path | None = None
    s3: S3Target | None = None
    settings: ListSettings | None = None

    def publish(self) -> RenderedList:
        rendered = render(
            self.registry, self.registry_dir, self.store.states(), self.election,
            self.store.newest_confirmed(), self.clock(), self.settings,
        )  # fmt: skip
        if self.directory is not None:
            publish_local(rendered, self.directory)
        if self.s3 is not None:
            publish_s3(rendered, self.s3)
        return rendered

    def __call__(self, action: Action) -> None:
        self.publish()
