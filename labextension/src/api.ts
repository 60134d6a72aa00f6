/**
 * A typed client of the agcluster REST contract (`{base_url}api/agcluster/`).
 *
 * Every request goes through `ServerConnection.makeRequest` with the settings of the page
 * (`ServerConnection.makeSettings()`): base URL, token and XSRF cookie, so it works the same
 * behind JupyterHub.  A failed request throws an `ApiError` carrying the server's
 * `{message, reason, field}`.
 *
 * The request and reply bodies are the generated types of the REST contract (schema.ts,
 * from agcluster_jupyter/openapi.yaml); the shapes exported here are what the panel
 * relies on, and each is checked against its schema where the client returns it (a
 * reply that no longer fits the type the panel reads fails to compile).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { JSONObject, SessionState } from './events';
import type { operations } from './schema';

type JsonContent<R> = R extends { content: { 'application/json': infer T } }
  ? T
  : never;

/** The JSON an operation of the REST contract answers with when it succeeds. */
export type RestReply<K extends keyof operations> =
  operations[K]['responses'] extends { 200: infer R }
    ? JsonContent<R>
    : operations[K]['responses'] extends { 201: infer R }
      ? JsonContent<R>
      : never;

/** The JSON body an operation of the REST contract takes. */
export type RestBody<K extends keyof operations> = JsonContent<
  NonNullable<operations[K]['requestBody']>
>;

/** The REST root, relative to the server's base URL. */
export const API_ROOT = 'api/agcluster';

export interface Health {
  status: 'ok' | 'degraded' | string;
  version: string;
  provider: string;
  provider_ok: boolean;
  provider_detail?: string;
  isolated?: boolean;
  agent_image?: string;
  /** the server runs the built-in scripted model: replies are scripted */
  demo_mode?: boolean;
  /** the server has a key of its own (launches may omit `api_key`) */
  server_key?: boolean;
  sessions?: number;
  warning?: string;
  warm_pool?: { config_id: string; size: number; available: number };
}

export interface ResourceLimits {
  cpu?: number;
  /** a size ("2g", "512m") or bytes */
  memory?: string | number;
  storage?: string | number;
  [key: string]: unknown;
}

export interface ConfigSummary {
  id: string;
  name: string;
  description: string;
  allowed_tools: string[];
  permission_mode: string;
  has_mcp_servers: boolean;
  has_sub_agents: boolean;
  resource_limits: ResourceLimits;
  /** the system prompt as readable text ("" when the agent has none) */
  system_prompt?: string;
}

/**
 * A launch: a preset's `config_id`, or an inline `config` (any JSON object: the custom
 * config editor's, checked by the server, whose 400 names the field at fault).
 */
export type LaunchRequest = Omit<RestBody<'launch'>, 'config'> & {
  config?: JSONObject;
};

export interface LaunchResponse {
  session_id: string;
  agent_id: string | null;
  config_id: string;
  status: SessionState;
  provider?: string;
  isolated?: boolean;
  workspace?: string;
  warning?: string;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface SessionInfo {
  session_id: string;
  /** a folder workspace, as the file browser shows it; null: a folder of its own */
  folder?: string | null;
  /** the folder workspace is mounted read-only */
  workspace_readonly?: boolean;
  /** checkpoints kept */
  checkpoints?: number;
  /** the session and turn it was forked from; null when not a fork */
  forked_from?: { session_id: string; turn: number | null } | null;
  agent_id: string | null;
  /** the name given at launch ('' when none) */
  name: string;
  /** the first message sent to it, cut at 200 characters ('' before any) */
  first_prompt?: string;
  /**
   * The notebook whose `%%agent` cell launched it, as a path of the Jupyter tree
   * (relative to the server root); '' when none.
   */
  notebook?: string;
  state: SessionState;
  state_detail: string;
  config_id: string;
  owner?: string;
  created_at: string;
  last_active: string;
  usage: Usage;
  token_budget?: number | null;
  turns: number;
  workspace: string;
  sdk_session_id?: string | null;
  provider: string;
  isolated: boolean;
  resource_limits: ResourceLimits;
  last_seq: number;
  /** what the provider measured (`{}` when unknown) */
  resources: Resources;
  /** the session's total cost so far (from its turns' results) */
  cost_usd?: number;
  /**
   * The workspace as a path of the Jupyter tree (relative to the server root), so its
   * files open in JupyterLab; null when the workspace lies outside the tree.
   */
  contents_path?: string | null;
}

export interface Resources {
  cpu_percent?: number;
  memory_bytes?: number;
  memory_limit_bytes?: number | null;
  pids?: number;
}

export interface FileNode {
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size_bytes: number;
  modified: string;
  children?: FileNode[];
  truncated?: boolean;
}

export interface FileTree {
  root: string;
  tree: FileNode[];
  total_files: number;
  truncated?: boolean;
}

export interface FilePreview {
  path: string;
  binary: boolean;
  size_bytes: number;
  content?: string;
  language?: string;
  lines?: number;
  truncated?: boolean;
  mime_type?: string;
}

export type UploadReply = RestReply<'upload'>;

export type ExportFormat = 'md' | 'jsonl' | 'ipynb';

/** A request the server refused (or that never reached it: `status` 0). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string = '',
    readonly field: string = ''
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The `ApiError` of a non-2xx response, with the server's `{message, reason, field}`. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let message = '';
  let reason = response.statusText;
  let field = '';
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as {
      message?: unknown;
      reason?: unknown;
      field?: unknown;
    };
    if (typeof body.message === 'string') {
      message = body.message;
    }
    if (typeof body.reason === 'string') {
      reason = body.reason;
    }
    if (typeof body.field === 'string') {
      field = body.field;
    }
  } catch {
    // not JSON (a proxy's error page): say what we know
  }
  if (!message) {
    message = `${response.status} ${reason || 'error'}`.trim();
  }
  return new ApiError(message, response.status, reason, field);
}

const enc = encodeURIComponent;

/** The agcluster REST API, through the page's server connection. */
export class AgClusterAPI {
  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  readonly settings: ServerConnection.ISettings;

  /** The absolute URL of an API path (relative to the REST root). */
  url(path: string, query?: { [key: string]: string }): string {
    const base = URLExt.join(this.settings.baseUrl, API_ROOT, path);
    return query ? base + URLExt.objectToQueryString(query) : base;
  }

  /**
   * A raw response of the API: ok, or `ApiError` (network failures included).  For
   * streams and downloads; `json()` below for the rest.
   */
  async fetch(
    path: string,
    init: RequestInit = {},
    query?: { [key: string]: string }
  ): Promise<Response> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path, query),
        init,
        this.settings
      );
    } catch (error) {
      if (isAbort(error) || init.signal?.aborted) {
        throw abortError();
      }
      const detail = error instanceof Error ? error.message : String(error);
      throw new ApiError(
        `cannot reach the Jupyter server: ${detail}`,
        0,
        'Network Error'
      );
    }
    if (!response.ok) {
      throw await errorFromResponse(response);
    }
    return response;
  }

  /** A JSON request: the body (if any) is sent as JSON, the reply parsed. */
  async json<T>(
    path: string,
    method = 'GET',
    body?: unknown,
    query?: { [key: string]: string }
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const response = await this.fetch(path, init, query);
    const text = await response.text();
    if (!text) {
      return {} as T;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(
        `${method} ${path}: the server did not answer JSON`,
        response.status
      );
    }
  }

  health(): Promise<Health> {
    return this.json<RestReply<'health'>>('health');
  }

  async configs(): Promise<ConfigSummary[]> {
    const reply = await this.json<RestReply<'listConfigs'>>('configs/');
    return reply.configs;
  }

  config(configId: string): Promise<JSONObject> {
    return this.json<JSONObject>(`configs/${enc(configId)}`);
  }

  launch(request: LaunchRequest): Promise<LaunchResponse> {
    return this.json<RestReply<'launch'>>('agents/launch', 'POST', request);
  }

  async sessions(): Promise<SessionInfo[]> {
    const reply = await this.json<RestReply<'listSessions'>>('agents/sessions');
    return reply.sessions;
  }

  session(sessionId: string): Promise<SessionInfo> {
    return this.json<RestReply<'getSession'>>(
      `agents/sessions/${enc(sessionId)}`
    );
  }

  /** Stop a session (its workspace is kept unless `purge`). */
  stop(
    sessionId: string,
    purge = false
  ): Promise<{ stopped: boolean; purged: boolean }> {
    return this.json<RestReply<'stopSession'>>(
      `agents/sessions/${enc(sessionId)}`,
      'DELETE',
      undefined,
      purge ? { purge: 'true' } : undefined
    );
  }

  interrupt(sessionId: string): Promise<{ interrupted: boolean }> {
    return this.json<RestReply<'interrupt'>>(
      `agents/${enc(sessionId)}/interrupt`,
      'POST',
      {}
    );
  }

  answerPermission(
    sessionId: string,
    requestId: string,
    decision: 'allow' | 'deny',
    message = ''
  ): Promise<{ request_id: string; decision: string }> {
    const body: RestBody<'answerPermission'> = { decision, message };
    return this.json<RestReply<'answerPermission'>>(
      `agents/${enc(sessionId)}/permissions/${enc(requestId)}`,
      'POST',
      body
    );
  }

  /** The user grants the session the kernel running now for one of its notebooks. */
  grantKernel(
    sessionId: string,
    notebook: string
  ): Promise<RestReply<'grantKernel'>> {
    const body: RestBody<'grantKernel'> = { notebook };
    return this.json<RestReply<'grantKernel'>>(
      `agents/${enc(sessionId)}/kernels`,
      'POST',
      body
    );
  }

  files(sessionId: string): Promise<FileTree> {
    return this.json<RestReply<'tree'>>(`files/${enc(sessionId)}`);
  }

  file(sessionId: string, path: string): Promise<FilePreview> {
    return this.json<RestReply<'file'>>(
      `files/${enc(sessionId)}/${encodePath(path)}`
    );
  }

  /** A workspace file's bytes (`?raw=1`). */
  rawFile(sessionId: string, path: string): Promise<Response> {
    return this.fetch(
      `files/${enc(sessionId)}/${encodePath(path)}`,
      {},
      { raw: '1' }
    );
  }

  /** The whole workspace as a ZIP (streamed by the server). */
  workspaceZip(sessionId: string): Promise<Response> {
    return this.fetch(`files/${enc(sessionId)}/download`);
  }

  /** The URL of an upload into the workspace (`target_path`: a folder of it). */
  uploadUrl(sessionId: string, targetPath = '', overwrite = false): string {
    const query = new URLSearchParams({
      target_path: targetPath,
      overwrite: overwrite ? 'true' : 'false'
    });
    return `${this.url(`files/${enc(sessionId)}/upload`)}?${query.toString()}`;
  }

  exportConversation(
    sessionId: string,
    format: ExportFormat = 'md'
  ): Promise<Response> {
    return this.fetch(`agents/${enc(sessionId)}/export`, {}, { format });
  }
}

/** One turn's checkpoint, as `agents/{id}/checkpoints` lists it. */
export type Checkpoint = RestReply<'listCheckpoints'>['checkpoints'][number];

/** One cell change of a notebook's diff. */
export interface CellChange {
  status: 'added' | 'modified' | 'deleted' | string;
  index?: number;
  index_before?: number;
  cell_type?: string;
  changed?: string[];
  diff?: string;
  source?: string;
}

/** One file of a turn's diff (`cells` typed: the schema leaves them open). */
export type FileChange = Omit<
  RestReply<'checkpointDiff'>['files'][number],
  'cells'
> & { cells?: CellChange[] };

export interface CheckpointDiff {
  turn: number;
  files: FileChange[];
}

export type RestoreReply = RestReply<'restoreCheckpoint'>;
export type UndoReply = RestReply<'undoRestore'>;
export type RewindReply = RestReply<'rewind'>;
export type ForkReply = RestReply<'fork'>;

/** The checkpoint endpoints of a session (`agents/{id}/...`). */
export class CheckpointAPI {
  constructor(readonly api: AgClusterAPI) {}

  async list(sessionId: string): Promise<RestReply<'listCheckpoints'>> {
    return this.api.json<RestReply<'listCheckpoints'>>(
      `agents/${enc(sessionId)}/checkpoints`
    );
  }

  async diff(sessionId: string, turn: number): Promise<CheckpointDiff> {
    const reply = await this.api.json<RestReply<'checkpointDiff'>>(
      `agents/${enc(sessionId)}/checkpoints/${turn}/diff`
    );
    return reply as unknown as CheckpointDiff;
  }

  restore(
    sessionId: string,
    turn: number,
    paths?: string[]
  ): Promise<RestoreReply> {
    const body: RestBody<'restoreCheckpoint'> = paths ? { paths } : {};
    return this.api.json<RestoreReply>(
      `agents/${enc(sessionId)}/checkpoints/${turn}/restore`,
      'POST',
      body
    );
  }

  undo(sessionId: string): Promise<UndoReply> {
    return this.api.json<UndoReply>(
      `agents/${enc(sessionId)}/undo`,
      'POST',
      {}
    );
  }

  rewind(sessionId: string, turn: number): Promise<RewindReply> {
    const body: RestBody<'rewind'> = { turn };
    return this.api.json<RewindReply>(
      `agents/${enc(sessionId)}/rewind`,
      'POST',
      body
    );
  }

  fork(sessionId: string, turn?: number, name?: string): Promise<ForkReply> {
    const body: RestBody<'fork'> = {};
    if (turn !== undefined) {
      body.turn = turn;
    }
    if (name) {
      body.name = name;
    }
    return this.api.json<ForkReply>(
      `agents/${enc(sessionId)}/fork`,
      'POST',
      body
    );
  }
}

/** A workspace path with each segment URL-encoded and the slashes kept. */
export function encodePath(path: string): string {
  return path.split('/').filter(Boolean).map(enc).join('/');
}

/** The error an aborted request rejects with. */
export function abortError(): Error {
  const error = new Error('aborted');
  error.name = 'AbortError';
  return error;
}

/** The fetch was aborted on purpose (an AbortSignal), not a failure. */
export function isAbort(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    ((error as { name?: unknown }).name === 'AbortError' ||
      (error as { name?: unknown }).name === 'TimeoutError')
  );
}
