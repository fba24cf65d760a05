"""Pydantic models at every boundary: elections, the registry, host minimums, loading."""

from prep_iac.models.difusor import (
    Difusor,
    DifusorStatus,
    HostKey,
    Node,
    Registry,
    TechnicalContact,
)
from prep_iac.models.election import CallReference, Contest, Election, Entity
from prep_iac.models.loading import ConfigError, Problem, load_model
from prep_iac.models.requirements import HostRequirements, Requirement

__all__ = [
    "CallReference",
    "ConfigError",
    "Contest",
    "Difusor",
    "DifusorStatus",
    "Election",
    "Entity",
    "HostKey",
    "HostRequirements",
    "Node",
    "Problem",
    "Registry",
    "Requirement",
    "TechnicalContact",
    "load_model",
]
