"""One boto3 client per service for the runner's own calls (seeding, executions, reports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import boto3

# moto's request header naming the account a request acts in (moto's "x-moto-account-id", which it
# reads before the access key); the runner's keys are the account's root in every simulated account.
MOTO_ACCOUNT_HEADER: Final = "x-moto-account-id"


def account_session(account_id: str, region: str, signing_keys: Mapping[str, str]) -> boto3.session.Session:
    """A boto3 session whose every request acts in the simulated account `account_id`, as its root.

    The organization's other accounts have no keys of their own in moto: each request names its account
    in moto's header instead. Only the runner uses this (seeding, deploying a member's stack); tagpatch
    reaches a member account through STS AssumeRole, as it does in AWS.
    """
    keys = {key: value for key, value in signing_keys.items() if key != "region_name"}
    session = boto3.session.Session(region_name=region, **keys)

    def name_the_account(request: Any, **_: Any) -> None:
        request.headers[MOTO_ACCOUNT_HEADER] = account_id

    session.events.register("before-sign", name_the_account)
    return session


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
