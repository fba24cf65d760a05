"""Programs that run on the difusor host, with nothing but its Python and OpenSSH.

The deploy installs them; the IEC side imports their shared definitions (the
manifest format, the signature namespace) so both ends agree by construction.
"""

from importlib.resources import files
from pathlib import Path


def activate_script() -> Path:
    """Path of the activation program, for deploys to upload to hosts."""
    return Path(str(files(__package__).joinpath("activate.py")))
