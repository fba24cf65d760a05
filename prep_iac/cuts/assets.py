"""The app shell: HTML/JS/CSS and images that stay byte-identical between cuts.

Everything is generated at run time from the seed and small templates, so the
repository carries no megabytes of binaries. Every asset is a valid file of
its kind: the JS bundles parse, the SVGs are well-formed, the PNGs decode.
Candidate photos (noisy gradients, incompressible like real photos) absorb the
size budget that brings a cut to the call's 30–35 MB.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

import jinja2

from prep_iac.cuts.ballot import Ballot, Race
from prep_iac.cuts.geography import Geography
from prep_iac.cuts.rng import seeded

PHOTO_WIDTH = 120
"""Candidate photos are 120 px wide; the height follows from the size budget."""
VENDOR_MODULES = 2400
"""Modules in the vendor bundle: about 1.5 MB of JavaScript, like a real SPA's libraries."""
MAP_VERTICES = 36
UI_WORDS = (
    "actas", "casilla", "sección", "distrito", "municipio", "votos", "participación",
    "contabilizadas", "esperadas", "coalición", "candidatura", "resultados", "corte",
    "descarga", "base de datos", "lista nominal", "porcentaje", "preliminares",
)  # fmt: skip


@cache
def templates() -> jinja2.Environment:
    """The package's Jinja2 templates; undefined variables are errors, not blanks."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("prep_iac.cuts", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(["html.j2", "svg.j2"]),
    )


def render(template: str, **context: object) -> str:
    return templates().get_template(template).render(**context)


def content_name(stem: str, suffix: str, body: bytes) -> str:
    """``stem.<hash>.suffix``: cache-busting names as bundlers emit them."""
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:10]}.{suffix}"


@dataclass(frozen=True, slots=True)
class Shell:
    """The shell's files and the names ``index.html`` links to."""

    files: dict[str, bytes]
    css: str
    vendor_js: str
    app_js: str

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def build_shell(
    geography: Geography, ballot: Ballot, context: dict[str, object], seed: int
) -> Shell:
    """The shell's code, styles, logos and maps (candidate photos come apart)."""
    rng = seeded("shell", seed)
    files: dict[str, bytes] = {}
    parties = {p.code: {"name": p.name, "color": p.color} for p in ballot.parties}

    css = render("styles.css.j2", parties=ballot.parties, sizes=range(1, 101), **context).encode()
    vendor = render(
        "bundle.js.j2", name="prepVendor", modules=list(_modules(rng)), **context
    ).encode()
    app = render("app.js.j2", parties=parties, **context).encode()
    names = {
        "css": f"assets/css/{content_name('styles', 'css', css)}",
        "vendor_js": f"assets/js/{content_name('vendor', 'js', vendor)}",
        "app_js": f"assets/js/{content_name('app', 'js', app)}",
    }
    files[names["css"]] = css
    files[names["vendor_js"]] = vendor
    files[names["app_js"]] = app
    files["assets/img/logo-iec.svg"] = render("logo.svg.j2", **context).encode()
    for party in ballot.parties:
        files[f"assets/img/partidos/{party.code}.svg"] = render(
            "party.svg.j2",
            code=party.code,
            name=party.name,
            color=party.color,
            font_size=max(10, 26 - 3 * len(party.code)),
        ).encode()
    files.update(_maps(geography, rng))
    return Shell(files=files, **names)


def candidate_photos(
    ballot: Ballot, races: Mapping[str, tuple[Race, ...]], seed: int, budget: int
) -> dict[str, bytes]:
    """A photo per party and race of every contest, together about ``budget`` bytes."""
    rng = seeded("photos", seed)
    photos = [
        (code, race, party.code)
        for code, rs in races.items()
        for race in rs
        for party in ballot.parties
    ]
    height = max(16, (budget // max(1, len(photos))) // (PHOTO_WIDTH * 3 + 1))
    return {
        f"assets/img/candidaturas/{code}/{race.id:03d}-{party}.png": _photo(rng, height, color)
        for (code, race, party), color in zip(photos, _colors(rng), strict=False)
    }


def _modules(rng: random.Random) -> Iterator[dict[str, object]]:
    for index in range(VENDOR_MODULES):
        ident = 10_000 + index * 7
        tag = f"{index:x}"
        yield {
            "id": ident,
            "export": f"x{tag}",
            "fn": f"f{tag}",
            "table": f"t{tag}",
            "labels_var": f"l{tag}",
            "numbers": [rng.randrange(1 << 20) for _ in range(rng.randint(16, 48))],
            "labels": [" ".join(rng.sample(UI_WORDS, 2)) for _ in range(rng.randint(2, 6))],
            "k": rng.randrange(3, 1 << 12),
            "p": rng.choice((65521, 1_000_003, 2_147_483_629)),
            "dep": 10_000 + rng.randrange(index) * 7 if index and rng.random() < 0.5 else None,
        }


def _maps(geography: Geography, rng: random.Random) -> dict[str, bytes]:
    """Entity, municipality and district maps: one star-shaped polygon per section."""
    centres: dict[int, tuple[float, float]] = {}
    columns = math.ceil(math.sqrt(len(geography.sections)))
    for section in geography.sections:
        row, col = divmod(section.number - 1, columns)
        centres[section.number] = (
            col * 20 + 10 + rng.uniform(-3, 3),
            row * 20 + 10 + rng.uniform(-3, 3),
        )
    outlines = {s.number: _polygon(rng, *centres[s.number], radius=9.0) for s in geography.sections}
    size = columns * 20

    def svg(title: str, shapes: list[dict[str, str]]) -> bytes:
        return render("map.svg.j2", title=title, width=size, height=size, shapes=shapes).encode()

    files: dict[str, bytes] = {}
    for m in geography.municipalities:
        shapes = [
            {"id": f"s{n:04d}", "d": outlines[n], "title": f"Sección {n}"} for n in m.sections
        ]
        files[f"assets/img/mapas/municipio-{m.id:03d}.svg"] = svg(m.name, shapes)
    for d in geography.districts:
        shapes = [
            {"id": f"s{n:04d}", "d": outlines[n], "title": f"Sección {n}"} for n in d.sections
        ]
        files[f"assets/img/mapas/distrito-{d.id:02d}.svg"] = svg(f"{d.name} ({d.head})", shapes)
    entity_shapes = [
        {"id": f"m{m.id:03d}", "d": " ".join(outlines[n] for n in m.sections), "title": m.name}
        for m in geography.municipalities
    ]
    files["assets/img/mapas/entidad.svg"] = svg(geography.entity.name, entity_shapes)
    return files


def _polygon(rng: random.Random, x: float, y: float, radius: float) -> str:
    points = []
    for i in range(MAP_VERTICES):
        angle = 2 * math.pi * i / MAP_VERTICES
        r = radius * rng.uniform(0.7, 1.0)
        points.append(f"{x + r * math.cos(angle):.2f},{y + r * math.sin(angle):.2f}")
    return "M" + "L".join(points) + "Z"


def _colors(rng: random.Random) -> Iterator[tuple[int, int, int]]:
    while True:
        yield (rng.randrange(40, 216), rng.randrange(40, 216), rng.randrange(40, 216))


def _photo(rng: random.Random, height: int, color: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG: a vertical gradient from ``color`` with noise in the low bits."""
    rows = []
    for y in range(height):
        shade = y * 96 // height
        pixel = bytes(min(255, c + shade) for c in color)
        rows.append(b"\x00" + pixel * PHOTO_WIDTH)
    base = b"".join(rows)
    noise = rng.randbytes(len(base))
    # Keep the filter byte of each row (0) and the gradient's high bits; noise fills the rest.
    high, low = _masks(height)
    pixels = (int.from_bytes(base) & high) | (int.from_bytes(noise) & low)
    raw = pixels.to_bytes(len(base))
    header = struct.pack(">IIBBBBB", PHOTO_WIDTH, height, 8, 2, 0, 0, 0)
    # Stored (level 0) deflate: the noise would not compress anyway, and sizes stay exact.
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 0))
        + _chunk(b"IEND", b"")
    )


@cache
def _masks(height: int) -> tuple[int, int]:
    row_high = b"\xff" + b"\xf0" * (PHOTO_WIDTH * 3)
    row_low = b"\x00" + b"\x0f" * (PHOTO_WIDTH * 3)
    return int.from_bytes(row_high * height), int.from_bytes(row_low * height)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
