"""The orchestrator's settings file: notifications, the IEC's list, the signing key.

One YAML file, validated as a whole like the registry (every problem named
with its file, line and field). Relative paths are relative to the file.

**Example:**

```yaml
notify:
  smtp: {host: smtp.iec.example.org, port: 587, sender: prep@iec.example.org,
         username: prep, password: "..."}
  operators: [guardia.prep@iec.example.org]
  webhooks: [{url: "https://chat.iec.example.org/hooks/prep"}]
iec_list:
  directory: /var/www/iec/difusores
  s3: {bucket: iec-sitio, prefix: prep/difusores/, region: us-east-1}
signing_key: /etc/prep-iac/signing/iec-prep
# The IEC's own canaries (any SSH target it controls, reached like a difusor):
canaries:
  - {name: canario-iec, node: {host: canario.iec.example.org, host_key: "ssh-ed25519 AAAA..."},
     user: iec, path: /}
# The quorum rule: these share of the judged difusores (and this many) all failing
# with network errors in one period is the IEC's fault, not theirs.
iec_fault: {share: 1.0, minimum: 3}
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prep_iac.models.loading import load_model
from prep_iac.orchestrate.canary import Canary
from prep_iac.orchestrate.iec_list import ListSettings, S3Target
from prep_iac.orchestrate.notify import NotifySettings
from prep_iac.orchestrate.strikes import IecFaultRule


class IecListSettings(ListSettings):
    """Where the IEC's list is published (either or both)."""

    directory: Path | None = None
    s3: S3Target | None = None


class IecFaultSettings(BaseModel):
    """The quorum rule (``strikes.IecFaultRule``): when this share of the judged
    difusores, and at least ``minimum`` of them, fail with network errors in one period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(default=1.0, gt=0, le=1)
    minimum: int = Field(default=3, ge=1)

    @property
    def rule(self) -> IecFaultRule:
        return IecFaultRule(self.share, self.minimum)


class OrchestratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: NotifySettings = Field(default_factory=NotifySettings)
    iec_list: IecListSettings = Field(default_factory=IecListSettings)
    signing_key: Path | None = Field(default=None, description="Signs suspension instructions.")
    instructions_dir: Path = Field(
        default=Path("/var/lib/prep-iac/instructions"),
        description="Signed instructions sent, kept for the record.",
    )
    canaries: list[Canary] = Field(
        default_factory=list,
        description="SSH targets the IEC controls; all of them down makes a period iec-fault.",
    )
    iec_fault: IecFaultSettings = Field(default_factory=IecFaultSettings)


def load_settings(path: Path) -> OrchestratorSettings:
    """Load the settings file; relative paths in it are taken from its directory."""
    settings = load_model(OrchestratorSettings, path)
    base = path.parent

    def anchored(value: Path | None) -> Path | None:
        return None if value is None else base / value

    directory = anchored(settings.iec_list.directory)
    return settings.model_copy(
        update={
            "iec_list": settings.iec_list.model_copy(update={"directory": directory}),
            "signing_key": anchored(settings.signing_key),
            "instructions_dir": base / settings.instructions_dir,
        }
    )
