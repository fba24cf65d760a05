"""Reading the cut time and the results of a cut directory, zip or CSV."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from prep_iac.cuts import CutFormatError, CutInfo, read_cut_time, read_results_csv

from .helpers import zip_of


def _extract_csv(cut: CutInfo, dest: Path, contest: str = "AYUN") -> Path:
    name = f"COAH_{contest}_2018.csv"
    with zipfile.ZipFile(zip_of(cut, contest)) as archive:
        (dest / name).write_bytes(archive.read(name))
    return dest / name


def _rewrite_zip(source: Path, dest: Path, edit: dict[str, bytes | None]) -> Path:
    """A copy of ``source`` with members replaced (bytes) or dropped (None)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(dest, "w") as new:
        for info in old.infolist():
            if info.filename not in edit:
                new.writestr(info, old.read(info))
            elif (data := edit[info.filename]) is not None:
                new.writestr(info, data)
    return dest


def test_cut_time_from_directory_zip_and_csv_agree(night: list[CutInfo], tmp_path: Path) -> None:
    cut = night[1]
    csv_path = _extract_csv(cut, tmp_path)
    results = [read_cut_time(p) for p in (cut.path, zip_of(cut), csv_path, str(cut.path))]
    for result in results:
        assert result.local == datetime(2018, 7, 1, 21, 30)
        assert result.offset_label == "UTC-6"
        assert result.cut_id == "20180701_2130"
        assert result.contest == "AYUNTAMIENTOS"
        assert result.contest_code == "AYUN"
    assert "COAH_AYUN_2018.csv" in results[0].source


def test_cut_time_of_every_contest_in_a_2017_cut(night_2017: list[CutInfo]) -> None:
    cut = night_2017[-1]
    assert read_cut_time(cut.path).local == datetime(2017, 6, 5, 3, 0)
    names = {read_cut_time(zip_of(cut, c)).contest for c in ("GOB", "DIP_LOC", "AYUN")}
    assert names == {"GUBERNATURA", "DIPUTACIONES LOCALES", "AYUNTAMIENTOS"}


def test_header_is_found_by_clave_casilla_whatever_the_preamble_length(
    night: list[CutInfo], tmp_path: Path
) -> None:
    original = _extract_csv(night[1], tmp_path)
    lines = original.read_bytes().decode().split("\r\n")
    longer = ["PROCESO ELECTORAL LOCAL 2017-2018", lines[0], "", lines[1], "PREP", *lines[2:]]
    stretched = tmp_path / "COAH_AYUN_2018.csv"
    stretched.write_text("\r\n".join(longer))
    assert read_cut_time(stretched).local == datetime(2018, 7, 1, 21, 30)
    assert read_cut_time(stretched).contest == "PROCESO ELECTORAL LOCAL 2017-2018"
    assert len(read_results_csv(stretched).rows) == len(read_results_csv(zip_of(night[1])).rows)


def test_pipe_separated_latin1_csv_is_read(night: list[CutInfo], tmp_path: Path) -> None:
    text = _extract_csv(night[1], tmp_path).read_bytes().decode()
    piped = tmp_path / "COAH_AYUN_2018.csv"
    piped.write_bytes(text.replace(",", "|").encode("latin-1"))
    result = read_results_csv(piped)
    assert result.cut.local == datetime(2018, 7, 1, 21, 30)
    assert result.totals.actas_esperadas == len(result.rows)
    assert result.rows[0].entidad == "COAHUILA DE ZARAGOZA"


def test_cut_without_a_time_fails_naming_the_file(night: list[CutInfo], tmp_path: Path) -> None:
    cut = night[0]
    with zipfile.ZipFile(zip_of(cut)) as archive:
        lines = archive.read("COAH_AYUN_2018.csv").decode().split("\r\n")
    no_time = "\r\n".join([lines[0], *lines[2:]]).encode()
    broken = _rewrite_zip(zip_of(cut), tmp_path / zip_of(cut).name, {"COAH_AYUN_2018.csv": no_time})

    with pytest.raises(CutFormatError) as caught:
        read_cut_time(broken)

    message = str(caught.value)
    assert f"{broken.name}!COAH_AYUN_2018.csv" in message
    assert "no cut time" in message
    assert "DD/MM/YYYY HH:MM (UTC-6)" in message
    assert isinstance(caught.value, ValueError)


def test_zip_without_results_csv_fails_naming_the_zip(night: list[CutInfo], tmp_path: Path) -> None:
    cut = night[0]
    broken = _rewrite_zip(zip_of(cut), tmp_path / zip_of(cut).name, {"COAH_AYUN_2018.csv": None})
    with pytest.raises(CutFormatError, match=rf"{broken.name}: no results CSV"):
        read_cut_time(broken)


def test_directory_without_download_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html></html>")
    with pytest.raises(CutFormatError, match=rf"{tmp_path}: no download zip"):
        read_cut_time(tmp_path)


def test_csv_without_header_or_preamble_fails_clearly(tmp_path: Path) -> None:
    headerless = tmp_path / "COAH_AYUN_2018.csv"
    headerless.write_text("AYUNTAMIENTOS\r\n01/07/2018 20:00 (UTC-6)\r\n")
    with pytest.raises(CutFormatError, match=r"COAH_AYUN_2018\.csv: no acta header"):
        read_cut_time(headerless)
    bare = tmp_path / "bare.csv"
    bare.write_text("CLAVE_CASILLA,CLAVE_ACTA\r\n")
    with pytest.raises(CutFormatError, match=r"bare\.csv: malformed preamble"):
        read_cut_time(bare)
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("AYUNTAMIENTOS\r\n1 de julio, 8 pm\r\nCLAVE_CASILLA,CLAVE_ACTA\r\n")
    with pytest.raises(CutFormatError, match=r"garbled\.csv: no cut time"):
        read_cut_time(garbled)


def test_cut_mixing_two_cut_times_is_rejected(night_2017: list[CutInfo], tmp_path: Path) -> None:
    first, last = night_2017
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / zip_of(first, "GOB").name).write_bytes(zip_of(first, "GOB").read_bytes())
    (mixed / zip_of(last, "AYUN").name).write_bytes(zip_of(last, "AYUN").read_bytes())
    with pytest.raises(CutFormatError, match="different cut times"):
        read_cut_time(mixed)


def test_cut_level_zip_nesting_one_zip_per_election_is_read(
    night: list[CutInfo], tmp_path: Path
) -> None:
    cut = night[1]
    outer = tmp_path / f"{cut.id}_PREP.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(zip_of(cut), zip_of(cut).name)

    result = read_cut_time(outer)

    assert result.local == datetime(2018, 7, 1, 21, 30)
    assert result.cut_id == cut.id
    assert result.source.endswith(f"{zip_of(cut).name}!COAH_AYUN_2018.csv")
    assert len(read_results_csv(outer).rows) == read_results_csv(outer).totals.actas_esperadas
