/**
 * Parity with the notebook widgets' Python `SessionView`: each case is an event delivery
 * (with duplicates and overlapping replays) and the state Python folded from it.  pytest
 * (tests/unit/test_labextension_unit.py) generates fresh cases and passes them in
 * AGC_PARITY_FILE; without it, the committed sample in test/fixtures/ is used.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { AgentEvent } from '../src/events';
import {
  SessionView,
  ToolCallNode,
  applyEvent,
  callTree,
  durationSeconds,
  emptyView,
  markdown,
  runningCalls,
  summarizeInput
} from '../src/reducer';

interface ParityCase {
  name: string;
  events: AgentEvent[];
  expected: { [key: string]: unknown };
}

const file =
  process.env.AGC_PARITY_FILE ||
  new URL('fixtures/parity.json', import.meta.url);
const cases = JSON.parse(readFileSync(file, 'utf-8')) as ParityCase[];

function call(node: ToolCallNode, sessionId: string): unknown {
  return {
    id: node.tool_use_id,
    name: node.name,
    status: node.status,
    output: node.output,
    notes: node.notes,
    duration: durationSeconds(node),
    summary: summarizeInput(node.input, 80, sessionId),
    children: node.childNodes.map(child => call(child, sessionId))
  };
}

function snapshot(view: SessionView, applied: number): unknown {
  return {
    applied,
    session_id: view.sessionId,
    last_seq: view.lastSeq,
    state: view.state,
    detail: view.detail,
    busy: view.busy,
    turns: view.turns,
    cost_usd: view.costUsd,
    input_tokens: view.inputTokens,
    output_tokens: view.outputTokens,
    entries: view.entries.map(e => [e.role, e.text, e.streaming]),
    timeline: callTree(view).map(node => call(node, view.sessionId)),
    todos: view.todos.map(t => [t.content, t.status, t.activeForm]),
    permissions: view.permissions.map(p => [
      p.request_id,
      p.tool_name,
      summarizeInput(p.input, 200)
    ]),
    running: runningCalls(view)
      .map(c => c.tool_use_id)
      .sort(),
    markdown: markdown(view)
  };
}

describe(`parity with Python: ${cases.length} cases`, () => {
  it.each(cases)('$name', ({ events, expected }) => {
    let view = emptyView();
    let applied = 0;
    for (const event of events) {
      const next = applyEvent(view, event);
      applied += next === view ? 0 : 1;
      view = next;
    }
    expect(snapshot(view, applied)).toEqual(expected);
  });
});
