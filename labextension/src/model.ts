/**
 * The state of the Agents panel: server health, presets, sessions, and for the session
 * being looked at, its event-folded view, fed by a follower of its event log and by the
 * turns sent from here.  The React view renders it and re-renders on `changed`.
 */

import { ISignal, Signal } from '@lumino/signaling';

import {
  AgClusterAPI,
  ConfigSummary,
  Health,
  SessionInfo,
  isAbort
} from './api';
import { AgentEvent } from './events';
import { SessionView, answered, applyEvent, emptyView } from './reducer';
import { ConnectionState, EventFollower, streamTurn } from './sse';

export class AgentsModel {
  constructor(api?: AgClusterAPI) {
    this.api = api ?? new AgClusterAPI();
  }

  readonly api: AgClusterAPI;

  health: Health | null = null;
  configs: ConfigSummary[] = [];
  sessions: SessionInfo[] = [];
  /** the last failure to show, per area ('' when none) */
  errors: { [area in 'server' | 'launch' | 'sessions' | 'chat']: string } = {
    server: '',
    launch: '',
    sessions: '',
    chat: ''
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

  async launch(configId: string): Promise<string | null> {
    this.launching = configId;
    this.errors.launch = '';
    this._emit();
    try {
      const reply = await this.api.launch({ config_id: configId });
      await this.refreshSessions();
      this.select(reply.session_id);
      return reply.session_id;
    } catch (error) {
      this.errors.launch = message(error);
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

  /** Look at a session (null: none): its whole log is replayed, then followed. */
  select(sessionId: string | null): void {
    if (sessionId === this.selected) {
      return;
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
    }
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
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
