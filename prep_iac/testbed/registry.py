"""The testbed as the push orchestrator sees it: a difusor ``Registry`` with one
difusor per host and the host keys pinned as each host presents them."""

from __future__ import annotations

from pathlib import Path

import yaml

from prep_iac.models.difusor import Difusor, HostKey, Node, Registry, TechnicalContact
from prep_iac.testbed.host import HOST_KEY, HostPaths
from prep_iac.testbed.state import HostState, TestbedState


def host_key(paths: HostPaths, host: HostState) -> HostKey:
    """The key the host's sshd serves, read from the host's own /etc/ssh."""
    public = paths.root / f"{HOST_KEY}.pub"
    line = public.read_text() if public.is_file() else (host.host_key or "")
    return HostKey.parse(line)


def build(state: TestbedState, testbed_dir: Path, election: str = "coahuila-2018") -> Registry:
    """A registry with difusor ``difusor-N`` for host ``difusor-N`` of the testbed."""
    difusores = []
    for host in state.hosts:
        key = host_key(HostPaths(testbed_dir, host.name), host)
        difusores.append(
            Difusor(
                id=host.name,
                legal_name=f"Difusor de pruebas {host.index} (testbed {state.name})",
                portal_url=f"http://{host.address}/",
                logo="logos/testbed.svg",
                contact=TechnicalContact(
                    name="Operador del testbed",
                    role="Administración de pruebas",
                    phone="+52 844 000 0000",
                    email=f"{host.name}@testbed.example.org",
                    hours="24 h durante las pruebas",
                ),
                nodes=[Node(host=str(host.address), port=22, host_key=key)],
            )
        )
    return Registry(election=election, difusores=difusores)


def to_yaml(registry: Registry) -> str:
    """The registry as the YAML file an operator would keep (keys as one-line strings)."""
    data = registry.model_dump(mode="json", exclude_defaults=False)
    for difusor in data["difusores"]:
        for node in difusor["nodes"]:
            node["host_key"] = f"{node['host_key']['type']} {node['host_key']['key']}"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
