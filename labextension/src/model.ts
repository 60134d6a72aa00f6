/**
 * The state of the Agents panel: server health, presets, sessions, and for the session
 * being looked at, its event-folded view, fed by a follower of its event log and by the
 * turns sent from here.  The React view renders it and re-renders on `changed`.
 */

import { ISignal, Signal } from '@lumino/signaling';

import {
  AgClusterAPI,
  ApiError,
  ConfigSummary,
  FilePreview,
  FileTree,
  Health,
  LaunchRequest,
  SessionInfo,
  isAbort
} from './api';
import type { Confirm } from './dialogs';
import { AgentEvent, JSONObject } from './events';
import { contentsPathOf } from './files';
import { SessionView, answered, applyEvent, emptyView } from './reducer';
import { ConnectionState, EventFollower, streamTurn } from './sse';
import { XHRLike, buildUpload, saveResponse, sendUpload } from './transfer';

/**
 * What every launch from the panel carries.  The API key lives here, in this page's
 * memory, and nowhere else: never in localStorage, the settings or the state DB.
 */
export interface LaunchOptions {
  /** the session's name ('' = none) */
  name: string;
  /** the user's own key, sent with the launch unless `useServerKey` */
  apiKey: string;
  /** omit `api_key`: the server's key pays */
  useServerKey: boolean;
}

/** A refusal to show next to the input at fault. */
export interface FieldError {
  message: string;
  /** the field the server named (`config.resource_limits.memory`), '' when none */
  field: string;
}

export interface UploadState {
  id: number;
  names: string[];
  /** the workspace folder the files go to ('' = its root) */
  target: string;
  loaded: number;
  /** bytes of the whole request body (0 while unknown) */
  total: number;
  state: 'uploading' | 'done' | 'error' | 'cancelled';
  error: string;
}

export type SessionTab = 'chat' | 'files';

/** What the model asks of its surroundings (JupyterLab in the app, fakes in tests). */
export interface ModelHooks {
  /** ask the user (JupyterLab's `showDialog`) */
  confirm: Confirm;
  /** open a path of the Jupyter tree in JupyterLab (`docmanager:open`) */
  openInLab: ((path: string) => Promise<unknown>) | null;
  /** the transport of uploads (XMLHttpRequest) */
  createXHR: (() => XHRLike) | undefined;
  /** hand a response to the browser as a downloaded file; the name it got */
  save: (response: Response, fallback: string) => Promise<string>;
}

/** The pseudo config id `launching` holds while the custom config launches. */
export const CUSTOM_LAUNCH = ':custom';

export class AgentsModel {
  constructor(api?: AgClusterAPI, hooks: Partial<ModelHooks> = {}) {
    this.api = api ?? new AgClusterAPI();
    this.hooks = {
      // JupyterLab's dialogs, loaded when first needed (the model itself needs no DOM)
      confirm: async question =>
        (await import('./dialogs')).confirmDialog(question),
      openInLab: null,
      createXHR: undefined,
      save: saveResponse,
      ...hooks
    };
  }

  readonly api: AgClusterAPI;
  hooks: ModelHooks;

  health: Health | null = null;
  configs: ConfigSummary[] = [];
  sessions: SessionInfo[] = [];
  /** the last failure to show, per area ('' when none) */
  errors: {
    [area in 'server' | 'launch' | 'sessions' | 'chat' | 'files']: string;
  } = {
    server: '',
    launch: '',
    sessions: '',
    chat: '',
    files: ''
  };
  loaded = false;
  /** the preset being launched */
  launching: string | null = null;
  /** sessions being stopped */
  stopping = new Set<string>();

  selected: string | null = null;
  view: SessionView = emptyView();
  connection: ConnectionState = 'closed';
  connectionDetail = '';
  /** a turn sent from here is streaming */
  sending = false;

  /** name and key of the next launch (memory only) */
  launchOptions: LaunchOptions = { name: '', apiKey: '', useServerKey: true };
  /** the custom config editor's text, and the server's (or JSON's) refusal of it */
  configText = '';
  configError: FieldError | null = null;

  /** which tab of the selected session shows */
  tab: SessionTab = 'chat';
  /** the selected session's workspace tree (null: not loaded yet) */
  files: FileTree | null = null;
  filesLoading = false;
  /** the file shown in the panel (workspaces outside the Jupyter tree) */
  preview: FilePreview | null = null;
  uploads: UploadState[] = [];

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The session being looked at, as the last sessions list had it. */
  get selectedInfo(): SessionInfo | undefined {
    return this.sessions.find(s => s.session_id === this.selected);
  }

  /** Health, presets and sessions, all at once. */
  async refresh(): Promise<void> {
    const [health, configs] = await Promise.allSettled([
      this.api.health(),
      this.api.configs()
    ]);
    if (health.status === 'fulfilled') {
      this.health = health.value;
      this.errors.server = '';
    } else {
      this.health = null;
      this.errors.server = message(health.reason);
    }
    if (configs.status === 'fulfilled') {
      this.configs = configs.value;
    } else if (!this.errors.server) {
      this.errors.server = message(configs.reason);
    }
    await this.refreshSessions();
    this.loaded = true;
    this._emit();
  }

  async refreshSessions(): Promise<void> {
    try {
      const sessions = await this.api.sessions();
      sessions.sort((a, b) => b.created_at.localeCompare(a.created_at));
      this.sessions = sessions;
      this.errors.sessions = '';
    } catch (error) {
      this.errors.sessions = message(error);
    }
    this._emit();
  }

  setLaunchOptions(options: Partial<LaunchOptions>): void {
    this.launchOptions = { ...this.launchOptions, ...options };
    this._emit();
  }

  /** The launch request of a preset (or inline config) with the launch options. */
  launchRequest(
    target: { config_id: string } | { config: JSONObject }
  ): LaunchRequest {
    const request: LaunchRequest = { ...target };
    const name = this.launchOptions.name.trim();
    if (name) {
      request.name = name;
    }
    const key = this.launchOptions.apiKey.trim();
    if (!this.launchOptions.useServerKey && key) {
      request.api_key = key;
    }
    return request;
  }

  /** Launch a preset; the new session's id (selected), or null (`errors.launch`). */
  async launch(configId: string): Promise<string | null> {
    if (this.launching !== null) {
      return null;
    }
    this.errors.launch = '';
    const problem = this._keyProblem();
    if (problem) {
      this.errors.launch = problem;
      this._emit();
      return null;
    }
    this.launching = configId;
    this._emit();
    try {
      return await this._launch(this.launchRequest({ config_id: configId }));
    } catch (error) {
      this.errors.launch = message(error);
      return null;
    } finally {
      this.launching = null;
      this._emit();
    }
  }

  setConfigText(text: string): void {
    this.configText = text;
    this._emit();
  }

  /** Fill the custom config editor with a preset's whole config. */
  async loadConfigTemplate(configId: string): Promise<void> {
    try {
      const config = await this.api.config(configId);
      this.configText = JSON.stringify(config, null, 2);
      this.configError = null;
    } catch (error) {
      this.configError = { message: message(error), field: '' };
    }
    this._emit();
  }

  /**
   * Launch the custom config (`{config: {...}}`): a JSON or server refusal is kept in
   * `configError` (with the field the server named) to show next to the editor.
   */
  async launchCustom(): Promise<string | null> {
    if (this.launching !== null) {
      return null;
    }
    const parsed = parseConfig(this.configText);
    if ('error' in parsed) {
      this.configError = { message: parsed.error, field: '' };
      this._emit();
      return null;
    }
    const problem = this._keyProblem();
    if (problem) {
      this.configError = { message: problem, field: 'api_key' };
      this._emit();
      return null;
    }
    this.configError = null;
    this.launching = CUSTOM_LAUNCH;
    this._emit();
    try {
      return await this._launch(this.launchRequest({ config: parsed.config }));
    } catch (error) {
      this.configError = {
        message: message(error),
        field: error instanceof ApiError ? error.field : ''
      };
      return null;
    } finally {
      this.launching = null;
      this._emit();
    }
  }

  async stop(sessionId: string, purge = false): Promise<void> {
    this.stopping.add(sessionId);
    this._emit();
    try {
      await this.api.stop(sessionId, purge);
      this.errors.sessions = '';
    } catch (error) {
      this.errors.sessions = message(error);
    } finally {
      this.stopping.delete(sessionId);
      await this.refreshSessions();
    }
  }

  /**
   * Purge a session after asking: it stops and its workspace is deleted.  True when it
   * was purged.
   */
  async purge(sessionId: string): Promise<boolean> {
    const info = this.sessions.find(s => s.session_id === sessionId);
    const label = info?.name || info?.config_id || sessionId;
    const ok = await this.hooks.confirm({
      title: 'Purge the session?',
      body:
        `"${label}" (${sessionId}) will be stopped and its workspace, with every ` +
        'file in it, deleted. This cannot be undone.',
      accept: 'Purge',
      danger: true
    });
    if (!ok) {
      return false;
    }
    this.stopping.add(sessionId);
    this._emit();
    try {
      await this.api.stop(sessionId, true);
      this.errors.sessions = '';
      if (this.selected === sessionId) {
        this.select(null);
      }
      return true;
    } catch (error) {
      this.errors.sessions = message(error);
      return false;
    } finally {
      this.stopping.delete(sessionId);
      await this.refreshSessions();
    }
  }

  setTab(tab: SessionTab): void {
    if (tab !== this.tab) {
      this.tab = tab;
      this._emit();
      if (tab === 'files' && this.files === null) {
        void this.refreshFiles();
      }
    }
  }

  /** Load the selected session's workspace tree again. */
  async refreshFiles(): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null) {
      return;
    }
    this.filesLoading = true;
    this._emit();
    try {
      const tree = await this.api.files(sessionId);
      if (this.selected === sessionId) {
        this.files = tree;
        this.errors.files = '';
      }
    } catch (error) {
      if (this.selected === sessionId) {
        this.errors.files = message(error);
      }
    } finally {
      if (this.selected === sessionId) {
        this.filesLoading = false;
        this._emit();
      }
    }
  }

  /**
   * Open a workspace file: in JupyterLab's own editor or viewer when the workspace is in
   * the Jupyter tree, else its preview in the panel.
   */
  async openFile(path: string): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null) {
      return;
    }
    const contentsPath = this.selectedInfo?.contents_path;
    if (typeof contentsPath === 'string' && this.hooks.openInLab) {
      try {
        await this.hooks.openInLab(contentsPathOf(contentsPath, path));
        return;
      } catch (error) {
        // fall back to the preview, saying why
        this.errors.files = `could not open it in JupyterLab: ${message(error)}`;
      }
    }
    try {
      const preview = await this.api.file(sessionId, path);
      if (this.selected === sessionId) {
        this.preview = preview;
      }
    } catch (error) {
      this.errors.files = message(error);
    }
    this._emit();
  }

  closePreview(): void {
    this.preview = null;
    this._emit();
  }

  /** Download one workspace file (its bytes, `?raw=1`). */
  async downloadFile(path: string): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null) {
      return;
    }
    try {
      const response = await this.api.rawFile(sessionId, path);
      await this.hooks.save(response, path.split('/').pop() || 'file');
    } catch (error) {
      this.errors.files = message(error);
      this._emit();
    }
  }

  /** Download the whole workspace as a ZIP. */
  async downloadWorkspace(): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null) {
      return;
    }
    try {
      const response = await this.api.workspaceZip(sessionId);
      await this.hooks.save(response, `${sessionId}-workspace.zip`);
    } catch (error) {
      this.errors.files = message(error);
      this._emit();
    }
  }

  /**
   * Upload files into a folder of the selected session's workspace, with progress.  When
   * one exists already (409), ask whether to overwrite and, if so, send them again with
   * `overwrite=true`.  The upload's final state.
   */
  async upload(
    files: readonly File[],
    targetPath = ''
  ): Promise<UploadState | null> {
    const sessionId = this.selected;
    if (sessionId === null || files.length === 0) {
      return null;
    }
    // finished uploads make room for the new one
    this.uploads = this.uploads.filter(u => u.state === 'uploading');
    const upload: UploadState = {
      id: ++this._uploadSeq,
      names: files.map(f => f.name),
      target: targetPath,
      loaded: 0,
      total: files.reduce((n, f) => n + f.size, 0),
      state: 'uploading',
      error: ''
    };
    this.uploads = [...this.uploads, upload];
    this._emit();
    const controller = new AbortController();
    this._uploadControllers.set(upload.id, controller);
    const update = (patch: Partial<UploadState>): void => {
      Object.assign(upload, patch);
      this.uploads = [...this.uploads];
      this._emit();
    };
    let overwrite = false;
    try {
      for (;;) {
        try {
          const request = await buildUpload(this.api, sessionId, files, {
            targetPath,
            overwrite
          });
          await sendUpload(request, {
            signal: controller.signal,
            createXHR: this.hooks.createXHR,
            onProgress: (loaded, total) =>
              update({ loaded, total: total || upload.total })
          });
          update({ state: 'done', loaded: upload.total || upload.loaded });
          break;
        } catch (error) {
          if (isAbort(error)) {
            update({ state: 'cancelled' });
            break;
          }
          if (
            !overwrite &&
            error instanceof ApiError &&
            error.status === 409 &&
            /exist/i.test(error.message)
          ) {
            const ok = await this.hooks.confirm({
              title: 'Overwrite?',
              body: `${error.message.replace(/; pass overwrite=true.*$/, '')}. Replace it with the uploaded ${files.length === 1 ? 'file' : 'files'}?`,
              accept: 'Overwrite',
              danger: true
            });
            if (ok) {
              overwrite = true;
              update({ loaded: 0 });
              continue;
            }
            update({ state: 'cancelled', error: 'not overwritten' });
            break;
          }
          update({ state: 'error', error: message(error) });
          break;
        }
      }
    } finally {
      this._uploadControllers.delete(upload.id);
    }
    if (upload.state === 'done' && this.selected === sessionId) {
      await this.refreshFiles();
    }
    return upload;
  }

  /** Cancel a running upload, or take a finished one off the list. */
  dismissUpload(id: number): void {
    const controller = this._uploadControllers.get(id);
    if (controller) {
      controller.abort();
      return;
    }
    this.uploads = this.uploads.filter(u => u.id !== id);
    this._emit();
  }

  /** Look at a session (null: none): its whole log is replayed, then followed. */
  select(sessionId: string | null): void {
    if (sessionId === this.selected) {
      return;
    }
    for (const controller of this._uploadControllers.values()) {
      controller.abort();
    }
    this.uploads = [];
    this.files = null;
    this.filesLoading = false;
    this.preview = null;
    this.errors.files = '';
    if (this._filesTimer !== null) {
      clearTimeout(this._filesTimer);
      this._filesTimer = null;
    }
    this._follower?.stop();
    this._follower = null;
    this._turn?.abort();
    this._turn = null;
    this.sending = false;
    this.selected = sessionId;
    this.view = emptyView(sessionId ?? '');
    this.errors.chat = '';
    this.connection = 'closed';
    if (sessionId !== null) {
      const follower = new EventFollower(this.api, sessionId, {
        onEvent: event => this._apply(sessionId, event),
        onConnection: (state, detail) => {
          if (this.selected === sessionId) {
            this.connection = state;
            this.connectionDetail = detail ?? '';
            this._emit();
          }
        }
      });
      this._follower = follower;
      void follower.start();
      if (this.tab === 'files') {
        void this.refreshFiles();
      }
    }
    this._emit();
  }

  /** Send a message to the selected session and stream its turn. */
  async send(text: string): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null || !text.trim() || this.sending) {
      return;
    }
    const controller = new AbortController();
    this._turn = controller;
    this.sending = true;
    this.errors.chat = '';
    this._emit();
    try {
      await streamTurn(this.api, sessionId, text, {
        // what the view has: events the follower has not delivered yet come from either
        // stream, and the reducer takes each seq once
        after: this.view.lastSeq,
        onEvent: event => this._apply(sessionId, event),
        signal: controller.signal
      });
    } catch (error) {
      if (!isAbort(error) && this.selected === sessionId) {
        this.errors.chat = message(error);
      }
    } finally {
      if (this._turn === controller) {
        this._turn = null;
        this.sending = false;
      }
      this._emit();
      void this.refreshSessions();
    }
  }

  /** Stop the selected session (its workspace is kept). */
  async stopSelected(): Promise<void> {
    if (this.selected !== null) {
      await this.stop(this.selected);
    }
  }

  async interrupt(): Promise<void> {
    if (this.selected === null) {
      return;
    }
    try {
      await this.api.interrupt(this.selected);
    } catch (error) {
      this.errors.chat = message(error);
      this._emit();
    }
  }

  async answer(requestId: string, decision: 'allow' | 'deny'): Promise<void> {
    const sessionId = this.selected;
    if (sessionId === null) {
      return;
    }
    try {
      await this.api.answerPermission(sessionId, requestId, decision);
      if (this.selected === sessionId) {
        this.view = answered(this.view, requestId);
      }
    } catch (error) {
      this.errors.chat = message(error);
    }
    this._emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._filesTimer !== null) {
      clearTimeout(this._filesTimer);
    }
    for (const controller of this._uploadControllers.values()) {
      controller.abort();
    }
    this._follower?.stop();
    this._turn?.abort();
    Signal.clearData(this);
  }

  private _apply(sessionId: string, event: AgentEvent): void {
    if (this.selected !== sessionId) {
      return;
    }
    const next = applyEvent(this.view, event);
    if (next !== this.view) {
      this.view = next;
      this._emit();
      if (event.type === 'done') {
        this._scheduleFilesRefresh();
      }
    }
  }

  /** After a turn: the tree again (once for a burst of turns, as in a replayed log). */
  private _scheduleFilesRefresh(): void {
    if (this._filesTimer !== null || this.files === null) {
      return; // never loaded: it loads when the Files tab opens
    }
    this._filesTimer = setTimeout(() => {
      this._filesTimer = null;
      void this.refreshFiles();
    }, 150);
  }

  private async _launch(request: LaunchRequest): Promise<string> {
    const reply = await this.api.launch(request);
    this.launchOptions = { ...this.launchOptions, name: '' };
    await this.refreshSessions();
    this.select(reply.session_id);
    return reply.session_id;
  }

  /** Why the launch options cannot be sent ('' when they can). */
  private _keyProblem(): string {
    const o = this.launchOptions;
    return !o.useServerKey && !o.apiKey.trim()
      ? "enter an API key, or use the server's key"
      : '';
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _disposed = false;
  private _follower: EventFollower | null = null;
  private _turn: AbortController | null = null;
  private _filesTimer: ReturnType<typeof setTimeout> | null = null;
  private _uploadSeq = 0;
  private _uploadControllers = new Map<number, AbortController>();
}

/** The custom config editor's text as a config object, or why it is not one. */
export function parseConfig(
  text: string
): { config: JSONObject } | { error: string } {
  if (!text.trim()) {
    return { error: 'the config is empty: pick a preset to start from' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `not valid JSON: ${message(error)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'the config must be a JSON object ({...})' };
  }
  return { config: value as JSONObject };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
