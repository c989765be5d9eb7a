"""One boto3 client per service for the runner's own calls (seeding, executions, reports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import boto3


class AccountClients:
    """One boto3 client per service for the runner's own calls (seeding, executions, reports)."""

    # Explicit keys: a client made while a handler runs must not pick up that function's role. The
    # simulated account signs with its root keys; a deployed stack with the caller's own credentials.
    signing_keys: ClassVar[Mapping[str, str]] = {}

    def client(self, service: str) -> Any:
        clients: dict[str, Any] = self.__dict__.setdefault("_clients", {})
        if service not in clients:
            clients[service] = boto3.client(service, region_name=self.__dict__.get("region"), **self.signing_keys)
        return clients[service]
