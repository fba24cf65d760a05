"""PREP cuts: the deterministic synthetic generator and the reader of real or synthetic cuts.

A cut is a complete static copy of the publication site, written to
``OUT/<cut id>/`` (``20180701_1800``): an app shell that is byte-identical
between cuts (``index.html`` aside), result JSON per entity, municipality,
district, section and casilla under ``assets/JSON/<ELECCION>/``, and one
download zip per contest (``20180701_1800_PREP_AYUN_COAH.zip`` holding
``COAH_AYUN_2018.csv``, the candidacies catalogue and ``LEEME.txt``).

Atomicity contract (what a visitor or a checker may rely on to prove that a
served site never mixes two cuts):

- ``corte.json`` at the root: ``corte`` (cut id), ``fecha_hora`` (ISO 8601
  with the real offset), ``fecha_hora_etiqueta`` (the CSV's
  ``DD/MM/YYYY HH:MM (UTC-6)``), ``eleccion`` (election id),
  ``porcentaje_actas_contabilizadas`` and per-contest figures.
- ``index.html`` carries ``<meta name="prep-corte" content="<cut id>">`` and
  shows the cut date and time visibly, as the calls require.
- Every results JSON starts with ``"corte_actualizacion"``: the id of the cut
  at which that file's content last changed. A file whose content did not
  change keeps the older id and stays byte-identical, so a served JSON is
  consistent with the served ``corte.json`` iff its ``corte_actualizacion`` is
  not later than ``corte``.
- The results CSV's second line states the same cut time as ``corte.json``.

Files of consecutive cuts may be hard links to one inode (``link_unchanged``)
and are never written in place; copy a cut with ``copy_cut`` before tampering
with it.

**Example:**

    from prep_iac.cuts import generate_night, read_cut_time
    infos = generate_night(load_election("coahuila-2018"), Path("/var/tmp/cuts"), cuts=3, seed=7)
    read_cut_time(infos[-1].path).local   # datetime(2018, 7, 1, 18, 20)
"""

from prep_iac.cuts.generator import CutInfo, generate_night, night_times
from prep_iac.cuts.reader import (
    ActaRow,
    CutFormatError,
    CutTime,
    ResultsFile,
    Totals,
    read_cut_time,
    read_results_csv,
)
from prep_iac.cuts.writer import copy_cut

__all__ = [
    "ActaRow",
    "CutFormatError",
    "CutInfo",
    "CutTime",
    "ResultsFile",
    "Totals",
    "copy_cut",
    "generate_night",
    "night_times",
    "read_cut_time",
    "read_results_csv",
]
