"""nftables facts: the loaded ruleset (``nft -j list ruleset``) and a saved copy of it.

Both return the ruleset per table, normalised so that two listings compare
equal when the rules are the same: handles, counter values and the elements
of dynamic sets (meters, the blocklist) change at run time and are dropped.
"""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api.command import QuoteString, StringCommand
from pyinfra.api.facts import FactBase
from typing_extensions import override

Tables = dict[str, list[dict[str, Any]]]

# Set flags whose elements are added by the packet path, not by the ruleset file.
RUNTIME_SET_FLAGS = {"dynamic", "timeout"}


def _strip(value: Any) -> Any:
    """Drop handles and zero counters anywhere in a JSON expression."""
    if isinstance(value, dict):
        out = {k: _strip(v) for k, v in value.items() if k != "handle"}
        if "counter" in out and isinstance(out["counter"], dict):
            out["counter"] = {"packets": 0, "bytes": 0}
        return out
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def normalise(document: dict[str, Any]) -> Tables:
    """``{"inet prep": [objects...]}`` from the JSON of ``nft -j list ruleset``."""
    tables: Tables = {}
    for item in document.get("nftables", []):
        [(kind, body)] = item.items()
        if kind == "metainfo":
            continue
        body = _strip(body)
        if kind == "table":
            tables.setdefault(f"{body['family']} {body['name']}", [])
            continue
        if kind == "set" and RUNTIME_SET_FLAGS & set(body.get("flags", [])):
            body.pop("elem", None)
        tables.setdefault(f"{body['family']} {body['table']}", []).append({kind: body})
    return tables


class NftablesRuleset(FactBase[Tables]):
    """
    Returns the loaded nftables ruleset per table, normalised for comparison.

    .. code:: python

        {
            "inet prep": [
                {"set": {"family": "inet", "table": "prep", "name": "admin4", ...}},
                {"chain": {"family": "inet", "table": "prep", "name": "input", ...}},
                {"rule": {"family": "inet", "table": "prep", "chain": "input", "expr": [...]}},
            ],
        }
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "nft"

    @override
    def command(self) -> str:
        return "nft -j list ruleset"

    @override
    def process(self, output: list[str]) -> Tables:
        return normalise(json.loads("\n".join(output)))


class NftablesSnapshot(FactBase[Tables]):
    """
    Returns a ruleset saved with ``nft -j list ruleset > path``, normalised like
    ``NftablesRuleset``; empty when the file does not exist.
    """

    default = dict

    @override
    def command(self, path: str) -> StringCommand:
        return StringCommand("cat", QuoteString(path), "2>/dev/null || true")

    @override
    def process(self, output: list[str]) -> Tables:
        text = "\n".join(output).strip()
        return normalise(json.loads(text)) if text else {}
