"""The base image every host starts from: Debian built once by debootstrap and
cached, keyed by suite, mirror and package list, rebuilt on demand.

Hosts never write to it: each one mounts an overlay over it, so a host always
starts from the pristine image and the image is shared in the page cache.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from prep_iac.testbed import render
from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.settings import TestbedSettings
from prep_iac.testbed.state import all_states, locked
from prep_iac.testbed.system import run

MANIFEST = "image.json"


class ImageManifest(BaseModel):
    """What an image was built from, and when; written last, so it marks a complete build."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    mirror: str
    packages: tuple[str, ...]
    built_at: datetime
    build_seconds: float


def image_key(settings: TestbedSettings, suite: str | None = None) -> str:
    spec = "\n".join([suite or settings.suite, settings.mirror, *sorted(settings.packages)])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def image_dir(settings: TestbedSettings, suite: str | None = None) -> Path:
    suite = suite or settings.suite
    return settings.image_cache / f"{suite}-{image_key(settings, suite)}"


def rootfs(settings: TestbedSettings, suite: str | None = None) -> Path:
    return image_dir(settings, suite) / "rootfs"


def manifest(settings: TestbedSettings, suite: str | None = None) -> ImageManifest | None:
    """The manifest of the cached image, or None if there is no complete one."""
    path = image_dir(settings, suite) / MANIFEST
    if not path.is_file():
        return None
    return ImageManifest.model_validate_json(path.read_text())


def ensure(settings: TestbedSettings, rebuild: bool = False, suite: str | None = None) -> Path:
    """Return the cached image's rootfs for ``suite`` (default: the settings'), building
    it first if missing or if ``rebuild``."""
    suite = suite or settings.suite
    with locked(settings.run_dir / "image.lock"):
        if manifest(settings, suite) is not None and not rebuild:
            return rootfs(settings, suite)
        if rebuild:
            wanted = rootfs(settings, suite)
            users = [
                s.name
                for s in all_states(settings.state_root)
                if s.image == wanted or any(h.image == wanted for h in s.hosts)
            ]
            if users:
                raise TestbedError(
                    f"cannot rebuild the image while testbeds use it: {', '.join(users)} "
                    "(run 'prep-iac testbed down --name NAME' first)"
                )
        _build(settings, suite)
    return rootfs(settings, suite)


def _build(settings: TestbedSettings, suite: str) -> None:
    final = image_dir(settings, suite)
    work = final.with_name(f".build-{final.name}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(settings.packages)}",
            suite,
            str(work / "rootfs"),
            settings.mirror,
        ],
        timeout=1800,
    )
    _customise(work / "rootfs")
    info = ImageManifest(
        suite=suite,
        mirror=settings.mirror,
        packages=settings.packages,
        built_at=datetime.now(UTC),
        build_seconds=round(time.monotonic() - started, 1),
    )
    (work / MANIFEST).write_text(info.model_dump_json(indent=2))
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)


def _customise(root: Path) -> None:
    """Make the image host-neutral: identities are given per host when it is created."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # An empty machine-id makes systemd treat a boot as first boot; each host gets its own.
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("difusor\n")
    # Hosts get their sources (main, updates, security, backports) at creation time.
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    render.write(root / "etc/ssh/sshd_config.d/prep-iac-testbed.conf", "sshd-testbed.conf.j2")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
