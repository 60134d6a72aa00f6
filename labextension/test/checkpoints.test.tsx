// @vitest-environment jsdom
/**
 * Per-turn checkpoints in the panel: the reducer keeps each turn's `checkpoint` with the
 * turn (a chat entry after its replies) and notes a `rewind`; the diff view renders the
 * agent's file names and diffs as text only, and its actions call the REST client.
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React from 'react';
import { afterEach, describe, expect, it } from 'vitest';

import { CheckpointAPI, CheckpointDiff } from '../src/api';
import { DiffView, diffLineKind } from '../src/diffview';
import { AgentEvent, EVENT_TYPES, parseEvent } from '../src/events';
import { applyEvents, emptyView, markdown } from '../src/reducer';
import { SessionInfo } from '../src/api';
import { forkOrder } from '../src/sessions';
import { $, $$, until } from './dom';

const SID = 's1';
const HOSTILE = '<img src=x onerror=alert(1)>';

function events(...specs: Array<{ [key: string]: unknown }>): AgentEvent[] {
  return specs.map(
    (spec, i) =>
      ({
        seq: i + 1,
        session_id: SID,
        ts: `2026-12-03T10:00:${String(i + 1).padStart(2, '0')}+00:00`,
        ...spec
      }) as unknown as AgentEvent
  );
}

const CHECKPOINT = {
  type: 'checkpoint',
  turn: 1,
  files_changed: 2,
  added: 1,
  modified: 1,
  deleted: 0,
  lines_added: 5,
  lines_removed: 1
};

describe('checkpoint and rewind events', () => {
  it('are events of the contract', () => {
    expect(EVENT_TYPES.has('checkpoint')).toBe(true);
    expect(EVENT_TYPES.has('rewind')).toBe(true);
    const parsed = parseEvent(JSON.stringify({ seq: 3, ...CHECKPOINT }));
    expect(parsed?.type).toBe('checkpoint');
  });

  it("keep a turn's checkpoint with the turn, after its replies", () => {
    const view = applyEvents(
      emptyView(SID),
      events(
        { type: 'status', state: 'busy' },
        { type: 'message', role: 'user', text: 'write it' },
        { type: 'text_delta', text: 'Writing' },
        CHECKPOINT,
        { type: 'done' }
      )
    );
    expect(view.entries.map(e => e.role)).toEqual([
      'user',
      'assistant',
      'checkpoint'
    ]);
    expect(view.entries[1].streaming).toBe(false);
    const entry = view.entries[2];
    expect(entry.checkpoint).toEqual({
      turn: 1,
      files_changed: 2,
      added: 1,
      modified: 1,
      deleted: 0,
      lines_added: 5,
      lines_removed: 1
    });
    expect(entry.text).toBe('2 files changed (+5 \u22121 lines)');
    expect(view.checkpoints[1].files_changed).toBe(2);
    expect(view.busy).toBe(false);
  });

  it('keep a turn that changed nothing out of the chat', () => {
    const view = applyEvents(
      emptyView(SID),
      events(
        { type: 'message', role: 'user', text: 'hi' },
        { ...CHECKPOINT, files_changed: 0, added: 0, modified: 0 },
        { type: 'done' }
      )
    );
    expect(view.entries.map(e => e.role)).toEqual(['user']);
    expect(view.checkpoints[1].files_changed).toBe(0);
  });

  it('note a rewind in the transcript', () => {
    const view = applyEvents(
      emptyView(SID),
      events(
        { type: 'message', role: 'user', text: 'write it' },
        { ...CHECKPOINT, files_changed: 1 },
        { type: 'done' },
        { type: 'rewind', turn: 1 }
      )
    );
    const note = view.entries[view.entries.length - 1];
    expect(note.role).toBe('note');
    expect(note.text).toContain('before turn 1');
    expect(markdown(view)).toContain('1 file changed');
    // a replayed event changes nothing
    const again = applyEvents(view, events({ type: 'rewind', turn: 1 }));
    expect(again).toBe(view);
  });
});

describe('forks in the sessions list', () => {
  it('sit under their parent', () => {
    const s = (id: string, parent?: string): SessionInfo =>
      ({
        session_id: id,
        forked_from: parent ? { session_id: parent, turn: 1 } : null
      }) as unknown as SessionInfo;
    const order = forkOrder([
      s('fork2', 'fork1'),
      s('a'),
      s('fork1', 'b'),
      s('b'),
      s('orphan', 'gone')
    ]);
    expect(order.map(o => [o.session.session_id, o.depth])).toEqual([
      ['a', 0],
      ['b', 0],
      ['fork1', 1],
      ['fork2', 2],
      ['orphan', 0]
    ]);
  });
});

// -- the diff view --------------------------------------------------------------------------

const DIFF: CheckpointDiff = {
  turn: 1,
  files: [
    {
      path: `${HOSTILE}.txt`,
      status: 'added',
      binary: false,
      size_before: null,
      size_after: 40,
      diff: `--- /dev/null\n+++ b/${HOSTILE}.txt\n@@ -0,0 +1,2 @@\n+${HOSTILE}\n+<script>alert(2)</script>\n`
    },
    {
      path: 'notes.md',
      status: 'modified',
      binary: false,
      size_before: 10,
      size_after: 12,
      diff: '--- a/notes.md\n+++ b/notes.md\n@@ -1 +1 @@\n-old\n+new\n ctx\n'
    },
    {
      path: 'nb.ipynb',
      status: 'modified',
      binary: false,
      size_before: 100,
      size_after: 200,
      cells: [
        { status: 'added', index: 1, cell_type: 'code', source: HOSTILE },
        {
          status: 'modified',
          index: 0,
          cell_type: 'markdown',
          changed: ['source'],
          diff: '@@ -1 +1 @@\n-a\n+b\n'
        }
      ]
    },
    {
      path: 'img.png',
      status: 'deleted',
      binary: true,
      size_before: 2048,
      size_after: null
    }
  ]
};

interface Call {
  name: string;
  args: unknown[];
}

function fakeCheckpoints(calls: Call[], fail = ''): CheckpointAPI {
  const record =
    (name: string, reply: unknown) =>
    async (...args: unknown[]): Promise<unknown> => {
      calls.push({ name, args });
      if (fail === name) {
        throw new Error('a turn is running: wait for it to finish');
      }
      return reply;
    };
  return {
    diff: record('diff', DIFF),
    list: record('list', {
      checkpoints: [{ turn: 1 }, { turn: 2 }, { turn: 3 }],
      total: 3
    }),
    restore: record('restore', { turn: 1, restored: ['a', 'b'] }),
    undo: record('undo', { restored: ['a', 'b'], undid: 'restore' }),
    rewind: record('rewind', { turn: 1, restored: ['a'] }),
    fork: record('fork', { session_id: 'forked-1' })
  } as unknown as CheckpointAPI;
}

class Host extends ReactWidget {
  constructor(private element: JSX.Element) {
    super();
  }
  protected render(): JSX.Element {
    return this.element;
  }
}

let widgets: Widget[] = [];
afterEach(() => {
  widgets.forEach(w => w.dispose());
  widgets = [];
  document.body.innerHTML = '';
});

function mount(element: JSX.Element): HTMLElement {
  const widget = new Host(element);
  Widget.attach(widget, document.body);
  widget.update();
  widgets.push(widget);
  return widget.node;
}

describe('the diff view', () => {
  it('renders file names and diffs as text only', async () => {
    const calls: Call[] = [];
    const node = mount(
      <DiffView checkpoints={fakeCheckpoints(calls)} sessionId={SID} turn={1} />
    );
    const files = await until(() => {
      const found = $$('diff-file', node);
      return found.length === 4 && found;
    }, 'the files');
    expect(node.querySelector('img, script')).toBeNull();
    expect(files[0].getAttribute('data-path')).toBe(`${HOSTILE}.txt`);
    expect($('diff-file-path', files[0])!.textContent).toBe(`${HOSTILE}.txt`);
    expect($('diff-text', files[0])!.textContent).toContain(`+${HOSTILE}`);
    expect(files.map(f => f.getAttribute('data-status'))).toEqual([
      'added',
      'modified',
      'modified',
      'deleted'
    ]);
    const kinds = $$('diff-line', files[1]).map(l =>
      l.getAttribute('data-kind')
    );
    expect(kinds).toEqual(['meta', 'meta', 'hunk', 'del', 'add', 'context']);
    expect($$('diff-line', files[1])[3].className).toContain(
      'jp-AgentsDiff-line-del'
    );
    expect($$('diff-cell', files[2]).length).toBe(2);
    expect($('diff-cells', files[2])!.textContent).toContain(HOSTILE);
    expect($('diff-binary', files[3])!.textContent).toContain('2.0 KB');
  });

  it('restores the turn’s files, then undoes', async () => {
    const calls: Call[] = [];
    const node = mount(
      <DiffView checkpoints={fakeCheckpoints(calls)} sessionId={SID} turn={1} />
    );
    const restore = await until(() => {
      const b = $('diff-restore', node) as HTMLButtonElement | null;
      return b && !b.disabled && b;
    }, 'Restore enabled');
    restore.click();
    const undo = await until(() => $('diff-undo', node), 'Undo');
    expect(calls.find(c => c.name === 'restore')!.args).toEqual([
      SID,
      1,
      DIFF.files.map(f => f.path)
    ]);
    expect($('diff-message', node)!.textContent).toContain('Restored 2 files');
    undo.click();
    await until(() => !$('diff-undo', node), 'Undo gone');
    expect(calls.some(c => c.name === 'undo')).toBe(true);
  });

  it('rewinds only when confirmed, saying what is undone', async () => {
    const calls: Call[] = [];
    const asked: { title: string; body: string }[] = [];
    let answer = false;
    const node = mount(
      <DiffView
        checkpoints={fakeCheckpoints(calls)}
        sessionId={SID}
        turn={1}
        confirm={async q => {
          asked.push(q);
          return answer;
        }}
      />
    );
    const rewind = await until(() => {
      const b = $('diff-rewind', node) as HTMLButtonElement | null;
      return b && !b.disabled && calls.some(c => c.name === 'list') && b;
    }, 'Rewind enabled');
    await new Promise(r => setTimeout(r, 20));
    rewind.click();
    await until(() => asked.length === 1, 'the question');
    expect(asked[0].body).toContain('notes.md');
    expect(asked[0].body).toContain('1, 2, 3');
    expect(calls.some(c => c.name === 'rewind')).toBe(false);
    answer = true;
    rewind.click();
    await until(() => $('diff-undo', node), 'Undo after the rewind');
    expect(calls.find(c => c.name === 'rewind')!.args).toEqual([SID, 1]);
  });

  it("shows the server's message when an action is refused", async () => {
    const calls: Call[] = [];
    const forked: string[] = [];
    const node = mount(
      <DiffView
        checkpoints={fakeCheckpoints(calls, 'restore')}
        sessionId={SID}
        turn={1}
        onForked={id => forked.push(id)}
      />
    );
    const restore = await until(() => {
      const b = $('diff-restore', node) as HTMLButtonElement | null;
      return b && !b.disabled && b;
    }, 'Restore enabled');
    restore.click();
    const error = await until(() => $('diff-error', node), 'the error');
    expect(error.textContent).toBe('a turn is running: wait for it to finish');
    $('diff-fork', node)!.click();
    await until(() => forked.length === 1, 'the fork');
    expect(forked).toEqual(['forked-1']);
    expect(calls.find(c => c.name === 'fork')!.args).toEqual([SID, 1]);
  });

  it('classes diff lines', () => {
    expect(diffLineKind('+x')).toBe('add');
    expect(diffLineKind('-x')).toBe('del');
    expect(diffLineKind('+++ b/x')).toBe('meta');
    expect(diffLineKind('@@ -1 +1 @@')).toBe('hunk');
    expect(diffLineKind(' x')).toBe('context');
  });
});
