"""The difusor deploy's settings, validated from pyinfra host data before anything runs.

Group data (``group_data/all.py``, ``group_data/difusores.py``, the inventory)
is plain Python; this model is the boundary where it becomes typed. A wrong
value stops the deploy before it touches a host, with an error naming the
group-data file that set it, the key and what was expected.
"""

from __future__ import annotations

import ast
import base64
import binascii
import ipaddress
import re
import struct
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationError,
    model_validator,
)
from pyinfra.api.exceptions import DeployError

from prep_iac.models.loading import ConfigError, Loc, Problem, fail_fields, problems_from_validation
from prep_iac.wire import DIFUSOR_ID

# Key types sshd accepts for user authentication (``PubkeyAcceptedAlgorithms``
# in templates/sshd_config.j2): Ed25519 and RSA with SHA-2 signatures.
ACCEPTED_KEY_TYPES = ("ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ssh-rsa")
MIN_RSA_BITS = 3072
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
ORIGIN = re.compile(r"^(https?://(\*\.)?[a-z0-9.-]+(:[0-9]{1,5})?|'self'|'none')$")
SIZE = re.compile(r"^[0-9]+[KMG]$")
USER = r"^[a-z_][a-z0-9_-]{0,31}$"

IPNetwork = IPv4Network | IPv6Network


def _network(value: object) -> object:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(
            "an IPv4/IPv6 network such as '198.51.100.0/24' or '2001:db8::/32'"
            " (address bits past the prefix must be zero)"
        ) from None


def _rsa_bits(blob: bytes) -> int:
    """Modulus size of an ``ssh-rsa`` key blob (string type, mpint e, mpint n)."""
    offset = 0
    fields = []
    for _ in range(3):
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        fields.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return int.from_bytes(fields[2], "big").bit_length()


def _public_key(value: str) -> str:
    parts = value.split()
    expected = (
        f"an OpenSSH public key line '<type> <base64> [comment]' of type "
        f"{', '.join(ACCEPTED_KEY_TYPES)} (RSA of at least {MIN_RSA_BITS} bits)"
    )
    if len(parts) < 2 or parts[0] not in ACCEPTED_KEY_TYPES:
        raise ValueError(expected)
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        if blob[4 : 4 + length].decode() != parts[0]:
            raise ValueError(expected)
        if parts[0] == "ssh-rsa" and _rsa_bits(blob) < MIN_RSA_BITS:
            raise ValueError(expected)
    except (binascii.Error, struct.error, UnicodeDecodeError, IndexError):
        raise ValueError(expected) from None
    return " ".join(parts)


def _hostname(value: str) -> str:
    if not HOSTNAME.match(value):
        raise ValueError("a lower-case DNS name such as 'prep.example.org'")
    return value


def _origin(value: str) -> str:
    if not ORIGIN.match(value):
        raise ValueError(
            "a CSP source such as 'https://www.example.org', 'https://*.example.org' or \"'self'\""
        )
    return value


def _absolute(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError("an absolute path on the host without '..'")
    return str(path)


Network = Annotated[IPNetwork, BeforeValidator(_network)]
PublicKey = Annotated[str, AfterValidator(_public_key)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Origin = Annotated[str, AfterValidator(_origin)]
HostPath = Annotated[str, AfterValidator(_absolute)]


class SigningKey(BaseModel):
    """One IEC signing key and when hosts accept its signatures (``allowed_signers``'
    ``valid-after``/``valid-before``, checked by ``ssh-keygen -Y verify`` on the host's clock).

    A plain public-key line is a key valid at any time. Rotating is deploying the
    current key with a ``valid_before`` and the next with a ``valid_after`` before
    it: in the overlap both verify, so the IEC switches keys without a gap.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: PublicKey
    valid_after: AwareDatetime | None = Field(
        default=None, description="Signatures verify from this instant (with its UTC offset)."
    )
    valid_before: AwareDatetime | None = Field(
        default=None, description="Signatures verify until this instant (with its UTC offset)."
    )

    @model_validator(mode="after")
    def _window(self) -> SigningKey:
        if self.valid_after and self.valid_before and self.valid_after >= self.valid_before:
            fail_fields(
                type(self).__name__,
                [(("valid_before",), str(self.valid_before), "an instant after valid_after")],
            )
        return self


def _signing_key(value: object) -> object:
    return {"key": value} if isinstance(value, str) else value


SigningKeyEntry = Annotated[SigningKey, BeforeValidator(_signing_key)]


class DifusorSettings(BaseModel):
    """Everything the difusor deploy needs to know about one host.

    Defaults are not here but in ``group_data/all.py`` and
    ``group_data/difusores.py``, the one visible place an operator reads.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    difusor_id: str = Field(
        pattern=DIFUSOR_ID.pattern,
        description="The difusor's id in the IEC's registry: statements and suspensions name it.",
    )
    difusor_name: str = Field(min_length=1, description="Shown on the suspension notice.")
    server_names: list[Hostname] = Field(min_length=1, description="Publication domains.")
    frame_ancestors: list[Origin] = Field(
        min_length=1, description="Origins allowed to frame the PREP (clause I.6)."
    )

    iec_sources: list[Network] = Field(min_length=1, description="Where the IEC pushes from.")
    iec_keys: list[PublicKey] = Field(
        min_length=1, description="The IEC's SFTP keys; keys not listed are removed (rotation)."
    )
    sftp_user: str = Field(pattern=USER, description="The IEC's SFTP-only account.")
    publication_root: HostPath = Field(description="Chroot of the SFTP account.")

    iec_signing_keys: list[SigningKeyEntry] = Field(
        description="The IEC's cut-signing public keys (not its SSH keys), each a key line or"
        " {key, valid_after, valid_before}; empty activates nothing."
    )
    election: str = Field(min_length=1, description="Election preset or YAML file of the cuts.")
    keep_releases: int = Field(ge=2, description="Releases kept on the host, the live one always.")
    upload_area_mib: int = Field(
        ge=64,
        le=4096,
        description="Size of incoming/, a filesystem of its own: at least a full cut plus margin.",
    )
    publication_max_age_seconds: int | None = Field(
        ge=1,
        description="A new cut's vouch from its activation; None: (strike limit + 1) × period.",
    )

    admin_sources: list[Network] = Field(min_length=1, description="Where admins SSH from.")
    admin_keys: list[PublicKey] = Field(min_length=1, description="Admin (and deployer) keys.")
    admin_user: str = Field(pattern=USER, description="The deployer's login.")

    tls_certificate: HostPath | None = Field(default=None, description="PEM chain on the host.")
    tls_key: HostPath | None = Field(default=None, description="PEM key on the host.")

    http_rate_per_second: int = Field(ge=1, description="nginx limit_req per source.")
    http_burst: int = Field(ge=1, description="Requests above the rate before 429.")
    http_connections_per_source: int = Field(ge=1, description="nginx limit_conn.")
    new_connections_per_second: int = Field(
        ge=1, description="nftables: new TCP connections per source to 80/443."
    )
    max_connections_per_source: int = Field(
        ge=1, description="nftables: concurrent connections per source (ct count)."
    )
    ssh_new_connections_per_minute: int = Field(ge=1)

    journald_retention_days: int = Field(ge=30, description="Memoria técnica: ≥30.")
    journald_max_use: str = Field(pattern=SIZE.pattern)
    access_log_retention_days: int = Field(ge=30)
    ntp_pools: list[Hostname] = Field(min_length=1)
    automatic_reboot: bool = Field(
        description="Unattended upgrades never reboot during an election."
    )

    ups_mode: Literal["none", "standalone", "netclient"] = Field(
        description="How the host hears of power loss (clause II.e)."
    )
    ups_server: str | None = Field(default=None, description="NUT server for 'netclient'.")
    ups_name: str = Field(default="ups", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    ups_driver: str | None = Field(
        default=None, pattern=r"^[a-z0-9_-]+$", description="NUT driver for 'standalone'."
    )
    ups_port: str = Field(default="auto", description="The driver's port (dummy-ups: a file).")
    ups_user: str = Field(default="upsmon", pattern=USER)
    ups_password: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._~+-]{8,64}$", description="upsmon's NUT password."
    )
    ups_shutdown_command: str = Field(
        default="/sbin/shutdown -h +0", min_length=1, description="Run on LOWBATT/FSD."
    )
    ups_dummy_sequence: list[str] = Field(
        default_factory=list, description="dummy-ups lines written to ups_port (test hosts)."
    )
    notify_emails: list[EmailStr] = Field()
    notify_webhook: HttpUrl | None = Field(
        default=None, description="Receives every event line as a JSON POST."
    )
    ids_ban_seconds: int = Field(
        default=3600, ge=60, description="fail2ban bans, as timeouts in the nftables blocklist."
    )
    ids_flood_ban_after: int = Field(
        default=20, ge=1, description="429 answers in a minute before a source is banned."
    )
    ids_interface: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,15}$", description="Suricata's (default route)."
    )
    ha_peers: list[IPv4Address | IPv6Address] = Field(
        description="Other nodes of this difusor (clause II.a), by their address on the link"
        " they share (where VRRP runs when ha_address is set)."
    )
    ha_address: IPv4Address | None = Field(
        default=None,
        description="The floating address visitors reach: held by one node at a time (VRRP).",
    )
    ha_interface: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,15}$",
        description="VRRP's interface (default: the one whose network holds ha_address).",
    )
    ha_priority: int = Field(
        default=100,
        ge=1,
        le=254,
        description="Higher holds the address; between equals, who has it keeps it.",
    )
    ha_router_id: int = Field(
        default=51, ge=1, le=255, description="VRRP router id: the same on every node of the link."
    )
    ha_advert_seconds: float = Field(
        default=1,
        ge=0.05,
        le=255,
        description="VRRP advertisement interval: whole seconds (VRRPv2, authenticated) or below"
        " 1 s (VRRPv3, which has no authentication: the firewall admits only the peers).",
    )
    ha_password: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._~+-]{4,8}$",
        description="VRRPv2's authentication, the same on every node (VRRP carries at most 8).",
    )
    ha_reserve_mib: int = Field(
        default=256, ge=0, description="Free space below which a node yields the address."
    )
    force_below_minimums: bool = Field(
        description="Deploy on a host below clause II.c (testbeds only)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> DifusorSettings:
        problems: list[tuple[Loc, object, str]] = []
        if (self.tls_certificate is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_certificate"
            problems.append(((missing,), None, "set together with the other TLS path"))
        if self.ups_mode == "netclient" and not self.ups_server:
            problems.append((("ups_server",), None, "the NUT server when ups_mode is 'netclient'"))
        if self.ups_mode == "standalone" and not self.ups_driver:
            problems.append((("ups_driver",), None, "the NUT driver when ups_mode is 'standalone'"))
        if self.ups_mode == "standalone" and not self.ups_password:
            problems.append((("ups_password",), None, "upsmon's password with a standalone UPS"))
        problems += self._ha_problems()
        if self.sftp_user == self.admin_user:
            expected = f"a user other than admin_user {self.admin_user!r}"
            problems.append((("sftp_user",), self.sftp_user, expected))
        fail_fields(type(self).__name__, problems)
        return self

    def _ha_problems(self) -> list[tuple[Loc, object, str]]:
        if self.ha_address is None:
            return []
        problems: list[tuple[Loc, object, str]] = []
        if not self.ha_peers:
            expected = "the other nodes' addresses when ha_address is set"
            problems.append((("ha_peers",), [], expected))
        for index, peer in enumerate(self.ha_peers):
            if peer == self.ha_address:
                expected = "a node's own address, not ha_address"
                problems.append((("ha_peers", index), str(peer), expected))
            elif peer.version != 4:
                problems.append((("ha_peers", index), str(peer), "IPv4, as ha_address is"))
        if self.vrrp_version == 2:
            if self.ha_advert_seconds != int(self.ha_advert_seconds):
                expected = "whole seconds (1-255), or below 1 s for VRRPv3"
                problems.append((("ha_advert_seconds",), self.ha_advert_seconds, expected))
            if self.ha_password is None:
                expected = "VRRPv2's password (4-8 of A-Za-z0-9._~+-), the same on every node"
                problems.append((("ha_password",), None, expected))
        elif self.ha_password is not None:
            expected = "unset: VRRPv3 (ha_advert_seconds below 1) has no authentication"
            problems.append((("ha_password",), "(set)", expected))
        return problems

    @property
    def vrrp_version(self) -> int:
        """VRRPv2 (authenticated, whole seconds) unless the adverts are sub-second."""
        return 2 if self.ha_advert_seconds >= 1 else 3

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None

    @property
    def ssh_sources(self) -> list[IPNetwork]:
        """Every network allowed to reach sshd: admins first, then the IEC."""
        return [*self.admin_sources, *self.iec_sources]


Layer = tuple[str, Mapping[str, Any]]


class SettingsError(ConfigError, DeployError):
    """Bad group data: a ``ConfigError`` that pyinfra's CLI prints as a plain deploy
    error, listing the problems without a Python traceback."""


def load_settings(layers: Sequence[Layer]) -> DifusorSettings:
    """Validate data merged from ``(source, data)`` layers, highest precedence first.

    Each problem names the layer that set the offending key (or, for a missing
    key, says that none did).
    """
    merged: dict[str, Any] = {}
    for _, data in reversed(layers):
        merged.update(data)
    fields = DifusorSettings.model_fields
    try:
        return DifusorSettings.model_validate({k: v for k, v in merged.items() if k in fields})
    except ValidationError as exc:
        problems = []
        for problem in problems_from_validation(exc, "group data"):
            key = problem.field.split("[", 1)[0].split(".", 1)[0]
            source = next(
                (name for name, data in layers if key in data),
                "group data (no file sets it)",
            )
            problems.append(
                Problem(source, problem.field, problem.value, problem.expected, problem.line)
            )
        # The problems say all the pydantic error did, with the file: no chained traceback.
        raise SettingsError(problems) from None


def host_layers(host: Any, group_data_dir: Path = Path("group_data")) -> list[Layer]:
    """A pyinfra host's data as named layers, in pyinfra's precedence order."""
    inventory = host.inventory
    layers: list[Layer] = [
        ("command-line --data", inventory.get_override_data()),
        (f"inventory host {host.name!r}", inventory.get_host_data(host.name)),
    ]
    # pyinfra lets the last group win, so the last group is looked at first.
    for group in reversed(host.groups):
        data = inventory.get_group_data(group)
        in_file = _assigned_names(group_data_dir / f"{group}.py")
        layers.append((str(group_data_dir / f"{group}.py"), _only(data, in_file)))
        layers.append((f"inventory group {group!r}", _only(data, set(data) - in_file)))
    layers.append((str(group_data_dir / "all.py"), inventory.get_data()))
    return layers


def _assigned_names(path: Path) -> set[str]:
    """Top-level names a group-data file assigns (pyinfra merges them with the inventory's)."""
    if not path.is_file():
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def _only(data: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in keys}


def settings_from_host(host: Any) -> DifusorSettings:
    """Validate the current pyinfra host's data; raise ``ConfigError`` naming file and key."""
    return load_settings(host_layers(host))
