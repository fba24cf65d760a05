"""Kernel parameters applied where the kernel lets this host change them."""

from __future__ import annotations

import shlex
from collections.abc import Generator, Mapping

from pyinfra.api.operation import operation
from pyinfra.context import host

from prep_iac.deploy.facts.sysctl import KernelParameters


@operation()
def parameters(values: Mapping[str, str | int]) -> Generator[str, None, None]:
    """
    Set kernel parameters now, skipping those this host may not change.

    + values: sysctl key to wanted value

    A container shares the machine's kernel and sees ``/proc/sys`` read-only:
    such keys are reported, not failed; the ``/etc/sysctl.d`` file written
    alongside applies them wherever the host boots its own kernel. Keys this
    kernel does not have are ignored.

    **Example:**

    .. code:: python

        parameters(values={"net.ipv4.tcp_syncookies": 1, "kernel.kptr_restrict": 2})
    """
    current = host.get_fact(KernelParameters, keys=sorted(values))
    read_only = []
    changed = False
    for key, wanted in values.items():
        wanted_text = " ".join(str(wanted).split())
        now = current.get(key)
        if now is None or now.value == wanted_text:
            continue
        if not now.writable:
            read_only.append(key)
            continue
        changed = True
        yield f"sysctl -q -w {shlex.quote(f'{key}={wanted_text}')}"
    if not changed:
        detail = f"; read-only here: {', '.join(read_only)}" if read_only else ""
        host.noop(f"kernel parameters are as wanted{detail}")
