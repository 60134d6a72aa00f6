/**
 * The panel's reducer from event sequences: the same cases as the Python widgets' state
 * (tests/unit/test_widget_state.py), so the panel and the notebook widgets agree.
 */

import { describe, expect, it } from 'vitest';

import { AgentEvent } from '../src/events';
import {
  SessionView,
  answered,
  applyEvent,
  applyEvents,
  callTree,
  durationSeconds,
  emptyView,
  markdown,
  summarizeInput,
  tasksDone,
  totalTokens
} from '../src/reducer';

const SID = 's1';

/** Events stamped as the session log would: seq from 1, ts one second apart. */
function events(...specs: Array<{ [key: string]: unknown }>): AgentEvent[] {
  return specs.map(
    (spec, i) =>
      ({
        seq: i + 1,
        session_id: SID,
        ts: `2026-11-26T10:00:${String(i + 1).padStart(2, '0')}+00:00`,
        ...spec
      }) as unknown as AgentEvent
  );
}

function turn(): AgentEvent[] {
  return events(
    { type: 'status', state: 'busy' },
    { type: 'message', role: 'user', text: 'analyse it' },
    { type: 'text_delta', text: 'Let me ' },
    { type: 'text_delta', text: 'look.' },
    { type: 'message', role: 'assistant', text: 'Let me look.' },
    {
      type: 'tool_use',
      tool_use_id: 't1',
      name: 'Agent',
      input: { description: 'dig' }
    },
    {
      type: 'tool_use',
      tool_use_id: 't2',
      name: 'Bash',
      input: { command: 'ls -la' },
      parent_tool_use_id: 't1'
    },
    {
      type: 'tool_result',
      tool_use_id: 't2',
      output: 'a.txt',
      parent_tool_use_id: 't1'
    },
    {
      type: 'message',
      role: 'assistant',
      text: 'found a.txt',
      parent_tool_use_id: 't1'
    },
    { type: 'tool_result', tool_use_id: 't1', output: 'sub-agent says: a.txt' },
    {
      type: 'todo_update',
      todos: [
        { content: 'Look', status: 'completed', activeForm: 'Looking' },
        { content: 'Report', status: 'in_progress', activeForm: 'Reporting' }
      ]
    },
    { type: 'text_delta', text: 'Done' },
    { type: 'message', role: 'assistant', text: 'Done.' },
    {
      type: 'result',
      cost_usd: 0.0125,
      usage: { input_tokens: 10, output_tokens: 5 },
      num_turns: 2,
      session_usage: {
        input_tokens: 1200,
        output_tokens: 300,
        total_tokens: 1500
      }
    },
    { type: 'status', state: 'idle' },
    { type: 'done' }
  );
}

/** How many of `list` were new to the view (as Python's `extend` counts them). */
function extend(view: SessionView, list: AgentEvent[]): [SessionView, number] {
  let count = 0;
  let next = view;
  for (const event of list) {
    const after = applyEvent(next, event);
    if (after !== next) {
      count += 1;
    }
    next = after;
  }
  return [next, count];
}

function snapshot(view: SessionView): unknown {
  return [
    view.lastSeq,
    view.entries.map(e => [e.role, e.text, e.streaming]),
    callTree(view).map(c => [
      c.tool_use_id,
      c.status,
      c.childNodes.map(k => k.tool_use_id)
    ]),
    view.todos.map(t => [t.content, t.status]),
    totalTokens(view),
    view.costUsd,
    view.turns,
    view.state,
    view.busy
  ];
}

describe('reducer', () => {
  it('a turn becomes chat, timeline, tasks and usage', () => {
    const [view, count] = extend(emptyView(SID), turn());
    expect(count).toBe(16);
    expect(view.entries.map(e => [e.role, e.text])).toEqual([
      ['user', 'analyse it'],
      ['assistant', 'Let me look.'],
      ['assistant', 'Done.']
    ]);
    expect(view.entries.some(e => e.streaming)).toBe(false);
    // the sub-agent's Bash call sits under its Agent (Task) call, not at the top
    const [agent, ...others] = callTree(view);
    expect(others).toEqual([]);
    expect([agent.name, agent.status]).toEqual(['Agent', 'ok']);
    expect(agent.childNodes.map(c => c.tool_use_id)).toEqual(['t2']);
    expect(agent.childNodes[0].output).toBe('a.txt');
    expect(summarizeInput(agent.childNodes[0].input)).toBe('ls -la');
    expect(agent.notes).toEqual(['found a.txt']);
    expect(durationSeconds(agent)).toBe(4); // tool_use at :06, its result at :10
    expect(view.todos.map(t => [t.content, t.status])).toEqual([
      ['Look', 'completed'],
      ['Report', 'in_progress']
    ]);
    expect(tasksDone(view)).toBe(1);
    // the gateway's meter is the session's count (sub-agents included), not the turn's usage
    expect([view.inputTokens, view.outputTokens, totalTokens(view)]).toEqual([
      1200, 300, 1500
    ]);
    expect([view.costUsd, view.turns]).toEqual([0.0125, 1]);
    expect([view.state, view.busy]).toEqual(['idle', false]);
  });

  it('text streams into one open entry until its message', () => {
    const view = applyEvents(emptyView(SID), turn().slice(0, 4));
    expect(view.entries).toHaveLength(2);
    expect(view.entries[1]).toEqual({
      role: 'assistant',
      text: 'Let me look.',
      streaming: true
    });
    expect(view.busy).toBe(true);
  });

  it('duplicates and replays change nothing', () => {
    const list = turn();
    const [live] = extend(emptyView(SID), list);
    const before = snapshot(live);
    // the same events again (a second stream, a replay from 0): the very same view
    const [again, count] = extend(live, list);
    expect(count).toBe(0);
    expect(again).toBe(live);
    expect(applyEvent(live, list[5])).toBe(live);
    expect(snapshot(live)).toEqual(before);
    // a reconnect that overlaps: events 1-9, then 5-16
    const [partial] = extend(emptyView(SID), list.slice(0, 9));
    const [resumed, fresh] = extend(partial, list.slice(4));
    expect(fresh).toBe(7);
    expect(snapshot(resumed)).toEqual(before);
  });

  it('never changes the view it was given', () => {
    const list = turn();
    const half = applyEvents(emptyView(SID), list.slice(0, 8));
    const frozen = JSON.stringify(half);
    applyEvents(half, list.slice(8));
    expect(JSON.stringify(half)).toBe(frozen);
  });

  it('replaying the log rebuilds the same state as the live stream', () => {
    const list = [
      ...turn(),
      ...turn()
        .filter(e => e.type !== 'todo_update')
        .map(e => ({ ...e, seq: e.seq + 16 }))
    ];
    let live = emptyView(SID);
    for (const event of list) {
      live = applyEvent(live, event);
    }
    const replayed = applyEvents(emptyView(SID), list);
    expect(snapshot(live)).toEqual(snapshot(replayed));
    expect([replayed.turns, replayed.lastSeq]).toEqual([2, 32]);
    expect(replayed.entries.filter(e => e.role === 'user')).toHaveLength(2);
  });

  it('without deltas a message is a whole entry', () => {
    const view = applyEvents(
      emptyView(SID),
      events({ type: 'message', role: 'assistant', text: 'whole' })
    );
    expect(view.entries.map(e => [e.text, e.streaming])).toEqual([
      ['whole', false]
    ]);
  });

  it('a permission request waits until answered or resulted', () => {
    let view = applyEvents(
      emptyView(SID),
      events(
        {
          type: 'tool_use',
          tool_use_id: 't1',
          name: 'Bash',
          input: { command: 'rm x' }
        },
        {
          type: 'permission_request',
          request_id: 't1',
          tool_name: 'Bash',
          input: { command: 'rm x' }
        }
      )
    );
    expect(view.permissions.map(p => p.request_id)).toEqual(['t1']);
    expect(view.calls.t1.status).toBe('waiting');
    expect(summarizeInput(view.permissions[0].input, 200)).toBe('rm x');
    view = answered(view, 't1');
    expect(view.permissions).toEqual([]);
    expect(view.calls.t1.status).toBe('running');

    // answered elsewhere (a notebook widget, another panel): the tool's result clears it
    const other = applyEvents(
      emptyView(SID),
      events(
        {
          type: 'permission_request',
          request_id: 'p9',
          tool_name: 'Write',
          input: {}
        },
        { type: 'tool_use', tool_use_id: 'p9', name: 'Write', input: {} },
        {
          type: 'tool_result',
          tool_use_id: 'p9',
          is_error: true,
          output: 'denied'
        }
      )
    );
    expect(other.permissions).toEqual([]);
    expect(other.calls.p9.status).toBe('error');
  });

  it('a turn cut off leaves no spinner and no stale request', () => {
    const view = applyEvents(
      emptyView(SID),
      events(
        { type: 'status', state: 'busy' },
        { type: 'text_delta', text: 'work' },
        {
          type: 'tool_use',
          tool_use_id: 't1',
          name: 'Bash',
          input: { command: 'x' }
        },
        {
          type: 'permission_request',
          request_id: 't1',
          tool_name: 'Bash',
          input: {}
        },
        {
          type: 'error',
          message: 'the agent was interrupted',
          code: 'interrupted'
        },
        { type: 'done' }
      )
    );
    expect(view.calls.t1.status).toBe('interrupted');
    expect(durationSeconds(view.calls.t1)).toBeNull();
    expect(view.permissions).toEqual([]);
    expect(view.busy).toBe(false);
    const last = view.entries[view.entries.length - 1];
    expect(last.role).toBe('error');
    expect(last.text).toContain('interrupted');
    expect(view.entries.some(e => e.streaming)).toBe(false);
  });

  it('a failed session ends its running calls', () => {
    const view = applyEvents(
      emptyView(SID),
      events(
        { type: 'tool_use', tool_use_id: 't1', name: 'Bash', input: {} },
        { type: 'status', state: 'failed', detail: 'container died' }
      )
    );
    expect(view.calls.t1.status).toBe('interrupted');
    expect([view.state, view.detail]).toEqual(['failed', 'container died']);
  });

  it('usage without the gateway meter adds up turn usage', () => {
    const usage = {
      input_tokens: 10,
      cache_read_input_tokens: 90,
      output_tokens: 7
    };
    const view = applyEvents(
      emptyView(SID),
      events({ type: 'result', usage }, { type: 'result', usage })
    );
    expect([view.inputTokens, view.outputTokens]).toEqual([200, 14]);
    expect(view.costUsd).toBe(0);
  });

  it('markdown snapshot', () => {
    let view = applyEvents(emptyView(SID), turn());
    const idle = { type: 'status', state: 'idle' };
    view = applyEvents(
      view,
      events(...Array(16).fill(idle), { type: 'error', message: 'boom' }).map(
        e => (e.type === 'error' ? { ...e, code: 'error' } : e)
      )
    );
    expect(markdown(view)).toBe(
      '> analyse it\n\nLet me look.\n\nDone.\n\n**Error:** boom'
    );
  });

  it('events without a seq are always applied; the session id is taken from the first', () => {
    const view = applyEvents(emptyView(), [
      {
        seq: 0,
        session_id: 'sx',
        ts: '',
        type: 'message',
        role: 'user',
        text: 'a'
      },
      {
        seq: 0,
        session_id: 'sx',
        ts: '',
        type: 'message',
        role: 'user',
        text: 'a'
      }
    ]);
    expect(view.entries).toHaveLength(2);
    expect(view.sessionId).toBe('sx');
  });
});

describe('summarizeInput', () => {
  it('says what a call does in one line', () => {
    expect(summarizeInput({ command: 'ls   -la\n  /tmp' })).toBe('ls -la /tmp');
    expect(summarizeInput({ file_path: '/w/a.py', content: 'x' })).toBe(
      '/w/a.py'
    );
    expect(summarizeInput({ a: 1 })).toBe('{"a": 1}');
    // paths relative to the workspace, as in the Python widget
    expect(summarizeInput({ file_path: '/workspace/src/a.py' })).toBe(
      'src/a.py'
    );
    expect(
      summarizeInput(
        { file_path: '/srv/ws/0123-abcd/notes.md' },
        80,
        '0123-abcd'
      )
    ).toBe('notes.md');
    expect(summarizeInput({ file_path: '/etc/passwd' }, 80, '0123-abcd')).toBe(
      '/etc/passwd'
    );
    expect(summarizeInput({ b: [1, { d: 'é', c: null }], a: true })).toBe(
      '{"a": true, "b": [1, {"c": null, "d": "é"}]}'
    );
    expect(summarizeInput({})).toBe('');
    const long = summarizeInput({ command: 'x'.repeat(200) });
    expect(Array.from(long)).toHaveLength(80);
    expect(long.endsWith('\u2026')).toBe(true);
  });
});
