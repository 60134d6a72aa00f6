"""What a prompt-injected agent tries from inside its session, as scripted-model scenarios.

Each probe is a Python script the agent writes into its workspace (Write) and runs (Bash),
with only what the agent's tools have: its environment (``ANTHROPIC_BASE_URL`` and the
session token in ``ANTHROPIC_API_KEY``), its files and ``/proc``.  It prints one line
``PROBE <json>`` that :func:`probe_result` reads back out of the turn's events.  The
model calls a probe makes itself carry :data:`OWN_CALL` (never in the CLI's requests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "OWN_CALL",
    "GATEWAY_ENDPOINTS",
    "GATEWAY_METHODS",
    "gateway_probe_scenario",
    "probe_result",
    "runner_attack_scenario",
    "spender_scenario",
]

#: what the issue found forwarded upstream with the real key, and a look-alike
GATEWAY_ENDPOINTS = [
    "/v1/files",
    "/v1/messages/batches",
    "/v1/models",
    "/v1/organizations/me",
    "/v1/messages/../files",
]
GATEWAY_METHODS = ["GET", "POST", "DELETE", "PUT"]
#: in the body of every model call a probe makes itself
OWN_CALL = "probe-own-call"

_COMMON = r"""
import json, os, urllib.error, urllib.request

BASE = os.environ["ANTHROPIC_BASE_URL"].rstrip("/")
TOKEN = os.environ.get("ANTHROPIC_API_KEY", "")
# joined here, so the marker is in the probe's own calls, not in the CLI's conversation
MARK = "-".join(["probe", "own", "call"])
BODY = json.dumps({"model": "claude-probe", "max_tokens": 50,
                   "messages": [{"role": "user", "content": MARK + ": say hi"}]}).encode()


def call(method, path, auth="x-api-key", body=None):
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if auth == "x-api-key":
        headers["x-api-key"] = TOKEN
    else:
        headers["authorization"] = "Bearer " + TOKEN
    request = urllib.request.Request(BASE + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except Exception as error:
        return repr(error)
"""

_GATEWAY_PROBE = (
    _COMMON
    + f"""
results = []
for path in {GATEWAY_ENDPOINTS!r}:
    for method in {GATEWAY_METHODS!r}:
        for auth in ("x-api-key", "bearer"):
            body = BODY if method in ("POST", "PUT") else None
            results.append([method, path, auth, call(method, path, auth, body)])
print("PROBE " + json.dumps({{"token": bool(TOKEN), "results": results}}))
"""
)

_SPENDER = (
    _COMMON
    + """
# a big prompt: about 50 000 tokens a call, so one call crosses the budget it meets
BIG = json.dumps({"model": "claude-probe", "max_tokens": 50,
                  "messages": [{"role": "user", "content": MARK + ": " + "x " * 100000}]}).encode()
statuses = [call("POST", "/v1/messages?beta=true", body=BIG) for _ in range(6)]
print("PROBE " + json.dumps({"token": bool(TOKEN), "statuses": statuses}))
"""
)


def _scenario(match: str, name: str, script: str) -> dict[str, Any]:
    write = {"name": "Write", "input": {"file_path": "{cwd}/" + name, "content": script}}
    run = {"name": "Bash", "input": {"command": f"python3 {name}"}}
    return {"match": match, "steps": [[{"tool_use": write}], [{"tool_use": run}]]}


def gateway_probe_scenario(match: str) -> dict[str, Any]:
    """The agent calls every endpoint of :data:`GATEWAY_ENDPOINTS` by every method of
    :data:`GATEWAY_METHODS`, with ``x-api-key`` and with a bearer token."""
    return _scenario(match, "gateway_probe.py", _GATEWAY_PROBE)


def spender_scenario(match: str) -> dict[str, Any]:
    """The agent makes 6 model calls of its own (``POST /v1/messages``, about 50 000
    input tokens each), past the CLI."""
    return _scenario(match, "spender.py", _SPENDER)


def probe_result(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``PROBE`` line a probe printed, from the turn's tool results."""
    for event in events:
        if event.get("type") == "tool_result":
            for line in str(event.get("output", "")).splitlines():
                if line.startswith("PROBE "):
                    return json.loads(line[len("PROBE ") :])
    outputs = [e.get("output") for e in events if e.get("type") == "tool_result"]
    raise AssertionError(f"the probe printed nothing: {outputs}")


# -- the runner's control channel ------------------------------------------------------------

#: the attacker itself: a plain script (linted with the rest), run by the agent
_ATTACKER = Path(__file__).parent / "probe_scripts" / "runner_attacker.py"


def runner_attack_scenario(match: str, seconds: float = 8.0, kill: bool = False) -> dict[str, Any]:
    """A turn of two tool calls: first (approved by the user) a command that writes the
    attacker and starts it in the background, detached (``setsid nohup ... &``); then
    ``echo pwned > pwned.txt``, which must wait for the user while the attacker tries
    every runner endpoint by every unix socket and TCP port it can find, with every
    token it can read (``/proc/*/environ``, command lines, its own environment); with
    ``kill`` it first sends SIGTERM to every runner process it can see.  It writes what
    it got to ``attack.json``."""
    script = _ATTACKER.read_text()
    start = (
        "cat > approver.py <<'AGC_EOF'\n" + script + "\nAGC_EOF\n"
        f"setsid nohup python3 approver.py {seconds}{' --kill' if kill else ''} "
        "> /dev/null 2>&1 &"
    )
    return {
        "match": match,
        "steps": [
            [{"tool_use": {"name": "Bash", "input": {"command": start}}}],
            [{"tool_use": {"name": "Bash", "input": {"command": "echo pwned > pwned.txt"}}}],
        ],
        "final": "Both commands are done.",
    }
