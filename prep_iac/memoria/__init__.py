"""The memoria técnica (clause VI): a difusor's report of the election from its own logs.

- ``ingest``     access logs (the deploy's JSON lines, combined; plain or gzip) into DuckDB
- ``figures``    hits, pages, visits, visitors, curves, ratios against normal days
- ``incidents``  the hosts' event, activation and IDS logs, the IEC's incident CSV
- ``charts``     inline SVG charts (also used by the IEC's report of the night)
- ``bitacoras``  the raw logs in one archive with SHA-256 sums
- ``report``     ``build_memoria``: HTML, PDF, figures as JSON/CSV, bitácoras
- ``fetch``      the logs fetched over SSH from an inventory's hosts
- ``synthetic``  seeded election-night traffic in JSON and combined format
"""

from prep_iac.memoria.report import MemoriaRequest, MemoriaResult, build_memoria

__all__ = ["MemoriaRequest", "MemoriaResult", "build_memoria"]
