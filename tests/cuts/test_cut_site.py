"""A cut is a complete static site of realistic size, with the atomicity markers."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from prep_iac.cuts import CutInfo

from .helpers import files_of

MB = 1_000_000


def test_every_cut_is_30_to_35_mb_in_thousands_of_files(
    night: list[CutInfo], night_2017: list[CutInfo]
) -> None:
    for cut in [*night, *night_2017]:
        files = files_of(cut.path)
        size = sum(p.stat().st_size for p in files.values())
        assert 30 * MB <= size <= 35 * MB, (cut.id, size)
        assert size == cut.bytes
        assert len(files) == cut.files
        assert 3000 <= len(files) <= 30_000


def test_counted_share_grows_with_cut_time_to_about_95_percent(night: list[CutInfo]) -> None:
    percents = [cut.counted_percent for cut in night]
    assert percents[0] == 0
    assert percents == sorted(percents)
    assert len(set(percents)) == len(percents)
    assert 94 <= percents[-1] <= 97.5, "04:30 is in the 04:00-06:00 plateau"


def test_corte_json_states_id_time_election_and_counted_share(night: list[CutInfo]) -> None:
    cut = night[1]
    corte = json.loads((cut.path / "corte.json").read_text())
    assert corte["corte"] == cut.id == "20180701_2130"
    assert corte["fecha_hora"] == "2018-07-01T21:30:00-05:00"
    assert corte["fecha_hora_etiqueta"] == "01/07/2018 21:30 (UTC-6)"
    assert corte["eleccion"] == "coahuila-2018"
    assert float(corte["porcentaje_actas_contabilizadas"]) == cut.counted_percent
    assert corte["contiendas"]["AYUN"]["descarga"] == "20180701_2130_PREP_AYUN_COAH.zip"


def test_index_html_names_the_cut_and_shows_its_time(night: list[CutInfo]) -> None:
    cut = night[1]
    html = (cut.path / "index.html").read_text()
    assert '<meta name="prep-corte" content="20180701_2130">' in html
    assert re.search(r"Corte de información: <time[^>]*>01/07/2018 21:30 \(UTC-6\)</time>", html)
    assert 'href="20180701_2130_PREP_AYUN_COAH.zip"' in html
    for ref in re.findall(r'(?:src|href)="(assets/[^"]+)"', html):
        assert (cut.path / ref).is_file(), ref


def test_result_json_exists_per_municipality_district_section_and_casilla(
    night: list[CutInfo],
) -> None:
    root = night[0].path / "assets/JSON/AYUN"
    counts = {level: len(list((root / level).iterdir())) for level in ("municipio", "distrito")}
    assert counts == {"municipio": 38, "distrito": 16}
    assert 1500 <= len(list((root / "seccion").iterdir())) <= 1700
    assert 3500 <= len(list((root / "casilla").iterdir())) <= 3700
    assert (root / "entidad.json").is_file()


def test_results_json_start_with_the_cut_their_content_last_changed(
    night: list[CutInfo],
) -> None:
    first, last = night[0], night[-1]
    entity = json.loads((last.path / "assets/JSON/AYUN/entidad.json").read_text())
    assert entity["corte_actualizacion"] == last.id
    assert next(iter(entity)) == "corte_actualizacion"
    stamps = {
        json.loads(p.read_text())["corte_actualizacion"]
        for p in (last.path / "assets/JSON/AYUN/casilla").iterdir()
    }
    assert first.id in stamps, "casillas whose acta never arrived keep the first cut's stamp"
    assert stamps <= {cut.id for cut in night}
    for path in (last.path / "assets/JSON/AYUN/casilla").iterdir():
        data = json.loads(path.read_text())
        if data["corte_actualizacion"] == first.id:
            assert path.read_bytes() == (first.path / path.relative_to(last.path)).read_bytes()


def test_app_shell_is_byte_identical_between_cuts(night: list[CutInfo]) -> None:
    shells = [
        {
            k: p.read_bytes()
            for k, p in files_of(cut.path).items()
            if k.startswith("assets/") and not k.startswith("assets/JSON/")
        }
        for cut in night
    ]
    assert len(shells[0]) > 300
    assert all(shell == shells[0] for shell in shells)


def test_consecutive_cuts_change_some_files_and_leave_most_alone(
    consecutive: list[CutInfo],
) -> None:
    for before, after in itertools.pairwise(consecutive):
        old, new = files_of(before.path), files_of(after.path)
        changed = {k for k in new if k not in old or new[k].read_bytes() != old[k].read_bytes()}
        assert len(changed) == after.changed_files
        assert {"index.html", "corte.json", f"{after.id}_PREP_AYUN_COAH.zip"} <= changed
        assert "assets/JSON/AYUN/entidad.json" in changed
        assert 5 <= len(changed) < 0.1 * len(new)


def test_unchanged_files_are_hard_links_to_the_previous_cut(consecutive: list[CutInfo]) -> None:
    first, second = consecutive[0], consecutive[1]
    unchanged = [
        k
        for k, p in files_of(second.path).items()
        if (first.path / k).is_file() and (first.path / k).read_bytes() == p.read_bytes()
    ]
    assert len(unchanged) == second.linked_files
    for key in unchanged[:200]:
        assert (first.path / key).stat().st_ino == (second.path / key).stat().st_ino


def test_javascript_bundles_are_valid(night: list[CutInfo]) -> None:
    node = shutil.which("node")
    if node is None:
        # .ci/setup installs Debian's nodejs: in CI a missing node is a failure.
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed (.ci/setup installs the nodejs package)")
        pytest.skip("node is not installed")
    for bundle in (night[0].path / "assets/js").iterdir():
        result = subprocess.run(
            [node, "--check", str(bundle)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert bundle.stat().st_size > 0


def test_images_are_valid_svg_and_png(night: list[CutInfo]) -> None:
    img = night[0].path / "assets/img"
    svgs = sorted(img.rglob("*.svg"))
    pngs = sorted(img.rglob("*.png"))
    assert len(svgs) > 50 and len(pngs) > 300
    for svg in svgs[:80]:
        # Our own generated files, not untrusted input.
        assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"  # noqa: S314
    for png in pngs[::40]:
        _check_png(png)


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), path
        chunks[kind] = body
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 2)
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)
    assert b"IEND" in chunks


def test_2017_cut_has_one_zip_and_json_tree_per_contest(night_2017: list[CutInfo]) -> None:
    cut = night_2017[-1]
    for code in ("GOB", "DIP_LOC", "AYUN"):
        assert (cut.path / f"{cut.id}_PREP_{code}_COAH.zip").is_file()
        assert (cut.path / f"assets/JSON/{code}/entidad.json").is_file()
    corte = json.loads((cut.path / "corte.json").read_text())
    assert list(corte["contiendas"]) == ["GOB", "DIP_LOC", "AYUN"]
    assert cut.counted_percent > 90
