"""The runner channel: the small HTTP API the agent runner serves to the server.

It is spoken over a unix socket (``local``, ``docker``) or TCP with a per-session bearer
token (``fly``, ``kubernetes``).  All bodies are JSON.

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
``POST /shutdown``                         the runner closes its client and exits
=========================================  ==============================================

``rseq`` numbers the events a runner emitted since it started (from 1, gapless).  The
server remembers the last ``rseq`` it appended to the session log, so after any drop
(network, server restart) it resubscribes with ``after=`` and loses nothing, repeats
nothing.  Events carry no ``seq``/``session_id``/``ts``: the session log stamps those.

Errors are ``{"message": ...}`` with a 4xx status.  With a token configured every
request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

__all__ = [
    "ENV_CONFIG",
    "ENV_RUNNER_TOKEN",
    "ENV_SESSION_TOKEN",
    "HEARTBEAT_SECONDS",
]

#: JSON of the ``AgentConfig`` the runner serves (an env var so no file is needed)
ENV_CONFIG = "AGCLUSTER_CONFIG"
#: the per-session token the runner presents to the gateway (never the API key)
ENV_SESSION_TOKEN = "AGCLUSTER_SESSION_TOKEN"
#: bearer token the runner requires on its own API when served over TCP
ENV_RUNNER_TOKEN = "AGCLUSTER_RUNNER_TOKEN"
#: seconds between heartbeats on an idle ``/events`` stream
HEARTBEAT_SECONDS = 10.0
