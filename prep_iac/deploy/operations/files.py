"""Configuration files that the owning program validates before they replace the old one:
one file with a ``-c``-style flag (``validated_template``), or a set of files that
include one another by absolute path (``validated_files``)."""

from __future__ import annotations

import hashlib
import io
import posixpath
import shlex
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Candidate:
    """One file of a set that a program validates together: template, path and variables."""

    src: str
    dest: str
    data: dict[str, Any] = field(default_factory=dict)
    mode: str = "644"


@dataclass(frozen=True)
class _Directory:
    path: str
    files: list[tuple[str, str]]


@operation()
def validated_files(candidates: Sequence[Candidate], validate: str) -> Generator[Any, None, None]:
    """
    Render a set of config files, check them together in place, then move them in.

    + candidates: the files, each a template rendered to its remote path
    + validate: the command that checks the program's whole configuration

    For programs whose files include one another by absolute path (nginx and
    ModSecurity's rules, fail2ban's jails and filters), where no ``-c`` flag can
    point at one candidate. Each candidate is uploaded next to its path; then
    ``validate`` runs in a private mount namespace in which the candidates sit
    at their final paths (``check-candidates.sh.j2``). Only if it passes are the
    candidates renamed over the running files; a rejected set changes nothing.

    **Example:**

    .. code:: python

        validated_files(
            name="fail2ban jails, checked with fail2ban-client -t",
            candidates=[Candidate("fail2ban-jail.local.j2", "/etc/fail2ban/jail.local", data)],
            validate="fail2ban-client -t",
        )
    """
    contents = [(c, render(c.src, **c.data).encode()) for c in candidates]
    if all(
        host.get_fact(Sha1File, path=c.dest) == hashlib.sha1(content).hexdigest()  # noqa: S324
        for c, content in contents
    ):
        for c, _ in contents:
            yield from files.file._inner(path=c.dest, user="root", group="root", mode=c.mode)
        return
    directories: dict[str, list[tuple[str, str]]] = {}
    for c, content in contents:
        candidate = f"{c.dest}.prep-new"
        yield from files.put._inner(
            src=io.BytesIO(content), dest=candidate, user="root", group="root", mode=c.mode
        )
        parent, name = posixpath.split(c.dest)
        directories.setdefault(parent, []).append((shlex.quote(name), shlex.quote(candidate)))
    script = render(
        "check-candidates.sh.j2",
        # Shallower directories first: a deeper one is copied from what covers it.
        directories=[
            _Directory(shlex.quote(path), names)
            for path, names in sorted(directories.items(), key=lambda item: item[0].count("/"))
        ],
        validate=validate,
    )
    yield (
        "scratch=$(mktemp -d) && "
        f'{{ unshare --mount --propagation private sh -c {shlex.quote(script)} sh "$scratch"; '
        'checked=$?; rm -rf "$scratch"; exit $checked; }'
    )
    for c, _ in contents:
        yield f"mv -f {shlex.quote(c.dest + '.prep-new')} {shlex.quote(c.dest)}"


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
