/**
 * The REST contract's types, generated from agcluster_jupyter/openapi.yaml by
 * openapi-typescript: do not edit.  `npm run gen:rest` writes it again after the spec
 * changes; `npm run check:rest` (run by the tests) fails while it is out of date.
 */

export interface paths {
  '/health': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The extension, its provider and whether the agents are isolated. */
    get: operations['health'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/configs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The preset agent configs. */
    get: operations['listConfigs'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/configs/{config_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One preset config, whole. */
    get: operations['getConfig'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/launch': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Start an agent session from a preset or an inline config.
     * @description Exactly one of `config_id` and `config`.  Without a server key
     *     (`ANTHROPIC_API_KEY` in the server's environment) an `api_key` is required; it
     *     stays in the server's memory and never reaches the container.
     */
    post: operations['launch'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/sessions': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Every session of this server, oldest first. */
    get: operations['listSessions'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/sessions/{session_id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** One session's state, usage, workspace and resources. */
    get: operations['getSession'];
    put?: never;
    post?: never;
    /** Stop the session; the workspace is kept unless `purge` is true. */
    delete: operations['stopSession'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/chat': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Send a message; the turn's events as SSE, or JSON after the turn.
     * @description With `Accept: text/event-stream` the turn's events stream as SSE
     *     (`id: {seq}`, `event: {type}`, `data: {json}`), ending with `done`.  Otherwise the
     *     answer is JSON once the turn is over.  A stopped or failed session is relaunched
     *     first (same workspace, same conversation).
     */
    post: operations['chat'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/interrupt': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Stop the running turn (its `done` event still follows). */
    post: operations['interrupt'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/events': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** The session's whole event log as SSE; resumable. */
    get: operations['events'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/permissions/{request_id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        request_id: string;
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Allow or deny a tool call the agent asked permission for. */
    post: operations['answerPermission'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/export': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** The conversation as Markdown, a notebook or raw events. */
    get: operations['export'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/checkpoints': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** Every checkpoint (the workspace before each turn) and what its turn changed. */
    get: operations['listCheckpoints'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/checkpoints/{turn}/diff': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description the turn whose checkpoint (the workspace just before it) is meant */
        turn: components['parameters']['Turn'];
      };
      cookie?: never;
    };
    /** What one turn changed, file by file (a running turn - so far). */
    get: operations['checkpointDiff'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/checkpoints/{turn}/restore': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description the turn whose checkpoint (the workspace just before it) is meant */
        turn: components['parameters']['Turn'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** The workspace (or some paths) as it was before that turn; undoable. */
    post: operations['restoreCheckpoint'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/undo': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Reverse the last restore or rewind (the paths it changed; a rewind's conversation too). */
    post: operations['undoRestore'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/rewind': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** The files and the conversation as before that turn; undoable. */
    post: operations['rewind'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/fork': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** A new session on a copy of this one's files and conversation (at a checkpoint, or now). */
    post: operations['fork'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/compare/{other_id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        other_id: string;
      };
      cookie?: never;
    };
    /** This session's workspace against another's (e.g. two forks); added = only in the other. */
    get: operations['compare'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/files/{session_id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** The workspace tree (links out of it are listed, never followed). */
    get: operations['tree'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/files/{session_id}/download': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    /** The whole workspace as a streamed ZIP (links out of it are skipped). */
    get: operations['downloadZip'];
    put?: never;
    /** The same ZIP, for clients that can only POST a form. */
    post: operations['downloadZipPost'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/files/{session_id}/upload': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Upload files into the workspace (all or nothing per request). */
    post: operations['upload'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/files/{session_id}/{path}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description a workspace-relative path; it may contain `/` (send it as is or as %2F) */
        path: string;
      };
      cookie?: never;
    };
    /** A file's preview (JSON); `raw` its bytes, `download` as an attachment. */
    get: operations['file'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/notebooks/open': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    /**
     * A JupyterLab page holds this notebook with (or without) unsaved changes.
     * @description While a report of unsaved changes holds (repeated at least every 60 s), the
     *     agents' `edit_notebook` on that notebook is refused as stale: the user's typing is
     *     never written over.
     */
    put: operations['reportOpenNotebook'];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/agents/{session_id}/kernels': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Grant the session the kernel running now for one of its notebooks.
     * @description The kernel tools reach only the kernel process the user granted: at launch, the
     *     kernels running for the launch's notebooks; after a restart (a new process), this
     *     grants the new one.  The notebook must be granted to the session already (else a
     *     409, as for a notebook without a running kernel).
     */
    post: operations['grantKernel'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/notebooks/edits': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * The agents' notebook edits after `after`, waiting up to `timeout` s for one.
     * @description Numbered from 1 in this server process (`last`; a cursor above it starts over).
     *     A page reloads an open notebook without unsaved changes when it was edited.
     */
    get: operations['notebookEdits'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    Checkpoint: {
      turn: number;
      created_at: string;
      /** @description the turn's message */
      prompt: string;
      files_changed: number;
      added: number;
      modified: number;
      deleted: number;
      lines_added: number;
      lines_removed: number;
      /** @description false while the turn runs */
      finished: boolean;
    };
    FileChange: {
      path: string;
      /** @enum {string} */
      status: 'added' | 'modified' | 'deleted';
      /** @description not diffed as text: big, not UTF-8, or holding NUL */
      binary: boolean;
      /** @description a symlink (compared by its target */
      link?: boolean;
      size_before: number | null;
      size_after: number | null;
      sha_before?: string | null;
      sha_after?: string | null;
      /** @description a unified diff (text files) */
      diff?: string;
      truncated?: boolean;
      /** @description a notebook's cell-level changes (instead of diff) */
      cells?: Record<string, never>[];
    };
    Error: {
      message: string;
      reason: string;
      /** @description the input at fault */
      field?: string;
    };
    /** @enum {string} */
    Flag: '' | '0' | '1' | 'true' | 'false' | 'yes' | 'no' | 'on' | 'off';
    /** @enum {string} */
    SessionState:
      | 'starting'
      | 'ready'
      | 'busy'
      | 'idle'
      | 'stopping'
      | 'stopped'
      | 'failed';
    Health: {
      /** @enum {string} */
      status: 'ok' | 'degraded';
      version: string;
      /** @enum {string} */
      provider: 'local' | 'docker' | 'fly' | 'kubernetes';
      provider_ok: boolean;
      provider_detail: string;
      isolated: boolean;
      agent_image: string;
      demo_mode: boolean;
      /** @description whether the server has its own API key */
      server_key: boolean;
      sessions: number;
      warning?: string;
      warm_pool?: {
        config_id: string;
        size: number;
        available: number;
      };
    };
    ResourceLimits: {
      cpu?: number;
      memory?: string | number;
      storage?: string | number;
    };
    ConfigSummary: {
      id: string;
      name: string;
      description: string;
      allowed_tools: string[];
      permission_mode: components['schemas']['PermissionMode'];
      has_mcp_servers: boolean;
      has_sub_agents: boolean;
      resource_limits: components['schemas']['ResourceLimits'];
      system_prompt: string;
    };
    /** @enum {string} */
    PermissionMode: 'default' | 'acceptEdits' | 'plan' | 'bypassPermissions';
    /**
     * @description the user's kernels through the jupyter tools: deny (not offered), ask (the default:
     *     every run_cell/run_code is a permission request showing the code), allow (no
     *     prompts; refused with bypassPermissions unless allow_unattended_kernel_access)
     * @enum {string}
     */
    KernelAccess: 'deny' | 'ask' | 'allow';
    /**
     * @description An agent config, as preset YAML files hold it and `agents/launch` accepts inline.
     *     Unknown fields are refused; a 400 names the field at fault
     *     (`config.resource_limits.memory`, `config.agents.frontend.tools.2`).
     */
    AgentConfig: {
      id?: string;
      name?: string;
      description?: string;
      allowed_tools?: string[];
      disallowed_tools?: string[];
      permission_mode?: components['schemas']['PermissionMode'];
      kernel_access?: components['schemas']['KernelAccess'];
      system_prompt?:
        | null
        | string
        | {
            /** @constant */
            type?: 'preset';
            /** @constant */
            preset?: 'claude_code';
            append?: string | null;
          };
      agents?: {
        [key: string]: {
          description: string;
          prompt: string;
          tools?: string[] | null;
          model?: string | null;
        };
      };
      mcp_servers?: {
        [key: string]: {
          /** @enum {string} */
          type?: 'stdio' | 'sse' | 'http';
          command?: string;
          args?: string[];
          env?: {
            [key: string]: string;
          };
          url?: string;
          headers?: {
            [key: string]: string;
          };
        };
      };
      resource_limits?: components['schemas']['ResourceLimits'];
      max_turns?: number | null;
      model?: string | null;
      network?: boolean;
      token_budget?: number | null;
      cost_budget_usd?: number | null;
    };
    /** @description exactly one of `config_id` and `config`; any other field is a 400 naming it */
    LaunchRequest: {
      /** @description a preset's id (GET configs lists them) */
      config_id?: string;
      config?: components['schemas']['AgentConfig'];
      /** @description a key for this session only (kept in memory, never in the container) */
      api_key?: string;
      name?: string;
      /** @description the notebook (a path of the Jupyter tree) whose cell starts the session */
      notebook?: string;
      /**
       * @description a folder of the Jupyter tree (relative to root_dir, as the file browser shows
       *     it) the agent works in instead of a folder of its own: existing, and inside
       *     the tree with symlinks resolved.  A live session in the same or a nested
       *     folder is a 409 unless share_workspace; a purge never deletes it; kubernetes
       *     and fly answer 400 (their workspaces are volumes)
       */
      workspace?: string;
      /** @description mount the folder read-only (docker; the local provider answers 400) */
      workspace_readonly?: boolean;
      /** @description work in the folder even if another live session works there */
      share_workspace?: boolean;
      /**
       * @description notebooks of the Jupyter tree (relative to root_dir) the agent's `jupyter` tools
       *     may read and edit besides those in its workspace folder; a listed notebook may
       *     not exist yet (create_notebook makes it) but its folder must, inside the tree
       */
      notebooks?: string[];
      kernel_access?: components['schemas']['KernelAccess'];
    } & (unknown | unknown);
    Launched: {
      session_id: string;
      agent_id: string | null;
      config_id: string;
      status: components['schemas']['SessionState'];
      provider: string;
      isolated: boolean;
      workspace: string;
      /** @description the folder workspace as the file browser shows it; null for a folder of its own */
      folder?: string | null;
      workspace_readonly?: boolean;
      /** @description the notebooks the launch granted, as resolved (relative to root_dir) */
      notebooks?: string[];
      kernel_access?: components['schemas']['KernelAccess'];
      /** @description the notebooks whose running kernel the launch granted */
      kernels?: string[];
      warning?: string;
    };
    Usage: {
      input_tokens: number;
      output_tokens: number;
      total_tokens: number;
    };
    SessionDetails: {
      session_id: string;
      agent_id: string | null;
      name: string;
      state: components['schemas']['SessionState'];
      status: components['schemas']['SessionState'];
      state_detail: string;
      config_id: string;
      owner: string;
      created_at: string;
      last_active: string;
      usage: components['schemas']['Usage'];
      token_budget: number | null;
      cost_budget_usd?: number | null;
      /** @description what the gateway's meter priced every model call of the session at */
      metered_cost_usd?: number;
      turns: number;
      /** @description checkpoints kept */
      checkpoints?: number;
      /** @description the folder workspace as the file browser shows it; null for a folder of its own */
      folder?: string | null;
      workspace_readonly?: boolean;
      forked_from?: null | {
        session_id: string;
        turn: number | null;
      };
      workspace: string;
      contents_path: string | null;
      cost_usd: number;
      /** @description the notebook that started it */
      notebook?: string;
      /** @description the first message (200 characters at most) */
      first_prompt?: string;
      sdk_session_id: string | null;
      provider: string;
      isolated: boolean;
      resource_limits: components['schemas']['ResourceLimits'];
      last_seq: number;
      /** @description CPU and memory use of a live session; empty when unknown */
      resources: {
        memory_bytes?: number;
        memory_limit_bytes?: number | null;
        cpu_percent?: number;
        pids?: number;
      };
    };
    /** @description One event of a session's log; `seq` is per session, gapless, from 1. */
    Event: {
      seq: number;
      session_id: string;
      ts: string;
      type: components['schemas']['EventType'];
    };
    /** @enum {string} */
    EventType:
      | 'status'
      | 'text_delta'
      | 'message'
      | 'thinking'
      | 'tool_use'
      | 'tool_result'
      | 'todo_update'
      | 'permission_request'
      | 'permission_answer'
      | 'result'
      | 'error'
      | 'done'
      | 'checkpoint'
      | 'rewind'
      | 'notebook_edit'
      | 'kernel_call';
    /**
     * @description One server-sent event (the stream is `id: {seq}\nevent: {type}\ndata: {json}\n\n`
     *     frames, plus a `: heartbeat` comment when idle).  As in OpenAPI 3.2's
     *     `itemSchema`, this schema describes each event of the stream.
     */
    EventStream: {
      id: string;
      event: components['schemas']['EventType'];
      data: string;
    };
    ChatReply: {
      session_id: string;
      /** @description the assistant's text blocks of the turn */
      text: string;
      result: null | components['schemas']['Event'];
      events: components['schemas']['Event'][];
    };
    TreeNode: {
      name: string;
      path: string;
      /** @enum {string} */
      type: 'file' | 'directory' | 'symlink' | 'other';
      size_bytes: number;
      modified: string;
      truncated?: boolean;
      children?: components['schemas']['TreeNode'][];
    };
    Tree: {
      root: string;
      tree: components['schemas']['TreeNode'][];
      total_files: number;
      truncated?: boolean;
    };
    Preview:
      | {
          path: string;
          content: string;
          language: string;
          size_bytes: number;
          lines: number;
          truncated: boolean;
          /** @constant */
          binary: false;
        }
      | {
          path: string;
          /** @constant */
          binary: true;
          size_bytes: number;
          mime_type: string;
        };
  };
  responses: {
    /** @description bad input; `field` names what to fix */
    BadRequest: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description not authenticated */
    Unauthorized: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description not authenticated (Jupyter answers 403 to API calls), not authorized, or a cookie request without its XSRF token */
    Forbidden: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description unknown session, config, file or endpoint */
    NotFound: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description exists already, or the session is in the wrong state (busy, stopped) */
    Conflict: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description over an upload, storage or body limit; nothing was written */
    TooLarge: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description a token budget or the session limit */
    LimitExceeded: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description the provider or the agent cannot serve; the message says how to fix it */
    ServiceUnavailable: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description the workspace as a ZIP archive */
    Zip: {
      headers: {
        'Content-Disposition'?: string;
        [name: string]: unknown;
      };
      content: {
        'application/zip': string;
      };
    };
  };
  parameters: {
    SessionId: string;
    /** @description the turn whose checkpoint (the workspace just before it) is meant */
    Turn: number;
  };
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  health: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description health */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Health'];
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
    };
  };
  listConfigs: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the presets, summarised */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            configs: components['schemas']['ConfigSummary'][];
            total: number;
          };
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
    };
  };
  getConfig: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        config_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the config */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AgentConfig'];
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  launch: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['LaunchRequest'];
      };
    };
    responses: {
      /** @description the session, ready for messages */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Launched'];
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      413: components['responses']['TooLarge'];
      429: components['responses']['LimitExceeded'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  listSessions: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the sessions */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            sessions: components['schemas']['SessionDetails'][];
            total: number;
          };
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
    };
  };
  getSession: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the session */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['SessionDetails'];
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  stopSession: {
    parameters: {
      query?: {
        /** @description `true` (or `1`, `yes`, `on`) deletes the workspace and the event log too; `false` (or `0`, `no`, `off`, the default) keeps them; anything else is a 400 */
        purge?: 'true' | 'false' | '1' | '0' | 'yes' | 'no' | 'on' | 'off';
      };
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description stopped */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            session_id: string;
            /** @constant */
            stopped: true;
            purged: boolean;
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  chat: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          message: string;
        };
      };
    };
    responses: {
      /** @description the turn */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ChatReply'];
          'text/event-stream': components['schemas']['EventStream'];
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
      429: components['responses']['LimitExceeded'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  interrupt: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description whether a turn was running */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            session_id: string;
            interrupted: boolean;
          };
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  events: {
    parameters: {
      query?: {
        /** @description replay only events with a larger seq (`Last-Event-ID` wins over it) */
        after?: number;
        /** @description `false` (or `0`, `no`, `off`): the log so far, then the stream ends; `true` (the default, or `1`, `yes`, `on`) follows; anything else is a 400 */
        follow?: 'true' | 'false' | '1' | '0' | 'yes' | 'no' | 'on' | 'off';
      };
      header?: {
        'Last-Event-ID'?: string;
      };
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the events */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'text/event-stream': components['schemas']['EventStream'];
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  answerPermission: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        request_id: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          /** @enum {string} */
          decision: 'allow' | 'deny';
          message?: string;
        };
      };
    };
    responses: {
      /** @description the answer was handed to the agent */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            request_id: string;
            /** @enum {string} */
            decision: 'allow' | 'deny';
            /** @description the Jupyter user who answered (also in the log's permission_answer) */
            answered_by: string;
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  export: {
    parameters: {
      query?: {
        format?: 'md' | 'ipynb' | 'jsonl';
      };
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the conversation, as an attachment */
      200: {
        headers: {
          'Content-Disposition'?: string;
          [name: string]: unknown;
        };
        content: {
          'text/markdown': string;
          'application/x-ipynb+json': Record<string, never>;
          'application/x-ndjson': string;
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  listCheckpoints: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the checkpoints, oldest first */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            checkpoints: components['schemas']['Checkpoint'][];
            total: number;
            /** @description checkpoints of earlier turns were pruned (checkpoint_max_bytes) */
            pruned_before?: number;
          };
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
    };
  };
  checkpointDiff: {
    parameters: {
      query?: {
        /** @description one file or folder of the workspace (``..``, absolute paths and NUL bytes are a 400) */
        path?: string;
      };
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description the turn whose checkpoint (the workspace just before it) is meant */
        turn: components['parameters']['Turn'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the turn's changes */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            turn: number;
            files: components['schemas']['FileChange'][];
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
    };
  };
  restoreCheckpoint: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description the turn whose checkpoint (the workspace just before it) is meant */
        turn: components['parameters']['Turn'];
      };
      cookie?: never;
    };
    requestBody?: {
      content: {
        'application/json': {
          /** @description workspace-relative files or folders (``..``, absolute paths and NUL bytes are a 400) */
          paths?: string[];
        };
      };
    };
    responses: {
      /** @description restored */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            turn: number;
            restored: string[];
            /** @description notebooks outside the workspace (paths of the Jupyter tree) the agent's edits of which were put back */
            notebooks?: string[];
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
    };
  };
  undoRestore: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description undone */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            restored: string[];
            /** @description notebooks outside the workspace (paths of the Jupyter tree) the agent's edits of which were put back */
            notebooks?: string[];
            /** @enum {string} */
            undid: 'restore' | 'rewind';
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  rewind: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          turn: number;
        };
      };
    };
    responses: {
      /** @description rewound; the next message continues from before that turn */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            turn: number;
            restored: string[];
            /** @description notebooks outside the workspace (paths of the Jupyter tree) the agent's edits of which were put back */
            notebooks?: string[];
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  fork: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: {
      content: {
        'application/json': {
          /** @description fork from before this turn */
          turn?: number;
          name?: string;
        };
      };
    };
    responses: {
      /** @description the fork, started */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            session_id: string;
            agent_id?: string | null;
            config_id: string;
            status: string;
            provider?: string;
            isolated?: boolean;
            workspace?: string;
            forked_from: {
              session_id: string;
              turn: number | null;
            };
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
      429: components['responses']['LimitExceeded'];
      503: components['responses']['ServiceUnavailable'];
    };
  };
  compare: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        other_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the differences */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            session_id: string;
            other_id: string;
            files: components['schemas']['FileChange'][];
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
    };
  };
  tree: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the tree */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Tree'];
        };
      };
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  downloadZip: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: components['responses']['Zip'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  downloadZipPost: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: components['responses']['Zip'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  upload: {
    parameters: {
      query?: {
        /**
         * @description a folder relative to the workspace root, created if missing: names separated
         *     by `/`, none of them `.` or `..` or empty, no backslash or NUL, no leading `/`
         */
        target_path?: string;
        overwrite?: components['schemas']['Flag'];
      };
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'multipart/form-data': {
          files: string[];
        };
      };
    };
    responses: {
      /** @description the files, where they landed */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            uploaded: {
              filename: string;
              path: string;
            }[];
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
      413: components['responses']['TooLarge'];
    };
  };
  file: {
    parameters: {
      query?: {
        raw?: components['schemas']['Flag'];
        download?: components['schemas']['Flag'];
      };
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
        /** @description a workspace-relative path; it may contain `/` (send it as is or as %2F) */
        path: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description a preview (text or binary metadata), or the bytes with `raw`/`download` */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Preview'];
          '*/*': string;
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
    };
  };
  reportOpenNotebook: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          /** @description the notebook's path in the Jupyter tree */
          path: string;
          dirty: boolean;
          /** @description the reporting page's own id */
          page?: string;
        };
      };
    };
    responses: {
      /** @description recorded */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            path: string;
            dirty: boolean;
            /** @description seconds the report holds */
            expires_in: number;
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      409: components['responses']['Conflict'];
    };
  };
  grantKernel: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        session_id: components['parameters']['SessionId'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          notebook: string;
        };
      };
    };
    responses: {
      /** @description granted */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            notebook: string;
            kernel_id: string;
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      404: components['responses']['NotFound'];
      409: components['responses']['Conflict'];
    };
  };
  notebookEdits: {
    parameters: {
      query?: {
        after?: number;
        timeout?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description the edits */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            edits: {
              n: number;
              path: string;
              /** @description "" for a restore's write */
              version: string;
              session_id: string;
            }[];
            last: number;
          };
        };
      };
      400: components['responses']['BadRequest'];
      401: components['responses']['Unauthorized'];
      403: components['responses']['Forbidden'];
      409: components['responses']['Conflict'];
    };
  };
}
