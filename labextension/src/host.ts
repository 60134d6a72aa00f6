/**
 * What a followed session (session.ts) and its files (files.ts) ask of the
 * `AgentsModel` they belong to (model.ts implements it), and what that model asks of its
 * surroundings.  Types only: session.ts and files.ts depend on these, not on
 * model.ts, which creates the sessions (no import cycle).
 */

import type { AgClusterAPI, SessionInfo } from './api';
import type { Confirm } from './dialogs';
import type { XHRLike } from './transfer';

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
  /**
   * put code into the active notebook as cells below its active cell; the number of
   * cells inserted (null: no notebook can be reached from here)
   */
  insertCode: ((code: string) => number) | null;
}

/** The shared side of every followed session: the sessions list, stop, the hooks. */
export interface SessionHost {
  readonly api: AgClusterAPI;
  readonly hooks: ModelHooks;
  /** sessions being stopped */
  readonly stopping: ReadonlySet<string>;
  /** A session as the last sessions list had it. */
  sessionInfo(sessionId: string): SessionInfo | undefined;
  /** What a session is called: its name, else its preset's name. */
  label(sessionId: string): string;
  refreshSessions(): Promise<void>;
  stop(sessionId: string, purge?: boolean): Promise<void>;
  /** Look at a session in the side panel (null: none). */
  select(sessionId: string | null): void;
}
