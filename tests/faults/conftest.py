"""Fault injection: what the user sees when something breaks, and that nothing is lost.

Each test breaks one thing in the middle of real work (a real Jupyter server, the real
claude CLI through the scripted model, real processes, containers and files) and asserts
what a user of the REST/SSE API sees, that the workspace, the event log (gapless ``seq``)
and the conversation survive, and that the session is then resumable (the next chat
works and the model's request carries the earlier messages) or cleanly ``failed`` and
relaunchable.

Index, fault → test (faults already tested elsewhere are listed, not repeated here):

- the runner process killed mid-turn (local provider):
  ``test_runner_and_server.py::test_runner_killed_mid_turn_fails_the_session_then_resumes``
- the container killed mid-turn (``docker kill``):
  ``tests/e2e/test_docker_provider.py::
  test_a_container_dying_mid_turn_fails_the_session_and_the_next_chat_relaunches``
- the claude CLI killed inside a live runner (the runner reconnects by itself):
  ``tests/integration/test_runner.py::test_a_dead_cli_ends_the_turn_and_comes_back``
- a tool killed for memory (OOM) and a fork bomb:
  ``tests/e2e/test_docker_provider.py::test_a_process_over_the_memory_limit_is_killed_and_reported``,
  ``::test_the_pids_limit_holds``
- dockerd restarted mid-turn: ``test_dockerd_restart.py``
- the Jupyter server restarted mid-turn: ``test_runner_and_server.py::
  test_server_stopped_mid_turn_stops_the_turn_and_the_session_resumes`` (SIGTERM) and
  ``::test_server_crashing_mid_turn_readopts_the_runner_and_the_turn_completes``
  (SIGKILL); between turns: ``tests/integration/test_restart.py``; with containers:
  ``tests/e2e/test_docker_recovery.py::test_a_restarted_server_readopts_containers_and_removes_orphans``
- a session stopped (DELETE) mid-turn: ``test_runner_and_server.py::
  test_a_turn_stopped_by_delete_ends_with_done``
- the workspace disk full (a small tmpfs): ``test_disk_full.py``; the docker storage
  limit (a soft quota): ``tests/e2e/test_docker_provider.py::
  test_the_storage_limit_stops_the_turn_and_refuses_uploads``
- the model answering 429, 529, 500 or a broken stream, every time or once:
  ``test_model_errors.py``; at the runner alone:
  ``tests/integration/test_runner.py::test_upstream_failure_surfaces_in_seconds``; the
  CLI's own retry and broken-stream handling:
  ``tests/integration/test_scripted_model_cli.py::test_overloaded_once_is_retried``,
  ``::test_broken_stream_is_an_api_error``
- a client dropping mid-stream and reconnecting with ``Last-Event-ID``:
  ``test_client_reconnect.py``; replay of a finished log by ``Last-Event-ID``/``after``:
  ``tests/integration/test_api.py::test_event_log_replays_from_last_event_id_and_after``
- the load benchmark's smoke test (concurrent sessions, gapless delivery to every
  subscriber), and the two faults its 20-session run found (max_sessions counted a
  launch in progress twice; a TLS context per runner channel lagged the loop):
  ``test_load_smoke.py``
"""

from __future__ import annotations

# the restart tests' factory of real `jupyter server` processes, shared with these tests
from ..integration.test_restart import server_factory  # noqa: F401
