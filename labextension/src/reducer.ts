/**
 * What a session looks like after a run of events: the model behind the panel.
 *
 * `applyEvent(view, event)` folds one event into a new `SessionView` (the old one is left
 * untouched) with the same semantics as the notebook widgets' Python `SessionView`
 * (`agcluster_jupyter/kernel/widgets/state.py`): chat entries (streamed `text_delta` pieces, then
 * the authoritative `message` replacing them), the tool timeline with sub-agent calls
 * nested under their Task/Agent call, the task list, waiting permission requests, tokens
 * and cost.  An event already seen (`seq` at or below the last one applied) returns the
 * same view: a replayed log, an overlapping reconnect or the same event from two streams
 * change nothing.  No I/O, no DOM: the tests drive it with event sequences.
 *
 * Size: one fold over every event type, kept in one place so it reads next to its Python
 * twin (`kernel/widgets/state.py`) case by case.
 */

import {
  AgentEvent,
  CheckpointEvent,
  JSONObject,
  SessionState,
  TodoItem
} from './events';

/** An error for the chat: the message, with its code when that adds something (the same
 * rule as the Python widget's `error_text`). */
export function errorText(message: string, code?: string | null): string {
  if (
    !code ||
    code === 'error' ||
    message.toLowerCase().includes(code.replace(/_/g, ' '))
  ) {
    return message;
  }
  return `${message} (${code})`;
}

export type ToolStatus = 'running' | 'waiting' | 'ok' | 'error' | 'interrupted';

/** One tool call of the timeline; a Task/Agent call lists its sub-agent's calls. */
export interface ToolCall {
  readonly tool_use_id: string;
  readonly name: string;
  readonly input: JSONObject;
  readonly parent_tool_use_id: string | null;
  readonly status: ToolStatus;
  /** ts of the call and of its result (server clock); '' when unknown */
  readonly started: string;
  readonly ended: string;
  readonly output: string;
  /** the ids of the sub-agent's calls, in order (see `callTree`) */
  readonly children: readonly string[];
  /** the sub-agent's own text, for Task/Agent calls */
  readonly notes: readonly string[];
}

/** What a finished turn changed in the workspace (its `checkpoint` event). */
export interface TurnCheckpoint {
  readonly turn: number;
  readonly files_changed: number;
  readonly added: number;
  readonly modified: number;
  readonly deleted: number;
  readonly lines_added: number;
  readonly lines_removed: number;
}

/**
 * One bubble of the chat: the user's prompt, an assistant text block, an error, a turn's
 * file changes (`checkpoint`, after the turn's replies) or a note (a rewind).
 */
export interface ChatEntry {
  readonly role: 'user' | 'assistant' | 'error' | 'checkpoint' | 'note';
  readonly text: string;
  /** still receiving `text_delta` pieces */
  readonly streaming: boolean;
  /** the turn's checkpoint (role `checkpoint`) */
  readonly checkpoint?: TurnCheckpoint;
}

/** "N files changed (+a −r lines)" for a checkpoint. */
export function checkpointLabel(c: TurnCheckpoint): string {
  const files = `${c.files_changed} ${c.files_changed === 1 ? 'file' : 'files'} changed`;
  return `${files} (+${c.lines_added} \u2212${c.lines_removed} lines)`;
}

export interface PendingPermission {
  readonly request_id: string;
  readonly tool_name: string;
  readonly input: JSONObject;
}

export interface SessionView {
  readonly sessionId: string;
  readonly state: SessionState | string;
  readonly detail: string;
  readonly lastSeq: number;
  readonly entries: readonly ChatEntry[];
  readonly calls: { readonly [toolUseId: string]: ToolCall };
  /** top-level call ids in order; sub-agent calls sit in their parent's `children` */
  readonly timeline: readonly string[];
  readonly todos: readonly TodoItem[];
  /** waiting permission requests, oldest first */
  readonly permissions: readonly PendingPermission[];
  readonly turns: number;
  readonly busy: boolean;
  readonly costUsd: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** index in `entries` of the assistant block being streamed, or -1 */
  readonly openEntry: number;
  /** each turn's checkpoint, by turn number */
  readonly checkpoints: { readonly [turn: number]: TurnCheckpoint };
}

export function emptyView(sessionId = ''): SessionView {
  return {
    sessionId,
    state: 'starting',
    detail: '',
    lastSeq: 0,
    entries: [],
    calls: {},
    timeline: [],
    todos: [],
    permissions: [],
    turns: 0,
    busy: false,
    costUsd: 0,
    inputTokens: 0,
    outputTokens: 0,
    openEntry: -1,
    checkpoints: {}
  };
}

// -- reading -------------------------------------------------------------------------------

export function totalTokens(view: SessionView): number {
  return view.inputTokens + view.outputTokens;
}

export function tasksDone(view: SessionView): number {
  return view.todos.filter(t => t.status === 'completed').length;
}

export function runningCalls(view: SessionView): ToolCall[] {
  return Object.values(view.calls).filter(
    c => c.status === 'running' || c.status === 'waiting'
  );
}

/** Seconds from the call to its result (server clock); null while running. */
export function durationSeconds(call: ToolCall): number | null {
  if (!call.started || !call.ended) {
    return null;
  }
  const start = Date.parse(call.started);
  const end = Date.parse(call.ended);
  return Number.isNaN(start) || Number.isNaN(end) ? null : (end - start) / 1000;
}

/** A call with its sub-agent's calls resolved, for rendering. */
export interface ToolCallNode extends ToolCall {
  readonly childNodes: readonly ToolCallNode[];
}

/** The timeline as a tree: top-level calls, each with its sub-agent calls nested. */
export function callTree(view: SessionView): ToolCallNode[] {
  const node = (id: string, depth: number): ToolCallNode[] => {
    const call = view.calls[id];
    if (call === undefined || depth > 32) {
      return [];
    }
    return [
      {
        ...call,
        childNodes: call.children.flatMap(child => node(child, depth + 1))
      }
    ];
  };
  return view.timeline.flatMap(id => node(id, 0));
}

/** The input field that says most about a call, per tool (first present wins). */
const SUBJECT_KEYS = [
  'command',
  'file_path',
  'notebook_path',
  'path',
  'pattern',
  'url',
  'query',
  'description',
  'subject',
  'prompt'
];

/** JSON as Python's `json.dumps(value, sort_keys=True, ensure_ascii=False)` writes it. */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(pythonJson).join(', ')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    const items = keys.map(
      k =>
        `${JSON.stringify(k)}: ${pythonJson((value as { [key: string]: unknown })[k])}`
    );
    return `{${items.join(', ')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** One line that says what a call does: its command, file, pattern, ... or its JSON. */
export function summarizeInput(
  input: JSONObject,
  limit = 80,
  sessionId = ''
): string {
  let text: string | null = null;
  for (const key of SUBJECT_KEYS) {
    const value = input[key];
    if (typeof value === 'string' && value.trim()) {
      text = value.trim().split(/\s+/).join(' ');
      if (PATH_KEYS.includes(key)) {
        text = workspacePath(text, sessionId);
      }
      break;
    }
  }
  if (text === null) {
    text = Object.keys(input).length ? pythonJson(input) : '';
  }
  const chars = Array.from(text); // code points, as Python counts them
  return chars.length <= limit
    ? text
    : chars.slice(0, limit - 1).join('') + '\u2026';
}

const PATH_KEYS = ['file_path', 'notebook_path', 'path'];

/** A path as the user sees it: relative to the session's workspace when inside it
 * (`/workspace/...` in a container, `.../<session id>/...` on the host); the same rule
 * as the Python widget's `workspace_path`. */
export function workspacePath(path: string, sessionId = ''): string {
  for (const marker of [sessionId ? `/${sessionId}/` : '', '/workspace/']) {
    const at = marker ? path.indexOf(marker) : -1;
    if (at >= 0) {
      return path.slice(at + marker.length) || '.';
    }
  }
  return path;
}

/** The conversation as Markdown. */
export function markdown(view: SessionView): string {
  const parts: string[] = [];
  for (const entry of view.entries) {
    if (entry.role === 'user') {
      parts.push('> ' + entry.text.split('\n').join('\n> '));
    } else if (entry.role === 'error') {
      parts.push(`**Error:** ${entry.text}`);
    } else if (entry.role === 'checkpoint' || entry.role === 'note') {
      parts.push(`_${entry.text}_`);
    } else if (entry.text.trim()) {
      parts.push(entry.text);
    }
  }
  return parts.join('\n\n');
}

// -- folding events in ---------------------------------------------------------------------

/** `view` with `event` folded in; the same `view` if the event was already applied. */
export function applyEvent(view: SessionView, event: AgentEvent): SessionView {
  if (event.seq && event.seq <= view.lastSeq) {
    return view;
  }
  let next: SessionView = { ...view };
  if (event.seq) {
    next = { ...next, lastSeq: event.seq };
  }
  if (!next.sessionId && event.session_id) {
    next = { ...next, sessionId: event.session_id };
  }
  return fold(next, event);
}

/** Apply each event in turn. */
export function applyEvents(
  view: SessionView,
  events: Iterable<AgentEvent>
): SessionView {
  let next = view;
  for (const event of events) {
    next = applyEvent(next, event);
  }
  return next;
}

/** A timed-out permission request without a message of its own (state.py: the same). */
export const DENIED_IN_TIME = 'denied: nobody answered in time';

/** A permission request was answered here: stop offering it. */
export function answered(view: SessionView, requestId: string): SessionView {
  let next: SessionView = {
    ...view,
    permissions: view.permissions.filter(p => p.request_id !== requestId)
  };
  const call = view.calls[requestId];
  if (call !== undefined && call.status === 'waiting') {
    next = withCall(next, { ...call, status: 'running' });
  }
  return next;
}

function fold(view: SessionView, event: AgentEvent): SessionView {
  switch (event.type) {
    case 'status': {
      let next: SessionView = {
        ...view,
        state: event.state,
        detail: event.detail ?? ''
      };
      if (event.state === 'busy') {
        next = { ...next, busy: true };
      } else if (event.state === 'stopped' || event.state === 'failed') {
        next = endTurn(next, 'interrupted');
      }
      return next;
    }
    case 'text_delta': {
      if (event.parent_tool_use_id) {
        return view; // a sub-agent's text arrives whole as a message, under its Task
      }
      if (view.openEntry < 0) {
        return {
          ...view,
          entries: [
            ...view.entries,
            { role: 'assistant', text: event.text, streaming: true }
          ],
          openEntry: view.entries.length
        };
      }
      const open = view.entries[view.openEntry];
      return replaceEntry(view, view.openEntry, {
        ...open,
        text: open.text + event.text
      });
    }
    case 'message': {
      if (event.parent_tool_use_id) {
        const parent = view.calls[event.parent_tool_use_id];
        if (parent !== undefined && event.role === 'assistant') {
          return withCall(view, {
            ...parent,
            notes: [...parent.notes, event.text]
          });
        }
        return view;
      }
      if (event.role === 'user') {
        const next = closeBlock(view);
        return {
          ...next,
          entries: [
            ...next.entries,
            { role: 'user', text: event.text, streaming: false }
          ],
          busy: true
        };
      }
      if (event.role === 'assistant') {
        // the whole block is authoritative: it replaces whatever deltas came (or not)
        if (view.openEntry >= 0) {
          const replaced = replaceEntry(view, view.openEntry, {
            role: 'assistant',
            text: event.text,
            streaming: true
          });
          return closeBlock(replaced);
        }
        return {
          ...view,
          entries: [
            ...view.entries,
            { role: 'assistant', text: event.text, streaming: false }
          ]
        };
      }
      return view;
    }
    case 'tool_use': {
      const next = closeBlock(view);
      const waiting = next.permissions.some(
        p => p.request_id === event.tool_use_id
      );
      const call: ToolCall = {
        tool_use_id: event.tool_use_id,
        name: event.name,
        input: { ...(event.input ?? {}) },
        parent_tool_use_id: event.parent_tool_use_id ?? null,
        status: waiting ? 'waiting' : 'running',
        started: event.ts,
        ended: '',
        output: '',
        children: [],
        notes: []
      };
      const withNew = withCall(next, call);
      const parent = event.parent_tool_use_id
        ? next.calls[event.parent_tool_use_id]
        : undefined;
      if (parent !== undefined) {
        return withCall(withNew, {
          ...parent,
          children: [...parent.children, call.tool_use_id]
        });
      }
      return { ...withNew, timeline: [...withNew.timeline, call.tool_use_id] };
    }
    case 'tool_result': {
      const next: SessionView = {
        ...view,
        permissions: view.permissions.filter(
          p => p.request_id !== event.tool_use_id
        )
      };
      const call = next.calls[event.tool_use_id];
      if (call === undefined) {
        return next;
      }
      return withCall(next, {
        ...call,
        status: event.is_error ? 'error' : 'ok',
        output: event.output ?? '',
        ended: event.ts
      });
    }
    case 'todo_update':
      return { ...view, todos: [...event.todos] };
    case 'permission_request': {
      const request: PendingPermission = {
        request_id: event.request_id,
        tool_name: event.tool_name,
        input: { ...(event.input ?? {}) }
      };
      const others = view.permissions.filter(
        p => p.request_id !== event.request_id
      );
      const at = view.permissions.findIndex(
        p => p.request_id === event.request_id
      );
      const permissions =
        at < 0
          ? [...others, request]
          : view.permissions.map((p, i) => (i === at ? request : p));
      let next: SessionView = { ...view, permissions };
      const call = next.calls[event.request_id];
      if (call !== undefined && call.status === 'running') {
        next = withCall(next, { ...call, status: 'waiting' });
      }
      return next;
    }
    case 'permission_answer': {
      // answered somewhere (another tab, a notebook, REST, a timeout): not waiting here
      const next = answered(view, event.request_id);
      if (event.reason !== 'timeout') {
        return next;
      }
      const closed = closeBlock(next);
      return {
        ...closed,
        entries: [
          ...closed.entries,
          {
            role: 'error',
            text: event.message || DENIED_IN_TIME,
            streaming: false
          }
        ]
      };
    }
    case 'result': {
      let next: SessionView = { ...view, turns: view.turns + 1 };
      if (event.cost_usd) {
        next = { ...next, costUsd: next.costUsd + event.cost_usd };
      }
      const meter = event.session_usage;
      if (meter && Object.keys(meter).length > 0) {
        // the gateway's meter: every model call of the session, sub-agents included
        next = {
          ...next,
          inputTokens: toInt(meter.input_tokens),
          outputTokens: toInt(meter.output_tokens)
        };
      } else {
        const usage = event.usage ?? {};
        next = {
          ...next,
          inputTokens:
            next.inputTokens +
            toInt(usage.input_tokens) +
            toInt(usage.cache_creation_input_tokens) +
            toInt(usage.cache_read_input_tokens),
          outputTokens: next.outputTokens + toInt(usage.output_tokens)
        };
      }
      return next;
    }
    case 'error': {
      const next = closeBlock(view);
      return {
        ...next,
        entries: [
          ...next.entries,
          {
            role: 'error',
            text: errorText(event.message, event.code),
            streaming: false
          }
        ]
      };
    }
    case 'done':
      return endTurn(view, 'interrupted');
    case 'checkpoint': {
      const checkpoint = checkpointOf(event);
      const next = closeBlock(view);
      const checkpoints = {
        ...next.checkpoints,
        [checkpoint.turn]: checkpoint
      };
      if (checkpoint.files_changed <= 0) {
        return { ...next, checkpoints };
      }
      return {
        ...next,
        checkpoints,
        entries: [
          ...next.entries,
          {
            role: 'checkpoint',
            text: checkpointLabel(checkpoint),
            streaming: false,
            checkpoint
          }
        ]
      };
    }
    case 'rewind': {
      const next = closeBlock(view);
      return {
        ...next,
        entries: [
          ...next.entries,
          {
            role: 'note',
            text: `Rewound to before turn ${event.turn}: the workspace went back, and the agent forgets turn ${event.turn} and the turns after it.`,
            streaming: false
          }
        ]
      };
    }
    default:
      return view; // thinking, and types a newer server may add
  }
}

function checkpointOf(event: CheckpointEvent): TurnCheckpoint {
  return {
    turn: toInt(event.turn),
    files_changed: toInt(event.files_changed),
    added: toInt(event.added),
    modified: toInt(event.modified),
    deleted: toInt(event.deleted),
    lines_added: toInt(event.lines_added),
    lines_removed: toInt(event.lines_removed)
  };
}

function toInt(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value ?? 0);
  return Number.isFinite(n) ? Math.trunc(n) : 0;
}

function withCall(view: SessionView, call: ToolCall): SessionView {
  return { ...view, calls: { ...view.calls, [call.tool_use_id]: call } };
}

function replaceEntry(
  view: SessionView,
  index: number,
  entry: ChatEntry
): SessionView {
  return {
    ...view,
    entries: view.entries.map((e, i) => (i === index ? entry : e))
  };
}

function closeBlock(view: SessionView): SessionView {
  if (view.openEntry < 0) {
    return view;
  }
  const open = view.entries[view.openEntry];
  return {
    ...replaceEntry(view, view.openEntry, { ...open, streaming: false }),
    openEntry: -1
  };
}

/** A call without a result when the turn ends was cut off (interrupt, crash). */
function endTurn(view: SessionView, unfinished: ToolStatus): SessionView {
  const next = closeBlock(view);
  let calls = next.calls;
  for (const call of Object.values(next.calls)) {
    if (call.status === 'running' || call.status === 'waiting') {
      calls = calls === next.calls ? { ...calls } : calls;
      (calls as { [id: string]: ToolCall })[call.tool_use_id] = {
        ...call,
        status: unfinished
      };
    }
  }
  return { ...next, calls, permissions: [], busy: false };
}
