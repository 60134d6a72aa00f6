/**
 * One session being looked at: its event-folded view, fed by a follower of its event log
 * and by the turns sent from here, its chat's actions, and its files (`files`: the
 * `WorkspaceFiles` of files.ts, with the tree, preview and uploads).  The side panel
 * has one (the session open in it); each session opened in a main-area tab has its own.
 * What is shared (the sessions list, stop and purge, the hooks into JupyterLab) stays in
 * the `AgentsModel` it belongs to, seen here as the `SessionHost` of host.ts.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { SessionInfo, isAbort } from './api';
import { AgentEvent } from './events';
import { WorkspaceFiles } from './files';
import type { SessionHost } from './host';
import { SessionView, answered, applyEvent, emptyView } from './reducer';
import { ConnectionState, EventFollower, streamTurn } from './sse';

export type { UploadState } from './files';

export type SessionTab = 'chat' | 'files';

export interface SessionModelOptions {
  /** the tab shown first */
  tab?: SessionTab;
}

export class SessionModel {
  constructor(
    readonly agents: SessionHost,
    readonly sessionId: string,
    options: SessionModelOptions = {}
  ) {
    this.view = emptyView(sessionId);
    this.tab = options.tab ?? 'chat';
    this.files = new WorkspaceFiles(agents, sessionId, () => this._emit());
  }

  view: SessionView;
  connection: ConnectionState = 'closed';
  connectionDetail = '';
  /** a turn sent from here is streaming */
  sending = false;
  /** the last failure to show, per area ('' when none) */
  errors: { chat: string } = { chat: '' };

  /** which tab shows */
  tab: SessionTab;
  /** its workspace: tree, preview, uploads */
  readonly files: WorkspaceFiles;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The session as the last sessions list had it. */
  get info(): SessionInfo | undefined {
    return this.agents.sessionInfo(this.sessionId);
  }

  /** A turn runs (sent from here, or seen in the event log). */
  get busy(): boolean {
    return this.sending || this.view.busy;
  }

  /** Its stop or purge is under way. */
  get stopping(): boolean {
    return this.agents.stopping.has(this.sessionId);
  }

  /** Follow the event log (its whole log is replayed first); load the files if shown. */
  start(): void {
    if (this._follower !== null || this._disposed) {
      return;
    }
    const sessionId = this.sessionId;
    this._follower = new EventFollower(this.agents.api, sessionId, {
      onEvent: event => this._apply(event),
      onConnection: (state, detail) => {
        this.connection = state;
        this.connectionDetail = detail ?? '';
        this._emit();
        if (state === 'failed') {
          // gone (purged elsewhere?): the list says, and whoever shows it follows
          void this.agents.refreshSessions();
        }
      }
    });
    void this._follower.start();
    if (this.tab === 'files') {
      void this.files.refresh();
    }
  }

  /** Send a message and stream its turn. */
  async send(text: string): Promise<void> {
    if (!text.trim() || this.sending || this._disposed) {
      return;
    }
    const controller = new AbortController();
    this._turn = controller;
    this.sending = true;
    this.errors.chat = '';
    this._emit();
    try {
      await streamTurn(this.agents.api, this.sessionId, text, {
        // what the view has: events the follower has not delivered yet come from either
        // stream, and the reducer takes each seq once
        after: this.view.lastSeq,
        onEvent: event => this._apply(event),
        signal: controller.signal
      });
    } catch (error) {
      if (!isAbort(error)) {
        this.errors.chat = message(error);
      }
    } finally {
      if (this._turn === controller) {
        this._turn = null;
        this.sending = false;
      }
      this._emit();
      if (!this._disposed) {
        void this.agents.refreshSessions();
      }
    }
  }

  async interrupt(): Promise<void> {
    try {
      await this.agents.api.interrupt(this.sessionId);
    } catch (error) {
      this.errors.chat = message(error);
      this._emit();
    }
  }

  async answer(requestId: string, decision: 'allow' | 'deny'): Promise<void> {
    try {
      await this.agents.api.answerPermission(
        this.sessionId,
        requestId,
        decision
      );
      this.view = answered(this.view, requestId);
    } catch (error) {
      this.errors.chat = message(error);
    }
    this._emit();
  }

  /** Grant the session the notebook's running kernel (after a restart); the outcome as
   * a line for the tool call it came from. */
  async grantKernel(notebook: string): Promise<string> {
    try {
      const reply = await this.agents.api.grantKernel(this.sessionId, notebook);
      return `Granted: the kernel ${reply.kernel_id} of ${reply.notebook}. Ask the agent to try again.`;
    } catch (error) {
      return `Not granted: ${message(error)}`;
    }
  }

  /** Stop the session (its workspace is kept). */
  stop(): Promise<void> {
    return this.agents.stop(this.sessionId);
  }

  setTab(tab: SessionTab): void {
    if (tab !== this.tab) {
      this.tab = tab;
      this._emit();
      if (tab === 'files' && this.files.tree === null) {
        void this.files.refresh();
      }
    }
  }

  /** Stop following: the event stream, a running turn's stream and uploads end here. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.files.dispose();
    this._follower?.stop();
    this._turn?.abort();
    Signal.clearData(this);
  }

  private _apply(event: AgentEvent): void {
    if (this._disposed) {
      return;
    }
    const next = applyEvent(this.view, event);
    if (next !== this.view) {
      this.view = next;
      this._emit();
      if (event.type === 'done') {
        this.files.refreshSoon();
      }
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
