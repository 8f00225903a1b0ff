"""Schema-driven fuzzing of the management API (schemathesis) from its own OpenAPI document.

Bounded for the regular run (``AUTHSERVER_FUZZ_EXAMPLES``, default 40 per
operation); ``scripts/fuzz`` runs it longer. Every generated request must get a
non-5xx answer, and a rejected one must leave stored credentials as they were.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Ok, Result
from starlette.testclient import TestClient

from authserver.api.openapi import openapi_document
from authserver.config import Settings
from authserver.store import Store
from tests.support.types import MakeCaller

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("AUTHSERVER_FUZZ_EXAMPLES", "40"))
SCHEMA = schemathesis.openapi.from_dict(openapi_document(Settings()))


# schemathesis leaves an operation's type parameters open (Any) for OpenAPI schemas.
Operation = APIOperation[Any, Any, Any, Any]


def _operation(result: Result[Operation, InvalidSchema]) -> Operation:
    assert isinstance(result, Ok), result
    return result.ok()


OPERATIONS = [_operation(op) for op in SCHEMA.get_all_operations()]
# Each credential as (id, display_name, allow_source_cidr, scoped_roles, expires, deleted).
Snapshot = list[tuple[str, str, tuple[str, ...], tuple[str, ...], datetime | None, datetime | None]]


def snapshot(store: Store) -> Snapshot:
    return [
        (c.id, c.display_name, c.allow_source_cidr, c.scoped_roles, c.expires_time, c.deleted_at)
        for c in store.credentials.all(include_deleted=True)
    ]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_management_api_survives_generated_requests(
    client: TestClient, caller: MakeCaller, store: Store, operation: Operation
) -> None:
    _, record, _, token = caller(roles=("system:owner", "deploy"))
    bearer = {"authorization": f"Bearer {token}"}
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy())
    def run(case: Case[Operation]) -> None:
        path = case.formatted_path
        if "{id}" in operation.path and case.path_parameters.get("id") == "own":
            path = path.replace("own", record.id)
        before = snapshot(store)
        response = client.request(
            case.method,
            path,
            params=case.query or None,
            json=None if type(case.body).__name__ == "NotSet" else case.body,
            headers={**dict(case.headers or {}), **bearer},
        )
        seen.append(response.status_code)
        assert response.status_code < 500, (case.method, path, case.body, response.text[:300])
        if response.status_code >= 400:
            assert snapshot(store) == before, "a rejected request changed stored state"

    run()
    assert seen
