"""The memoria as the difusor hands it in: HTML that renders every chart in Debian's
headless Chromium, a PDF whose pages pdftoppm renders, the figures, the incidents and
the bitácoras with sums that ``sha256sum -c`` accepts."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import cast

import pytest
from PIL import Image

from prep_iac.memoria.report import MemoriaResult

from .conftest import Traffic

SECTIONS = (
    "Definiciones", "Resumen del periodo electoral", "Curvas de la elección",
    "Comparación con los días normales", "Páginas, consultas y portales de referencia",
    "Bots, bloqueos y ataques", "Informe de incidencias", "Bitácoras",
)  # fmt: skip
CHARTS = 7  # status classes, three hourly curves, 10-minute curve, ratios, hour profile


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (bash .ci/setup installs it)")
    return found


def output(result: MemoriaResult, name: str) -> Path:
    return next(p for p in result.outputs if p.name == name)


def screenshot(html: Path, png: Path, profile: Path) -> Image.Image:
    subprocess.run(
        [tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--window-size=1100,7000",
         "--hide-scrollbars", f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return Image.open(png).convert("RGB")


def share_of(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    """The share of pixels within ``tolerance`` of ``colour`` (a series colour of the charts)."""
    counts = cast(list[tuple[int, tuple[int, int, int]]], image.getcolors(1 << 24) or [])
    near = sum(
        count for count, pixel in counts
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))
    )  # fmt: skip
    return near / (image.width * image.height)


def test_html_is_self_contained_and_chromium_renders_every_chart(
    built: MemoriaResult, tmp_path: Path
) -> None:
    html_path = output(built, "memoria.html")
    html = html_path.read_text()
    assert html.count("<svg") == CHARTS
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "<link" not in html and "<script" not in html
    image = screenshot(html_path, tmp_path / "memoria.png", tmp_path / "profile")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the page rendered blank or as flat blocks"
    # The charts' second and third series colours (orange, green) appear only in charts:
    # the lines and bars were drawn, not just the page around them.
    assert share_of(image, (0xD9, 0x82, 0x2B)) > 0.0005
    assert share_of(image, (0x3A, 0x9A, 0x5B)) > 0.00003


def test_pdf_pages_render_and_each_section_starts_a_page(
    built: MemoriaResult, tmp_path: Path
) -> None:
    pdf = output(built, "memoria.pdf")
    info = subprocess.run([tool("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    assert pages >= len(SECTIONS) - 1  # "Definiciones" shares the cover page
    subprocess.run([tool("pdftoppm"), "-r", "30", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)  # fmt: skip
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages
    for page in rendered:
        grey = Image.open(page).convert("L")
        colours = cast(list[tuple[int, int]], grey.getcolors(1 << 16) or [])
        dark = sum(count for count, level in colours if level < 128)
        assert dark > 100, f"{page.name} is blank"
    first_page: dict[str, int] = {}
    for number in range(1, pages + 1):
        text = subprocess.run(
            [tool("pdftotext"), "-f", str(number), "-l", str(number), str(pdf), "-"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        for title in SECTIONS:
            if title in text:
                first_page.setdefault(title, number)
    assert list(first_page) == list(SECTIONS)
    starts = [first_page[t] for t in SECTIONS[1:]]
    assert starts == sorted(set(starts)), "two sections share a page or are out of order"


def test_figures_compare_the_election_with_the_normal_days_average(built: MemoriaResult) -> None:
    figures = built.figures
    assert [d.day.isoformat() for d in figures.normal_days] == [
        "2018-06-10",
        "2018-06-17",
        "2018-06-24",
    ]
    hits = next(r for r in figures.ratios if r.metric == "hits")
    average = sum(d.hits for d in figures.normal_days) / 3
    assert hits.normal_per_day == pytest.approx(average, abs=0.05)
    election_day = next(d for d in figures.days if d.day.isoformat() == "2018-07-01")
    assert hits.ratio["2018-07-01"] == pytest.approx(election_day.hits / average, abs=0.005)
    assert (hits.ratio["2018-07-01"] or 0) > 2  # the election night outdraws an ordinary day
    rush = sum(b.hits for b in figures.by_hour if b.start.day == 1 and 20 <= b.start.hour < 24)
    morning = sum(b.hits for b in figures.by_hour if b.start.day == 1 and 6 <= b.start.hour < 10)
    assert rush > 10 * morning
    assert len(figures.by_ten_minutes) == 2 * 144 and len(figures.by_hour) == 48
    assert figures.top_referrers and all(
        "difusor.example" not in r.label for r in figures.top_referrers
    )
    assert figures.top_pages[0].label == "/"
    assert all(not p.label.endswith(".json") for p in figures.top_pages)


def test_figures_json_and_csv_carry_the_same_numbers(built: MemoriaResult) -> None:
    document = json.loads(output(built, "cifras.json").read_text())
    with output(built, "dias.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["day"], int(r["hits"]), int(r["visitors"])) for r in rows] == [
        (d["day"], d["hits"], d["visitors"]) for d in document["figures"]["days"]
    ]
    assert document["skipped_lines"] == 0 and document["problems"] == []


def test_incident_report_has_the_notice_periods_rejections_bans_power_storage_and_iec_events(
    built: MemoriaResult,
) -> None:
    document = json.loads(output(built, "cifras.json").read_text())
    notices = [i for i in document["incidents"] if i["what"].startswith("aviso")]
    # The watchdog's notice at 22:31 local, lifted by the next activation at 22:52:10.
    assert [(n["start"], n["end"]) for n in notices] == [
        ("2018-07-01T22:31:00", "2018-07-01T22:52:10")
    ]
    assert any("hash-mismatch" in i["cause"] for i in document["incidents"])
    html = output(built, "memoria.html").read_text()
    for text in ("nginx-limit-req 201.7.7.7 3600s", "ONBATT", "DegradedArray", "PREP SYN flood",
                 "vrrp-MASTER"):  # fmt: skip
        assert text in html
    # The IEC's CSV (prep-iac events on a real store): uadec's strikes and disablement.
    assert html.count("periodo fallido (strike)") == 3
    assert "deshabilitado por el IEC" in html


def test_bitacoras_hold_every_log_byte_for_byte_with_checkable_sums(
    built: MemoriaResult, traffic: Traffic, host_logs: list[Path], tmp_path: Path
) -> None:
    archive = output(built, "bitacoras.tar")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "bitacoras"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    for original in [traffic.json_log, *host_logs]:
        copy = folder / original.parent.name / original.name
        assert copy.read_bytes() == original.read_bytes()
    side = output(built, "bitacoras.tar.sha256").read_text().split()
    sums = subprocess.run(["sha256sum", str(archive)], capture_output=True, text=True, check=True)
    assert side[0] == sums.stdout.split()[0]
