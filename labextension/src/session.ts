/**
 * One session being looked at: its event-folded view, fed by a follower of its event log
 * and by the turns sent from here, its Files tab (tree, preview, uploads) and its chat's
 * actions.  The side panel has one (the session open in it); each session opened in a
 * main-area tab has its own.  What is shared (the sessions list, stop and purge, the
 * hooks into JupyterLab) stays in the `AgentsModel` it belongs to.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, FilePreview, FileTree, SessionInfo, isAbort } from './api';
import { AgentEvent } from './events';
import { contentsPathOf } from './filetree';
import type { AgentsModel } from './model';
import { SessionView, answered, applyEvent, emptyView } from './reducer';
import { ConnectionState, EventFollower, streamTurn } from './sse';
import { buildUpload, sendUpload } from './transfer';

export type SessionTab = 'chat' | 'files';

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

export interface SessionModelOptions {
  /** the tab shown first */
  tab?: SessionTab;
}

export class SessionModel {
  constructor(
    readonly agents: AgentsModel,
    readonly sessionId: string,
    options: SessionModelOptions = {}
  ) {
    this.view = emptyView(sessionId);
    this.tab = options.tab ?? 'chat';
  }

  view: SessionView;
  connection: ConnectionState = 'closed';
  connectionDetail = '';
  /** a turn sent from here is streaming */
  sending = false;
  /** the last failure to show, per area ('' when none) */
  errors: { [area in 'chat' | 'files']: string } = { chat: '', files: '' };

  /** which tab shows */
  tab: SessionTab;
  /** the workspace tree (null: not loaded yet) */
  files: FileTree | null = null;
  filesLoading = false;
  /** the file shown in the pane (workspaces outside the Jupyter tree) */
  preview: FilePreview | null = null;
  uploads: UploadState[] = [];

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
      void this.refreshFiles();
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

  /** Stop the session (its workspace is kept). */
  stop(): Promise<void> {
    return this.agents.stop(this.sessionId);
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

  /** Load the workspace tree again. */
  async refreshFiles(): Promise<void> {
    this.filesLoading = true;
    this._emit();
    try {
      this.files = await this.agents.api.files(this.sessionId);
      this.errors.files = '';
    } catch (error) {
      this.errors.files = message(error);
    } finally {
      this.filesLoading = false;
      this._emit();
    }
  }

  /**
   * Open a workspace file: in JupyterLab's own editor or viewer when the workspace is in
   * the Jupyter tree, else its preview in the pane.
   */
  async openFile(path: string): Promise<void> {
    const contentsPath = this.info?.contents_path;
    const openInLab = this.agents.hooks.openInLab;
    if (typeof contentsPath === 'string' && openInLab) {
      try {
        await openInLab(contentsPathOf(contentsPath, path));
        return;
      } catch (error) {
        // fall back to the preview, saying why
        this.errors.files = `could not open it in JupyterLab: ${message(error)}`;
      }
    }
    try {
      this.preview = await this.agents.api.file(this.sessionId, path);
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
    try {
      const response = await this.agents.api.rawFile(this.sessionId, path);
      await this.agents.hooks.save(response, path.split('/').pop() || 'file');
    } catch (error) {
      this.errors.files = message(error);
      this._emit();
    }
  }

  /** Download the whole workspace as a ZIP. */
  async downloadWorkspace(): Promise<void> {
    try {
      const response = await this.agents.api.workspaceZip(this.sessionId);
      await this.agents.hooks.save(response, `${this.sessionId}-workspace.zip`);
    } catch (error) {
      this.errors.files = message(error);
      this._emit();
    }
  }

  /**
   * Upload files into a folder of the workspace, with progress.  When one exists already
   * (409), ask whether to overwrite and, if so, send them again with `overwrite=true`.
   * The upload's final state.
   */
  async upload(
    files: readonly File[],
    targetPath = ''
  ): Promise<UploadState | null> {
    if (files.length === 0 || this._disposed) {
      return null;
    }
    const { api, hooks } = this.agents;
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
          const request = await buildUpload(api, this.sessionId, files, {
            targetPath,
            overwrite
          });
          await sendUpload(request, {
            signal: controller.signal,
            createXHR: hooks.createXHR,
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
            const ok = await hooks.confirm({
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
    if (upload.state === 'done' && !this._disposed) {
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

  /** Stop following: the event stream, a running turn's stream and uploads end here. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._filesTimer !== null) {
      clearTimeout(this._filesTimer);
      this._filesTimer = null;
    }
    for (const controller of this._uploadControllers.values()) {
      controller.abort();
    }
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

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
