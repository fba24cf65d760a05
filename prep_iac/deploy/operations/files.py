"""Configuration files that the owning program validates before they replace the old one."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Generator
from typing import Any

from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.files import File, Link, Sha1File
from pyinfra.operations import files

from prep_iac.deploy.rendering import render, rendered


@operation()
def validated_template(
    src: str,
    dest: str,
    validate: str,
    user: str = "root",
    group: str = "root",
    mode: str = "644",
    **data: Any,
) -> Generator[Any, None, None]:
    """
    Render a template, check it with the program that reads it, then move it into place.

    + src: template name under ``prep_iac/deploy/templates``
    + dest: remote path of the file
    + validate: command checking a candidate file, ``{path}`` standing for it
    + user: owner of the file
    + group: group of the file
    + mode: permissions of the file
    + data: template variables

    A file the program rejects never replaces the working one: the candidate is
    uploaded next to ``dest``, validated, and renamed over it only if valid.

    **Example:**

    .. code:: python

        validated_template(
            name="sshd configuration",
            src="sshd_config.j2",
            dest="/etc/ssh/sshd_config",
            validate="sshd -t -f {path}",
            mode="600",
            settings=settings,
        )
    """
    content = render(src, **data).encode()
    if host.get_fact(Sha1File, path=dest) == hashlib.sha1(content).hexdigest():  # noqa: S324
        yield from files.file._inner(path=dest, user=user, group=group, mode=mode)
        return
    candidate = f"{dest}.prep-new"
    yield from files.put._inner(
        src=rendered(src, **data), dest=candidate, user=user, group=group, mode=mode
    )
    yield validate.format(path=shlex.quote(candidate))
    yield f"mv -f {shlex.quote(candidate)} {shlex.quote(dest)}"


@operation()
def initial_symlink(path: str, target: str) -> Generator[str, None, None]:
    """
    Create a symlink only where nothing exists yet; never repoint an existing one.

    + path: remote path of the link
    + target: what a new link points at

    For links that another program switches at run time (``live``): the deploy
    gives them a first target and leaves them alone afterwards.

    **Example:**

    .. code:: python

        initial_symlink(path="/srv/prep/live", target="notice")
    """
    if host.get_fact(File, path=path) is not None or host.get_fact(Link, path=path):
        host.noop(f"{path} exists; its target is not the deploy's to change")
        return
    temporary = f"{path}.prep-new"
    yield f"ln -sfn {shlex.quote(target)} {shlex.quote(temporary)}"
    yield f"mv -T {shlex.quote(temporary)} {shlex.quote(path)}"
