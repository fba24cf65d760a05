"""Check what visitors got while cuts were switched: complete files, one cut per page load.

A page load is what a browser fetches to show results: ``/corte.json``,
``/index.html`` and some results JSONs. It is consistent iff

- every response is complete (its body has the ``Content-Length`` it announced)
  and is, byte for byte, the file of the cut its ``X-PREP-Corte`` header names
  (SHA-256 against that cut's signed manifest): no partly written file, no file
  of another cut served under this one's name;
- every response names the same cut; and by the cuts' own contract (``prep_iac.cuts``)
  ``index.html``'s ``<meta name="prep-corte">`` and ``corte.json``'s ``corte``
  are that cut, and each JSON's ``corte_actualizacion`` is not later than it.

A page load whose requests straddle a switch names two cuts; it is reported as
such (``mixed``), which is exactly what must never happen for the atomic switch
to count as atomic *per page load*: the test asserts there are none beyond the
ones a switch between two requests necessarily causes (see its docstring).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

META = re.compile(rb'<meta name="prep-corte" content="([0-9]{8}_[0-9]{4}b?)"')


@dataclass(frozen=True)
class Response:
    """One HTTP response as the load generator saw it."""

    path: str
    status: int
    corte: str  # the X-PREP-Corte header
    announced: int | None  # Content-Length
    body: bytes


def problems(
    responses: Sequence[Response], manifests: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """What is wrong with one page load; empty when consistent.

    ``manifests`` maps a cut id to its manifest's path -> SHA-256.
    """
    found = []
    cuts = {r.corte for r in responses}
    if len(cuts) != 1:
        found.append(f"mixed: responses from cuts {sorted(cuts)}")
    for r in responses:
        where = f"{r.path} ({r.corte or 'no cut'})"
        if r.status != 200:
            found.append(f"{where}: HTTP {r.status}")
            continue
        if r.announced is not None and r.announced != len(r.body):
            found.append(f"{where}: {len(r.body)} of {r.announced} bytes")
        expected = manifests.get(r.corte, {}).get(r.path.lstrip("/"))
        if expected is None:
            found.append(f"{where}: not in that cut's manifest")
        elif hashlib.sha256(r.body).hexdigest() != expected:
            found.append(f"{where}: content is not that cut's file")
        found.extend(f"{where}: {p}" for p in _stated(r))
    return found


def _stated(r: Response) -> list[str]:
    """Contradictions between a file's own statement of its cut and the header."""
    if r.path.endswith("index.html"):
        match = META.search(r.body)
        stated = match.group(1).decode() if match else None
        return [] if stated == r.corte else [f"page says cut {stated}"]
    try:
        data = json.loads(r.body)
    except ValueError:
        return ["not JSON"]
    if r.path == "/corte.json":
        return [] if data.get("corte") == r.corte else [f"corte.json says {data.get('corte')}"]
    updated = str(data.get("corte_actualizacion", ""))
    return [] if updated and updated <= r.corte else [f"corte_actualizacion {updated!r}"]
