"""prep-iac: publish an electoral body's preliminary results through official difusores.

The package layout is the architecture:

- ``models``       pydantic models at every boundary: elections, the difusor registry,
                   the hosts' minimum requirements, and how config files are loaded.
- ``presets``      elections taken from the calls (``coahuila-2017``, ``coahuila-2018``).
- ``cuts``         PREP cuts: the synthetic generator and the reader of real ones.
- ``deploy``       pyinfra ``@deploy`` pieces, facts and operations for difusor hosts.
- ``wire``         the wire formats both ends import (stdlib only): manifest, patch,
                   freshness statement, suspension, status.
- ``hostside``     programs that run on difusor hosts (cut activation, watchdog).
- ``publish``      the IEC side of a push: manifests, signatures, SFTP transfer.
- ``orchestrate``  periods, the three-strike rule, state, notifications, the IEC's list.
- ``audit``        clause IV: ``prep-iac audit`` checks a live difusor clause by clause.
- ``memoria``      the difusor's memoria técnica (clause VI) from its logs; synthetic traffic.
- ``informe``      the IEC's report of the night from the orchestrator's store.
- ``testbed``      real difusor test hosts on one machine (netns + systemd-nspawn).
- ``drill``        the election-night drill on testbed hosts (harness: nothing imports it).
- ``cli``          the ``prep-iac`` command; the library never imports it.
"""

__version__ = "0.1.0"
