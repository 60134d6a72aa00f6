/**
 * The session events of the REST/SSE contract (`agcluster_jupyter/events.py`): every event
 * has `seq` (per session, gapless, from 1), `session_id`, `ts` (server clock, ISO 8601) and
 * `type`.
 */

export type SessionState =
  'starting' | 'ready' | 'busy' | 'idle' | 'stopping' | 'stopped' | 'failed';

export interface EventBase {
  seq: number;
  session_id: string;
  ts: string;
}

export interface StatusEvent extends EventBase {
  type: 'status';
  state: SessionState;
  detail: string;
}

export interface TextDeltaEvent extends EventBase {
  type: 'text_delta';
  text: string;
  parent_tool_use_id?: string | null;
}

export interface MessageEvent extends EventBase {
  type: 'message';
  role: 'assistant' | 'user' | 'system';
  text: string;
  parent_tool_use_id?: string | null;
}

export interface ThinkingEvent extends EventBase {
  type: 'thinking';
  text: string;
  parent_tool_use_id?: string | null;
}

export type JSONObject = { [key: string]: unknown };

export interface ToolUseEvent extends EventBase {
  type: 'tool_use';
  tool_use_id: string;
  name: string;
  input: JSONObject;
  parent_tool_use_id?: string | null;
}

export interface ToolResultEvent extends EventBase {
  type: 'tool_result';
  tool_use_id: string;
  is_error: boolean;
  output: string;
  parent_tool_use_id?: string | null;
}

export interface TodoItem {
  content: string;
  status: 'pending' | 'in_progress' | 'completed';
  activeForm: string;
}

export interface TodoUpdateEvent extends EventBase {
  type: 'todo_update';
  todos: TodoItem[];
}

export interface PermissionRequestEvent extends EventBase {
  type: 'permission_request';
  request_id: string;
  tool_name: string;
  input: JSONObject;
}

/** Answered, and by whom: a Jupyter user (through the server) or `timeout` (a deny). */
export interface PermissionAnswerEvent extends EventBase {
  type: 'permission_answer';
  request_id: string;
  decision: 'allow' | 'deny';
  answered_by: string;
  reason: 'user' | 'timeout';
  message?: string;
}

export interface ResultEvent extends EventBase {
  type: 'result';
  cost_usd?: number | null;
  usage: { [key: string]: unknown };
  duration_ms: number;
  num_turns: number;
  sdk_session_id?: string | null;
  is_error?: boolean;
  /** tokens the gateway metered for the whole session so far (stamped by the server) */
  session_usage?: { [key: string]: number };
}

export interface ErrorEvent extends EventBase {
  type: 'error';
  message: string;
  code: string;
}

export interface DoneEvent extends EventBase {
  type: 'done';
}

/** A turn's file changes, logged just before its `done` (a turn that changed nothing too). */
export interface CheckpointEvent extends EventBase {
  type: 'checkpoint';
  turn: number;
  files_changed: number;
  added: number;
  modified: number;
  deleted: number;
  lines_added: number;
  lines_removed: number;
}

/** The workspace was rewound to before `turn`: that turn and the later ones are forgotten. */
export interface RewindEvent extends EventBase {
  type: 'rewind';
  turn: number;
}

/** The agent changed one of the user's notebooks (`path`, relative to the Jupyter tree). */
export interface NotebookEditEvent extends EventBase {
  type: 'notebook_edit';
  path: string;
  version: string;
  created: boolean;
  inserted: string[];
  replaced: string[];
  deleted: string[];
}

/** A kernel tool call that reached one of the user's kernels, as this server logged it. */
export interface KernelCallEvent extends EventBase {
  type: 'kernel_call';
  notebook: string;
  kernel_id: string;
  tool: string;
  code: string;
  approved_by: string;
  duration_ms: number;
  outcome: string;
}

export type AgentEvent =
  | StatusEvent
  | TextDeltaEvent
  | MessageEvent
  | ThinkingEvent
  | ToolUseEvent
  | ToolResultEvent
  | TodoUpdateEvent
  | PermissionRequestEvent
  | PermissionAnswerEvent
  | ResultEvent
  | ErrorEvent
  | DoneEvent
  | CheckpointEvent
  | RewindEvent
  | NotebookEditEvent
  | KernelCallEvent;

export type EventType = AgentEvent['type'];

export const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>([
  'status',
  'text_delta',
  'message',
  'thinking',
  'tool_use',
  'tool_result',
  'todo_update',
  'permission_request',
  'permission_answer',
  'result',
  'error',
  'done',
  'checkpoint',
  'rewind',
  'notebook_edit',
  'kernel_call'
]);

/**
 * One event from the JSON of an SSE `data` field; null when it is not an event of the
 * contract (an unknown type, no seq): a newer server's event is skipped, not a crash.
 */
export function parseEvent(data: string): AgentEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) {
    return null;
  }
  const raw = value as { [key: string]: unknown };
  if (typeof raw.type !== 'string' || !EVENT_TYPES.has(raw.type)) {
    return null;
  }
  if (
    typeof raw.seq !== 'number' ||
    !Number.isInteger(raw.seq) ||
    raw.seq < 0
  ) {
    return null;
  }
  return raw as unknown as AgentEvent;
}
