"""A scripted Anthropic-compatible Messages API server: it plays the model in tests and
in demo mode, so the real claude CLI, through the real SDK, runs real tools.

Usage::

    with ScriptedModelServer(scripts="my.yaml", api_key="k") as model:
        env = model.client_env(config_dir, tmp_dir)   # ANTHROPIC_BASE_URL etc. for the CLI
        ...
        model.message_requests[0].tool_names           # what the model was offered

or ``async with ScriptedModelServer(...)`` to serve in the running loop, the pytest
fixture ``scripted_model``, or ``agcluster-scripted-model --script my.yaml``
(``python -m agcluster_jupyter.testing``).

Script format (YAML, JSON, or the same as Python lists and dicts)::

    - name: make a file                # optional, for reports
      match: "write a file"            # case-insensitive substring of the user's prompt,
                                       # "re:<regex>" (re.search), or a list of either;
                                       # omitted = matches every prompt (a fallback)
      steps:                           # one step per model response
        - - {thinking: "Plan it."}
          - {text: "Let me write it."}
          - tool_use: {name: Write, input: {file_path: "{cwd}/out.txt", content: "hi"}}
        - - tool_use: {name: Bash, input: {command: "cat out.txt"}}
      final: "Done: {prompt}"          # said when the steps run out (default "Done.")

- Scenarios are tried in order; the first whose ``match`` fits the latest real user
  prompt wins. With no match the server says a friendly scripted fallback.
- The step is chosen from the conversation in the request, not from a request
  counter: step N is played when N model responses follow the latest prompt. The same
  script therefore serves concurrent sessions, retries and resumed sessions. The latest
  prompt skips tool-result messages, ``<system-reminder>`` text and interrupt markers.
- A step is a list of blocks (a lone block or a string is a one-block step). A step
  without a ``tool_use`` ends the turn.
- Blocks: ``{text: ...}``, ``{thinking: ...}``, ``{tool_use: {name, input, optional}}``.
  ``optional: true`` drops the call when the request does not offer that tool (a step
  left without tool calls is skipped), so one script fits any tool set.
- Strings may use ``{prompt}`` (the latest prompt), ``{cwd}`` (the CLI's working
  directory, from its system context), ``{task:N}`` (the id of the N-th task that
  TaskCreate made this turn; N before that) and ``{result}`` (the text of the last tool
  result the model is answering, e.g. what the Bash call printed; "" in a first step; at
  most 2000 characters). Other braces are left alone.
- The named groups of the ``re:`` pattern that matched are variables too::

      match: 're:(?i)\\bwrite (?P<file>[\\w-]+\\.py)\\b'   # {file} in steps and final

  A group that took no part in the match is "". ``prompt``, ``cwd`` and ``result`` are
  not group names (a script error).
- A refused tool call ends the scenario: when a tool result the model is answering is a
  denial (an error worded ``Permission to use <tool> was denied...``, as the runner words
  every permission denial, or the CLI's "The user doesn't want to proceed..."), the reply
  is "I could not write `notes.md`: the Write was refused (<reason>) ..." instead of the
  next step or ``final`` (``Reply.kind == "refused"``). A tool that ran and failed is
  not a refusal: its steps go on.
- Fault blocks, combined with the step's content: ``{error: 429}`` (an HTTP error with an
  Anthropic error body: 429 rate_limit_error, 529 overloaded_error, 500 api_error, ...),
  ``{broken_stream: true}`` or ``{broken_stream: N}`` (close the connection after N
  content deltas; true = 1), ``{delay: 0.05}`` (seconds before each delta);
  ``message: ...`` next to ``error`` sets the error body's message. Add
  ``times: K`` to a fault to serve it only K times per session and step, so a retry
  then succeeds.
- A side request for structured output (no tools and ``output_config.format`` with a
  JSON schema, such as the session title) gets JSON that fits the schema.

``on_delta=callback`` is called with ``(request, index, data)`` as each streamed content
delta is about to be sent (benchmarks timestamp deltas with it). Streams are sent
with TCP_NODELAY: each event leaves when it is flushed.

A request needs an ``x-api-key`` (or ``Authorization: Bearer``) the server accepts,
else 401 with ``x-should-retry: false``. Every request is recorded (``.requests``,
``.message_requests``; ``.reset()`` clears them).
"""

from __future__ import annotations

from .script import (
    Fault,
    Reply,
    Scenario,
    Script,
    ScriptError,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    choose_reply,
    conversation_position,
    load_script,
    parse_script,
)
from .server import DeltaHook, RecordedRequest, ScriptedModelServer, demo_script, load_scripts

__all__ = [
    "DeltaHook",
    "Fault",
    "RecordedRequest",
    "Reply",
    "Scenario",
    "Script",
    "ScriptError",
    "ScriptedModelServer",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "choose_reply",
    "conversation_position",
    "demo_script",
    "load_script",
    "load_scripts",
    "parse_script",
]
