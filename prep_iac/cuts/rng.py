"""Seeded random streams: one per purpose, so that one part's draws never shift another's."""

from __future__ import annotations

import random


def seeded(purpose: str, seed: int) -> random.Random:
    """The stream for ``purpose`` (e.g. ``"geography"``) under ``seed``; stable across runs."""
    # Simulation data, not secrets: a reproducible PRNG is what we want here.
    return random.Random(f"{purpose}:{seed}")  # noqa: S311
