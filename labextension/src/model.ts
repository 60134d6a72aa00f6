/**
 * The state of the Agents panel: server health, presets, the sessions list, launching,
 * stopping and purging, and the session open in the side panel (a `SessionModel`, see
 * session.ts; main-area tabs follow theirs with `follow`).  The React view renders it and
 * re-renders on `changed`.
 */

import { ISignal, Signal } from '@lumino/signaling';

import {
  AgClusterAPI,
  ApiError,
  ConfigSummary,
  Health,
  LaunchRequest,
  SessionInfo
} from './api';
import { JSONObject } from './events';
import type { ModelHooks, SessionHost } from './host';
import { SessionModel, SessionModelOptions } from './session';
import { saveResponse } from './transfer';

export type { UploadState } from './files';
export type { ModelHooks } from './host';
export type { SessionTab } from './session';
export { SessionModel } from './session';

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

/** The pseudo config id `launching` holds while the custom config launches. */
export const CUSTOM_LAUNCH = ':custom';

export class AgentsModel implements SessionHost {
  constructor(api?: AgClusterAPI, hooks: Partial<ModelHooks> = {}) {
    this.api = api ?? new AgClusterAPI();
    this.hooks = {
      // JupyterLab's dialogs, loaded when first needed (the model itself needs no DOM)
      confirm: async question =>
        (await import('./dialogs')).confirmDialog(question),
      openInLab: null,
      insertCode: null,
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
  errors: { [area in 'server' | 'launch' | 'sessions']: string } = {
    server: '',
    launch: '',
    sessions: ''
  };
  loaded = false;
  /** the preset being launched */
  launching: string | null = null;
  /** sessions being stopped */
  stopping = new Set<string>();

  /** the session open in the side panel */
  current: SessionModel | null = null;

  /** name and key of the next launch (memory only) */
  launchOptions: LaunchOptions = { name: '', apiKey: '', useServerKey: true };
  /** the custom config editor's text, and the server's (or JSON's) refusal of it */
  configText = '';
  configError: FieldError | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Sessions that left the list (purged, here or elsewhere): their id, once, when a
   * sessions list no longer has a session an earlier list had or that was followed.
   */
  get removed(): ISignal<this, string> {
    return this._removed;
  }

  /** The id of the session open in the side panel (null: none). */
  get selected(): string | null {
    return this.current?.sessionId ?? null;
  }

  /** The session open in the side panel, as the last sessions list had it. */
  get selectedInfo(): SessionInfo | undefined {
    return this.current?.info;
  }

  /** A session as the last sessions list had it. */
  sessionInfo(sessionId: string): SessionInfo | undefined {
    return this.sessions.find(s => s.session_id === sessionId);
  }

  /** What a session is called: its name, else its preset's name. */
  label(sessionId: string): string {
    const info = this.sessionInfo(sessionId);
    return info ? info.name || this.presetName(info.config_id) : sessionId;
  }

  /** The name of a preset (its id until the presets are loaded). */
  presetName(configId: string): string {
    return this.configs.find(c => c.id === configId)?.name || configId;
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
      const listed = new Set(sessions.map(s => s.session_id));
      for (const id of [...this._known]) {
        if (!listed.has(id)) {
          this._known.delete(id);
          if (id === this.selected) {
            this.select(null);
          }
          this._removed.emit(id);
        }
      }
      for (const id of listed) {
        this._known.add(id);
      }
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

  /**
   * Launch a preset; the new session's id (selected), or null (`errors.launch`).
   * `extra`: more of the launch body (a folder workspace: `workspace`, ...).
   */
  async launch(
    configId: string,
    extra: Partial<LaunchRequest> = {}
  ): Promise<string | null> {
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
      return await this._launch({
        ...this.launchRequest({ config_id: configId }),
        ...extra
      });
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
    const label = this.label(sessionId);
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

  /**
   * Look at a session in the side panel (null: none): its whole log is replayed, then
   * followed.  The tab shown (chat or files) stays the same.
   */
  select(sessionId: string | null): void {
    if (sessionId === this.selected) {
      return;
    }
    const tab = this.current?.tab ?? 'chat';
    this.current?.dispose();
    this.current = sessionId === null ? null : this.follow(sessionId, { tab });
    this.current?.changed.connect(() => this._emit(), this);
    this._emit();
  }

  /**
   * A model of one session, following it (the side panel's, or a main-area tab's):
   * whoever asked for it disposes of it.
   */
  follow(sessionId: string, options: SessionModelOptions = {}): SessionModel {
    const session = new SessionModel(this, sessionId, options);
    this._known.add(sessionId);
    session.start();
    return session;
  }

  /** Stop the session open in the side panel (its workspace is kept). */
  async stopSelected(): Promise<void> {
    await this.current?.stop();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.current?.dispose();
    this.current = null;
    Signal.clearData(this);
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
  private _removed = new Signal<this, string>(this);
  /** the sessions `removed` is about: listed or followed, not yet seen to leave */
  private _known = new Set<string>();
  private _disposed = false;
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
