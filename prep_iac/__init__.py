"""prep-iac: publish an electoral body's preliminary results through official difusores.

The package layout is the architecture:

- ``models``   pydantic models at every boundary: elections, the difusor registry,
               the hosts' minimum requirements, and how config files are loaded.
- ``presets``  elections taken from the calls (``coahuila-2017``, ``coahuila-2018``).
- ``cuts``     PREP cuts: the synthetic generator and the reader of real ones.
- ``testbed``  real difusor test hosts on one machine (netns + systemd-nspawn).
- ``cli``      the ``prep-iac`` command; the library never imports it.
"""

__version__ = "0.1.0"
