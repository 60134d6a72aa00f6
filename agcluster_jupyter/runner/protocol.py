"""The runner channel: the small HTTP API the agent runner serves to the server.

It is spoken over a unix socket (``local``, ``docker``) or TCP (``fly``, ``kubernetes``),
and on both every request carries the session's control token as ``Authorization:
Bearer <token>``.  The runner knows only the token's SHA-256 (``AGCLUSTER_RUNNER_TOKEN_SHA256``
in its environment), so nothing the agent's tools can read in the runner's environment,
``/proc`` or memory lets them in: approvals, turns, interrupts, shutdown, events and files
are the server's alone.  All bodies are JSON.

=========================================  ==============================================
``GET  /health``                           ``{status: "ok", busy, turn, last_rseq,
                                           sdk_session_id, version, pid}``
``POST /turns``      ``{message}``         202 ``{turn}``; 409 while a turn runs
``GET  /events?after=N``                   NDJSON, one ``{"rseq": n, "event": {...}}`` a
                                           line, from rseq N+1 on, held open; a bare
                                           newline is a heartbeat
``POST /interrupt``                        ``{interrupted: bool}``
``POST /permissions/{request_id}``         ``{decision: "allow"|"deny", message?}``; 404
                                           when no such request waits
``POST /tool-calls/{call_id}``            the server's answer to a ``tool_call`` line:
                     ``{result}|{error}``  ``{result: <JSON>}`` or ``{error: "text"}``;
                                           404 when no such call waits
``POST /rewind``     ``{resume?, at?}``    the CLI restarts on conversation ``resume`` up
                                           to message ``at`` (forked), or on a new one
                                           (both null); ``{sdk_session_id}``; 409 busy
``POST /shutdown``                         the runner closes its client and exits
=========================================  ==============================================

``rseq`` numbers the events a runner emitted since it started (from 1, gapless); a
runner restarted on the same ``--state-dir`` continues the count where the previous
process stopped (the runner keeps it in ``<state-dir>/runner-rseq``), and ``after=`` below
that count simply starts with this process's first event.  The server
remembers the last ``rseq`` it appended to the session log, so after any drop (network,
server restart, runner restart) it resubscribes with ``after=`` and loses nothing,
repeats nothing.  Events carry no ``seq``/``session_id``/``ts``: the session log stamps
those.

Errors are ``{"message": ...}`` with a 4xx status; a request without the control token
gets 401 (and the runner logs it, and tells the session with an ``error`` event of code
``runner_refused``: the first 20 times).

Clarifications (what ``agcluster_jupyter.runner`` does):

- ``/health`` ``status`` is ``starting`` until the claude CLI answered, then ``ok``;
  ``failed`` with a ``detail`` (the CLI's last stderr lines included) when it cannot
  start; ``stopping`` during shutdown.  It also lists ``pending_permissions`` (ids).
- ``POST /turns``: 400 for a missing, empty or non-string ``message``; 409 ``{message:
  "a turn is already running; interrupt it or wait for done"}`` while busy, and 409 when
  the agent failed.  A turn accepted while ``starting`` waits for the CLI.
- A turn's events: ``status busy`` first, then one event per SDK content block, then
  ``result`` (+ ``error`` when the result is an error: ``api_error_<status>``,
  ``max_turns``, ``interrupted``, ...), then ``status idle`` and ``done`` last, exactly
  once, whatever happened.  Outside turns the runner emits ``status ready`` when the CLI
  is connected (again after a reconnect) and ``status failed`` with the reason.
- ``permission_request.request_id`` is the tool call's ``tool_use_id`` when the CLI
  gives one.  An interrupt or shutdown denies every pending request.  The model reads a
  denial as ``Permission to use <tool> was denied: <message>`` (:func:`denial_message`),
  so it can tell a refused call from one that ran and failed.
- ``/events`` stream lines other than events: a bare newline (heartbeat, also sent once
  at subscription to flush the headers); ``{"rseq": N, "gap": true, "from": M}`` when
  events M…N fell out of the runner's buffer (its last 10 000 events) before they could
  be sent, so the caller continues after N; ``{"rseq": N, "reset": true}`` when
  ``after`` is beyond the runner's last rseq (a cursor from another state dir, or a lost
  counter file): the stream goes on from this runner's oldest buffered event, N+1.  On
  shutdown the streams end after the last event.
- ``{"rseq": N, "tool_call": {call_id, tool, args}}`` on ``/events`` (numbered like an
  event, no event of the session log): the agent called a tool of the ``jupyter`` MCP
  server (``runner/jupyter_tools.py``; offered when ``AGCLUSTER_JUPYTER_TOOLS`` is "1").
  The server runs it against the session's grants and answers ``POST /tool-calls/{id}``;
  unanswered within 300 s, or at an interrupt or the turn's end, the agent reads an error.
- If the CLI dies, the running turn ends (``error`` ``cli_exited``, ``done``) and the
  runner reconnects with ``resume`` (``status`` ``starting`` → ``ok``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = [
    "DENIAL_RE",
    "ENV_CONFIG",
    "ENV_ISOLATED",
    "ENV_JUPYTER_TOOLS",
    "JUPYTER_TOOLS_KERNEL",
    "jupyter_tools_env",
    "ENV_NETWORK",
    "ENV_RUNNER_TOKEN_SHA256",
    "ENV_SESSION_TOKEN",
    "HEARTBEAT_SECONDS",
    "MAX_BODY_BYTES",
    "CONVERSATION_HEADER",
    "NAME_HEADER",
    "denial_message",
    "token_digest",
    "token_matches",
]

#: JSON of the ``AgentConfig`` the runner serves (an env var so no file is needed)
ENV_CONFIG = "AGCLUSTER_CONFIG"
#: the per-session token the runner presents to the gateway (never the API key)
ENV_SESSION_TOKEN = "AGCLUSTER_SESSION_TOKEN"
#: the SHA-256 (hex) of the control token every request to the runner must carry
ENV_RUNNER_TOKEN_SHA256 = "AGCLUSTER_RUNNER_TOKEN_SHA256"
#: "1" when the provider isolates the agent from the machine (a container, a pod, a VM),
#: "0" for the local provider; the runner tells the agent (``options.environment_note``)
ENV_ISOLATED = "AGCLUSTER_ISOLATED"
#: "1" when the server brokers the ``jupyter`` MCP tools (the user's notebooks) for it
ENV_JUPYTER_TOOLS = "AGCLUSTER_JUPYTER_TOOLS"
#: its values: "0" none, "1" the notebook tools, "kernel" the notebook and kernel tools
JUPYTER_TOOLS_KERNEL = "kernel"


def jupyter_tools_env(notebooks: bool, kernel: bool) -> str:
    """The value of ``AGCLUSTER_JUPYTER_TOOLS`` for a runner."""
    if not notebooks:
        return "0"
    return JUPYTER_TOOLS_KERNEL if kernel else "1"


#: "1" when the agent's tools can reach the network, "0" when they cannot
ENV_NETWORK = "AGCLUSTER_NETWORK"
#: a served file's own name (URL-quoted UTF-8), for the server's Content-Disposition
NAME_HEADER = "X-Agcluster-Name"
#: a copied conversation's id, on ``POST /conversation/export`` (runner/checkpoints.py)
CONVERSATION_HEADER = "X-Agcluster-Conversation"
#: seconds between heartbeats on an idle ``/events`` stream
HEARTBEAT_SECONDS = 10.0
#: the largest request body the runner reads (a chat message, a permission answer)
MAX_BODY_BYTES = 4 * 1024 * 1024


#: a tool result that is a denial, as :func:`denial_message` words it
DENIAL_RE = re.compile(
    r"Permission to use (?P<tool>\S+) was denied(?: by the user\.|: (?P<reason>.*))", re.DOTALL
)


def denial_message(tool_name: str, reason: str = "") -> str:
    """What the model is told when a tool call was not permitted (the tool result's text):
    which tool was refused, then why (the user's message, a timeout, an interrupt)."""
    head = f"Permission to use {tool_name} was denied"
    reason = reason.strip()
    return f"{head}: {reason}" if reason else f"{head} by the user."


def token_digest(token: str) -> str:
    """What the runner is given of its control token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(authorization: str, digest: str) -> bool:
    """Does an ``Authorization`` header carry the token whose digest is ``digest``?"""
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        return False
    return hmac.compare_digest(token_digest(token.strip()), digest)
