"""The IEC's report of the night (``prep-iac informe``), from the orchestrator's store.

- ``night``   per difusor and period: verdicts, availability, strikes, disablement and
              reinstatement, propagation delay (p50/p95/max)
- ``report``  the Spanish HTML with inline charts and its JSON; ``write_night_reports``
              also writes each difusor's memoria técnica (what the drill calls)
"""

from prep_iac.informe.report import write_informe, write_night_reports

__all__ = ["write_informe", "write_night_reports"]
