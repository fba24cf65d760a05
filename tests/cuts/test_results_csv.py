"""The results CSV inside each download zip follows PREP-FORMAT.md column by column."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest

from prep_iac.cuts import CutInfo, ResultsFile, read_results_csv
from prep_iac.cuts.columns import truncated_percent

from .helpers import zip_of

# Column lists as /work/shared/PREP-FORMAT.md states them, spelled out here so that
# the tests check the format, not the generator's own constants.
TOTALS = [
    "ACTAS_ESPERADAS",
    "ACTAS_REGISTRADAS",
    "ACTAS_FUERA_CATALOGO",
    "ACTAS_CAPTURADAS",
    "PORCENTAJE_ACTAS_CAPTURADAS",
    "ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_CON_INCONSISTENCIAS",
    "ACTAS_NO_CONTABILIZADAS",
    "LISTA_NOMINAL_ACTAS_CONTABILIZADAS",
    "TOTAL_VOTOS_C_CS",
    "TOTAL_VOTOS_S_CS",
    "PORCENTAJE_PARTICIPACION_CIUDADANA",
]
BEFORE_PARTIES = [
    "CLAVE_CASILLA",
    "CLAVE_ACTA",
    "ID_ENTIDAD",
    "ENTIDAD",
    "ID_DISTRITO_LOCAL",
    "SECCION",
    "ID_CASILLA",
    "TIPO_CASILLA",
    "EXT_CONTIGUA",
    "UBICACION_CASILLA",
    "TIPO_ACTA",
    "TOTAL_BOLETAS_SOBRANTES",
    "TOTAL_PERSONAS_VOTARON",
    "TOTAL_REP_PARTIDO_CI_VOTARON",
    "TOTAL_VOTOS_SACADOS",
]
AFTER_PARTIES = [
    "NO_REGISTRADOS",
    "NULOS",
    "TOTAL_VOTOS_ASENTADO",
    "TOTAL_VOTOS_CALCULADOS",
    "LISTA_NOMINAL",
    "REPRESENTANTES",
    "OBSERVACIONES",
    "CONTABILIZADA",
    "MECANISMOS_TRASLADO",
    "CODIGO_INTEGRIDAD",
    "FECHA_HORA_ACOPIO",
    "FECHA_HORA_CAPTURA",
    "FECHA_HORA_VERIFICACION",
    "ORIGEN",
    "DIGITALIZACION",
    "TIPO_DOCUMENTO",
]
PARTIES = ["PAN", "PRI", "PRD", "PVEM", "PT", "MC", "MORENA"]
CLAVE_CASILLA = re.compile(r"(\d{2})(\d{4})([BCSEMAP])(\d{2})(\d{2})")


@pytest.fixture(scope="module")
def results(night: list[CutInfo]) -> list[ResultsFile]:
    return [read_results_csv(zip_of(cut)) for cut in night]


def test_zip_holds_results_csv_candidacies_catalogue_and_leeme(night: list[CutInfo]) -> None:
    with zipfile.ZipFile(zip_of(night[0])) as archive:
        names = archive.namelist()
        leeme = archive.read("LEEME.txt").decode()
        catalogue = archive.read("COAH_AYUN_2018_CANDIDATURAS.csv").decode().splitlines()
    assert names == ["COAH_AYUN_2018.csv", "COAH_AYUN_2018_CANDIDATURAS.csv", "LEEME.txt"]
    for column in (*TOTALS, *BEFORE_PARTIES, *AFTER_PARTIES, "PAN_PRD_MC"):
        assert column in leeme
    assert catalogue[0].startswith("ID_ENTIDAD,ENTIDAD,ID_MUNICIPIO,MUNICIPIO,PARTIDO_CI")
    assert len(catalogue) == 1 + 38 * 10


def test_preamble_states_contest_and_cut_time_in_utf8(night: list[CutInfo]) -> None:
    with zipfile.ZipFile(zip_of(night[1])) as archive:
        text = archive.read("COAH_AYUN_2018.csv").decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "AYUNTAMIENTOS"
    assert lines[1] == "01/07/2018 21:30 (UTC-6)"
    assert lines[2].split(",") == TOTALS
    header = lines[4].split(",")
    assert header[: len(BEFORE_PARTIES)] == BEFORE_PARTIES
    assert header[-len(AFTER_PARTIES) :] == AFTER_PARTIES


def test_every_stated_column_is_present_in_order(results: list[ResultsFile]) -> None:
    for result in results:
        assert result.totals_columns == TOTALS
        assert result.columns == [*BEFORE_PARTIES, *result.party_columns, *AFTER_PARTIES]
        assert set(PARTIES) <= set(result.party_columns)
        assert any(column.count("_") >= 2 for column in result.party_columns)
        for row in result.rows:
            assert list(row.values) == result.columns


def test_party_columns_come_first_then_coalition_combinations(results: list[ResultsFile]) -> None:
    columns = results[0].party_columns
    first_combination = next(i for i, c in enumerate(columns) if "_" in c)
    assert all("_" not in c for c in columns[:first_combination])
    assert all("_" in c for c in columns[first_combination:])
    assert "PAN_PRD_MC" in columns


def test_every_expected_acta_has_a_row_from_the_first_cut_in_the_same_order(
    results: list[ResultsFile],
) -> None:
    keys = [[row.clave_acta for row in result.rows] for result in results]
    assert all(k == keys[0] for k in keys)
    assert len(set(keys[0])) == len(keys[0]) == results[0].totals.actas_esperadas


def test_clave_casilla_has_11_chars_built_from_the_row_fields(results: list[ResultsFile]) -> None:
    for row in results[0].rows:
        assert len(row.clave_casilla) == 11
        match = CLAVE_CASILLA.fullmatch(row.clave_casilla)
        assert match, row.clave_casilla
        entity, section, kind, number, ext = match.groups()
        assert (int(entity), int(section), kind, int(number), int(ext)) == (
            row.id_entidad,
            row.seccion,
            row.tipo_casilla,
            row.id_casilla,
            row.ext_contigua,
        )
        assert row.clave_acta == row.clave_casilla + row.tipo_acta
        assert re.fullmatch(r"[A-Z]\d{2}", row.tipo_acta)


def test_geography_is_coahuila_sized(results: list[ResultsFile], night: list[CutInfo]) -> None:
    rows = results[0].rows
    sections = {row.seccion for row in rows}
    assert 1500 <= len(sections) <= 1700
    assert 3500 <= len(rows) <= 3700
    assert {row.id_distrito_local for row in rows} == set(range(1, 17))
    assert len(list((night[0].path / "assets/JSON/AYUN/municipio").iterdir())) == 38
    kinds = Counter(row.tipo_casilla for row in rows)
    assert kinds["B"] == len(sections)
    assert kinds["C"] > 1000
    assert kinds["S"] >= 16


def test_unreceived_actas_show_sin_acta_and_na_then_fill_in(results: list[ResultsFile]) -> None:
    first, last = results[0], results[-1]
    assert all(not row.received for row in first.rows)
    for row in first.rows:
        assert row.values["TOTAL_VOTOS_CALCULADOS"] == "SIN ACTA"
        assert row.values["FECHA_HORA_ACOPIO"] == "N/A"
        assert row.values["FECHA_HORA_CAPTURA"] == "N/A"
        assert row.values["FECHA_HORA_VERIFICACION"] == "N/A"
        assert row.contabilizada == 0
        assert set(row.votes.values()) == {None}
    filled = [row for row in last.rows if row.received]
    assert len(filled) > 0.95 * len(last.rows)
    still_missing = [row for row in last.rows if not row.received]
    assert still_missing, "some actas never arrive, as on a real night"


def test_filled_rows_are_coherent(results: list[ResultsFile], night: list[CutInfo]) -> None:
    cut_time = night[-1].time.astimezone(night[-1].time.tzinfo).replace(tzinfo=None)
    for row in results[-1].rows:
        if not row.received:
            continue
        votes = [v for v in row.votes.values() if v is not None]
        assert len(votes) == len(row.votes)
        assert row.total_votos_calculados == sum(votes) + (row.no_registrados or 0) + (
            row.nulos or 0
        )
        assert row.contabilizada in (0, 1, 2)
        assert row.observaciones or row.contabilizada != 0
        assert re.fullmatch(r"[0-9a-f]{64}", row.codigo_integridad)
        assert row.codigo_integridad != hashlib.sha256(b"").hexdigest()
        assert row.origen in ("CASILLA", "CATD")
        assert row.digitalizacion in ("MOVIL", "ESCANER")
        assert row.mecanismos_traslado in ("D", "F", "I", "")
        assert row.fecha_hora_acopio and row.fecha_hora_captura and row.fecha_hora_verificacion
        assert row.fecha_hora_acopio <= row.fecha_hora_captura <= row.fecha_hora_verificacion
        assert row.fecha_hora_verificacion <= cut_time
        assert datetime(2018, 7, 1, 18) <= row.fecha_hora_acopio
        assert re.search(r" \(UTC-6\)$", row.values["FECHA_HORA_VERIFICACION"])


def test_totals_line_is_consistent_with_the_rows(results: list[ResultsFile]) -> None:
    for result in results:
        rows, totals = result.rows, result.totals
        received = [r for r in rows if r.received]
        counted = [r for r in received if r.contabilizada == 1]
        ordinary = [r for r in counted if r.tipo_casilla != "S"]
        assert totals.actas_esperadas == len(rows)
        assert totals.actas_registradas == len(received)
        assert totals.actas_fuera_catalogo == sum(r.contabilizada == 2 for r in received)
        assert totals.actas_capturadas == sum(r.contabilizada != 2 for r in received)
        assert totals.porcentaje_actas_capturadas == Decimal(
            truncated_percent(totals.actas_capturadas, len(rows))
        )
        assert totals.porcentaje_actas_con_inconsistencias == Decimal(
            truncated_percent(sum(r.contabilizada == 0 for r in received), len(rows))
        )
        assert totals.actas_contabilizadas == len(counted)
        assert totals.actas_no_contabilizadas == len(received) - len(counted)
        assert totals.lista_nominal_actas_contabilizadas == sum(
            r.lista_nominal or 0 for r in counted
        )
        votes_all = sum(r.total_votos_calculados or 0 for r in counted)
        votes_ordinary = sum(r.total_votos_calculados or 0 for r in ordinary)
        assert totals.total_votos_c_cs == votes_all
        assert totals.total_votos_s_cs == votes_ordinary
        assert totals.porcentaje_actas_contabilizadas == Decimal(
            truncated_percent(len(counted), len(rows))
        )
        assert totals.porcentaje_participacion_ciudadana == Decimal(
            truncated_percent(votes_ordinary, totals.lista_nominal_actas_contabilizadas)
        )


def test_percentages_carry_four_decimals_truncated_not_rounded() -> None:
    assert truncated_percent(2, 3) == "66.6666"
    assert truncated_percent(1, 3) == "33.3333"
    assert truncated_percent(199_999, 200_000) == "99.9995"
    assert truncated_percent(0, 0) == "0.0000"
    assert truncated_percent(5, 5) == "100.0000"
