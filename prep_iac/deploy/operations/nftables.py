"""An nftables ruleset file, validated with ``nft -c`` and loaded atomically with ``nft -f``."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Generator
from typing import Any

from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files

from prep_iac.deploy.facts.nftables import NftablesRuleset, NftablesSnapshot
from prep_iac.deploy.rendering import render, rendered


@operation()
def ruleset(
    src: str,
    table: str,
    dest: str = "/etc/nftables.conf",
    snapshot: str = "/var/lib/prep-iac/nftables.json",
    keep: tuple[str, ...] = (),
    **data: Any,
) -> Generator[Any, None, None]:
    """
    Load a templated ruleset when the file or the loaded ``table`` differs from it.

    + src: template name under ``prep_iac/deploy/templates``
    + table: the table the file owns, as ``"<family> <name>"``
    + dest: remote ruleset file (loaded at boot by the nftables service)
    + snapshot: where the loaded ruleset is saved after each load
    + keep: sets of ``table`` whose elements (bans, with what is left of their
      timeouts) are carried over when the table is replaced
    + data: template variables

    The loaded table is compared, normalised, with the snapshot taken right
    after the last load, so both an edited template and a ruleset changed by
    hand on the host (a flushed table, an extra rule) are put right, while
    runtime state (counters, blocklist entries) is not a change. The candidate
    file is checked with ``nft -c -f`` before it replaces ``dest``; a rejected
    ruleset leaves the running one untouched. The elements of the ``keep`` sets
    are read just before the load and added in the same transaction, so a
    re-deploy during an attack unbans no one.

    **Example:**

    .. code:: python

        ruleset(src="nftables.conf.j2", table="inet prep", admin4=["198.51.100.0/28"])
    """
    content = render(src, **data).encode()
    same_file = host.get_fact(Sha1File, path=dest) == hashlib.sha1(content).hexdigest()  # noqa: S324
    loaded = host.get_fact(NftablesRuleset).get(table)
    saved = host.get_fact(NftablesSnapshot, path=snapshot).get(table)
    if same_file and loaded is not None and loaded == saved:
        host.noop(f"nftables table {table} is loaded from {dest} unchanged")
        return
    candidate = f"{dest}.prep-new"
    yield from files.put._inner(src=rendered(src, **data), dest=candidate, mode="600")
    cand, final, snap = (shlex.quote(p) for p in (candidate, dest, snapshot))
    yield f"nft -c -f {cand}"
    yield f"mv -f {cand} {final}"
    yield _load_keeping(final, table, keep)
    yield f"mkdir -p $(dirname {snap}) && nft -j list ruleset > {snap}"


def _load_keeping(path: str, table: str, keep: tuple[str, ...]) -> str:
    """``nft -f path`` with the current elements of the ``keep`` sets added in the same
    transaction; if they no longer fit the new sets, the file alone (and a warning)."""
    if not keep:
        return f"nft -f {path}"
    # "elements = { 198.18.0.9 expires 59m58s, ... }" becomes "add element <table> <set> {...}":
    # nft takes "expires", so each ban keeps what was left of its timeout. sed keeps the
    # missing final newline that tr left, hence the echo.
    elements = "; ".join(
        f"nft list set {table} {name} 2>/dev/null | tr -d '\\n\\t'"
        f" | sed -n 's/.*elements = {{\\([^}}]*\\)}}.*/add element {table} {name} {{\\1}}/p'; echo"
        for name in keep
    )
    warning = f"prep-iac: the elements of {', '.join(keep)} could not be carried over"
    return f"{{ cat {path}; {elements}; }} | nft -f - || {{ echo '{warning}' >&2; nft -f {path}; }}"
