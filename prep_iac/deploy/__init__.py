"""Provision a difusor host with pyinfra: baseline, SSH, the IEC's SFTP drop, nginx, nftables.

Each module is one concern and exposes ``@deploy`` functions that take a
validated :class:`~prep_iac.deploy.settings.DifusorSettings`; ``deploys/difusor.py``
composes them from group data. Facts and operations pyinfra lacks live in
``facts/`` and ``operations/``; configuration files are Jinja2 templates in
``templates/``.
"""
