"""The providers the fake speaks. Adding one: write its module (see :mod:`.base`), list its API
class in ``APIS`` and its settings among ``FakeConfig``'s bases."""

from __future__ import annotations

import dataclasses

from .base import ProviderAPI
from .config import CoreConfig
from .flowroute import FlowrouteAPI, FlowrouteConfig
from .plivo import PlivoAPI, PlivoConfig

APIS: tuple[type[ProviderAPI], ...] = (PlivoAPI, FlowrouteAPI)


@dataclasses.dataclass
class FakeConfig(FlowrouteConfig, PlivoConfig, CoreConfig):
    """Every runtime setting of the fake provider: the shared ones (:class:`.config.CoreConfig`)
    then each provider's (credentials, limits, inbound URL)."""
