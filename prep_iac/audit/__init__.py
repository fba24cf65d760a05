"""The clause-IV verification of a live difusor: ``prep-iac audit``.

- ``controls``  the catalogue (``controls.yaml``: one control per requirement of the
                calls that software can observe, with the clause's own words) and the
                result of checking one: pass, fail, not applicable, not checked, waived.
- ``target``    how the audit reaches a host: the admin's SSH through pytest-testinfra's
                ssh backend, the IEC's SFTP account, HTTP as a visitor.
- ``tools``     third-party auditors folded in as controls (ssh-audit, gixy, Lynis).
- ``checks``    one function per control.
- ``waivers``   accepted exceptions, each with a reason and an expiry date.
- ``report``    the terminal table, JSON, JUnit XML and the Spanish HTML report.

A control that cannot be checked (no access, no tool) says so: it is never a pass.
"""
