"""Property-based tests of the API against its own OpenAPI document (schemathesis): whatever a
client sends that the document allows, or nearly allows, the service answers without a 5xx and
with what the document says it answers.

Run as a trainee (a new one, removed afterwards with whatever it made): they can reach every
path, and what they make is theirs, within their quotas, in this test's servers. Bounded in
examples per operation and in time, so the run takes the same while every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dbwrapper.api.openapi import openapi_document
from dbwrapper.api.routes import ROUTES
from tests.test_api import token_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


#: The document the service serves (tests/test_api.py checks that it serves this one).
schema = schemathesis.openapi.from_dict(openapi_document(ROUTES))


@pytest.fixture
def trainee_token(runtime: Any, trainee: Callable[..., Any]) -> str:
    return token_for(runtime, trainee().user_name)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_server_error_or_breaks_the_document(case: Any, base_url: str, trainee_token: str) -> None:
    case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {trainee_token}"}, checks=CHECKS)
