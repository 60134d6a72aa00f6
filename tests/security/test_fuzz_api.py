"""schemathesis against a real Jupyter server with the extension: every operation of the
shipped ``openapi.yaml``, with data that fits the spec (positive) and data that does not
(negative), on random session ids and on a real launched session.

What must hold for every request: no 5xx, the response conforms to the spec (status,
content type, headers, body schema), and no body carries a Python traceback.  Launch is
fuzzed apart (it starts agents): hypothesis against the config validator in
``test_properties.py``, and a few real launch calls here.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from .conftest import LiveServer
from .openapi_support import load_spec

pytestmark = pytest.mark.cli

#: generated cases per operation and mode (18 operations x 2 modes)
EXAMPLES = 15
#: the workspace paths a real-session case may ask for instead of a random one
KNOWN_PATHS = ["hello.txt", "src/app.py", "data.json", "src", "etc_link/passwd", "passwd", "nope"]
#: a Python traceback, or the file/line frames of one
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
#: operations that would start agents (launch) or end the real session (DELETE; run last)
SEPARATE = {("POST", "/agents/launch")}


def operations(schema: Any) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    ops = [op for op in ops if (op.method.upper(), op.path) not in SEPARATE]
    return sorted(ops, key=lambda op: op.method.upper() == "DELETE")


@pytest.fixture(scope="module")
def schema() -> Any:
    spec = load_spec()
    return schemathesis.openapi.from_dict(spec)


class Client(requests.Session):
    """No cookie jar: Jupyter answers a token request with a login cookie, which would
    authenticate the next request even without its token."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.cookies.clear()
        return super().request(*args, **kwargs)


def tweak(case: Any, *, real: bool, real_id: str, token: str) -> dict[str, str]:
    """Our token, unless the case means its headers to be wrong (then it checks that a
    missing or bad token is refused: schemathesis fills Authorization with noise itself);
    where the path is valid, maybe the real session instead of a random id."""
    meta = case.meta
    auth = {} if meta.is_negative_at(ParameterLocation.HEADER) else {"Authorization": token}
    if real and "session_id" in case.path_parameters:
        if not meta.is_negative_at(ParameterLocation.PATH):
            case.path_parameters["session_id"] = real_id
            if "path" in case.path_parameters:
                case.path_parameters["path"] = random.choice(KNOWN_PATHS)
        if case.operation.path.endswith("/events"):
            case.query = {**(case.query or {}), "follow": "false"}  # a followed log never ends
    if case.operation.path == "/notebooks/edits" and not meta.is_negative_at(
        ParameterLocation.QUERY
    ):
        case.query = {**(case.query or {}), "timeout": "0"}  # a poll waits up to 30 s
    return auth


def check_response(case: Any, response: Any, where: str, auth: dict[str, str]) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.content[:500]!r}"
    body = response.content[:200_000].decode("utf-8", "replace")
    assert not TRACEBACK.search(body), f"{where}: traceback in the body"
    # auth passed as the caller's headers: schemathesis then probes that leaving it out,
    # or sending a wrong one, is refused
    case.validate_response(response, headers=auth)


@dataclass
class Tally:
    """What the fuzzing did: requests per operation, per status, and on the real session."""

    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    on_real_session: Counter[str] = field(default_factory=Counter)


def fuzz(
    operation: Any, mode: GenerationMode, server: LiveServer, real_id: str, tally: Tally
) -> None:
    """``EXAMPLES`` generated cases of one operation in one mode, each sent and checked."""
    where = f"{operation.method.upper()} {operation.path}"
    token = server.auth["Authorization"]
    http = Client()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def run(case: Any, real: bool) -> None:
        auth = tweak(case, real=real, real_id=real_id, token=token)
        response = case.call(
            base_url=server.url.rstrip("/"), session=http, headers=auth, timeout=120
        )
        tally.by_operation[where] += 1
        tally.by_status[response.status_code] += 1
        if real_id in case.formatted_path:
            tally.on_real_session[where] += 1
        check_response(case, response, f"{where} [{mode}] {case.path_parameters}", auth)

    run()


def test_every_operation_holds_up_to_fuzzing(
    live_server: LiveServer, live_session: dict[str, Any], schema: Any
) -> None:
    tally = Tally()
    started = time.monotonic()
    for operation in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # the member itself; checked as Python 3.10, where the enum's base (StrEnum)
            # does not exist, its members look like plain str
            fuzz(operation, GenerationMode(mode), live_server, live_session["session_id"], tally)
    elapsed = time.monotonic() - started
    total = sum(tally.by_operation.values())
    print(f"\nfuzzed {total} requests in {elapsed:.1f}s; statuses {dict(tally.by_status)}")
    print(f"on the real session: {dict(tally.on_real_session)}")
    everything = {f"{op.method.upper()} {op.path}" for op in operations(schema)}
    assert set(tally.by_operation) == everything, "an operation was never called"
    # every session-scoped operation reached the real session too, not only 404s
    scoped = {w for w in everything if "{session_id}" in w}
    assert set(tally.on_real_session) == scoped, scoped - set(tally.on_real_session)
    assert tally.by_status[200] >= 50, tally.by_status


def test_launch_bodies(live_server: LiveServer, schema: Any) -> None:
    """Negative launch bodies from the spec, then a few real launches of inline configs."""
    operation = schema["/agents/launch"]["POST"]
    base_url = live_server.url.rstrip("/")
    http = Client()
    auth = dict(live_server.auth)
    seen: list[int] = []

    @settings(max_examples=25, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def run(case: Any) -> None:
        assume(case.meta.is_negative_at(ParameterLocation.BODY))
        response = case.call(base_url=base_url, session=http, headers=auth, timeout=120)
        seen.append(response.status_code)
        check_response(case, response, f"launch {case.body!r:.200}", auth)
        assert 400 <= response.status_code < 500, response.text  # never a launch
        assert response.json()["message"]

    run()
    assert set(seen) == {400}, seen

    launched = []
    for config in (
        {"id": "fuzz-min"},
        {"allowed_tools": ["Read", "Bash"], "resource_limits": {"memory": "512m"}},
        {"system_prompt": {"type": "preset", "append": "be brief"}, "max_turns": 3},
    ):
        case = operation.Case(body={"config": config}, media_type="application/json")
        reply = case.call(base_url=base_url, session=http, headers=auth, timeout=120)
        assert reply.status_code == 201, reply.text
        check_response(case, reply, "launch", auth)
        launched.append(reply.json()["session_id"])
    for session_id in launched:
        gone = live_server.request("DELETE", f"agents/sessions/{session_id}?purge=true")
        assert gone.status_code == 200, gone.text
