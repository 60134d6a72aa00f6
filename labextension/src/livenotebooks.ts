/**
 * Open notebooks and the agents' edits of them, without real-time collaboration.
 *
 * - Every open notebook's unsaved state goes to the server (`PUT notebooks/open`), again
 *   while it stays unsaved: an agent's edit of a notebook with unsaved changes is then
 *   refused as stale, so the user's typing is never written over.  Unsaved means the
 *   cells differ from the file (`cellsKey`), not metadata the kernel filled in.
 * - The page long-polls the agents' edits (`GET notebooks/edits`) and reloads an open
 *   notebook without unsaved changes from disk when one was edited: the agent's cells
 *   appear, and no "file changed on disk" dialog comes on the next save.
 *
 * With real-time collaboration a notebook's model is the room's shared document: the
 * server puts an agent's edits into it (`notebooks/shared.py`) and the page merges them
 * with the user's typing.  Such a notebook is neither reported nor reloaded here.
 *
 * Documents are found among the main area's widgets and used through the little of a
 * DocumentWidget's `context` this needs (duck-typed: Lab and Notebook 7 both have it).
 */

import { ISignal } from '@lumino/signaling';

import { AgClusterAPI, RestBody, RestReply } from './api';

/** Seconds between repeats of an "unsaved changes" report (the server holds one 60 s). */
const DIRTY_REPEAT_MS = 20_000;
/** How often the main area is looked at for newly opened notebooks. */
const SCAN_MS = 1_000;
/** Seconds one poll of the edits waits on the server. */
const POLL_SECONDS = 25;
/** After a failed poll (server restarting, tools off), the next one waits this long. */
const RETRY_MS = 10_000;

type EditsReply = RestReply<'notebookEdits'>;

/** The part of a document context this module uses. */
export interface OpenContext {
  readonly path: string;
  readonly isDisposed: boolean;
  readonly disposed: ISignal<unknown, void>;
  readonly model: {
    readonly dirty: boolean;
    /** the model is a room's shared document (real-time collaboration) */
    readonly collaborative?: boolean;
    readonly stateChanged: ISignal<unknown, { name: string }>;
    readonly contentChanged: ISignal<unknown, void>;
    /** a notebook model's cells (JupyterLab's CellList) */
    readonly cells?: {
      readonly length: number;
      get(index: number): {
        readonly id: string;
        readonly type: string;
        readonly sharedModel: { getSource(): string };
      };
    };
  };
  revert(): Promise<void>;
}

/**
 * What of a notebook the user types: its cells' ids, types and sources.  JupyterLab also
 * marks a notebook changed when the kernel fills in its metadata (`language_info`), which
 * is no typing of the user's: only a change of this counts as unsaved work.
 */
export function cellsKey(context: OpenContext): string {
  const cells = context.model.cells;
  if (!cells) {
    return '';
  }
  const parts: string[] = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    parts.push(
      `${cell.id}\u0000${cell.type}\u0000${cell.sharedModel.getSource()}`
    );
  }
  return parts.join('\u0001');
}

/** How long typing settles before the unsaved state is looked at again. */
const SETTLE_MS = 250;

/** A main-area widget holding a document. */
function contextOf(widget: unknown): OpenContext | null {
  const context = (widget as { context?: Partial<OpenContext> } | null)
    ?.context;
  if (
    !context ||
    typeof context.path !== 'string' ||
    typeof context.revert !== 'function' ||
    !context.model ||
    !context.disposed
  ) {
    return null;
  }
  return context as OpenContext;
}

/** A context's path as the server names it: without a drive prefix (`RTC:`). */
export function treePath(path: string): string {
  const colon = path.indexOf(':');
  const bare =
    colon >= 0 && !path.slice(0, colon).includes('/')
      ? path.slice(colon + 1)
      : path;
  return bare.replace(/^\/+/, '');
}

export class LiveNotebooks {
  constructor(
    private readonly api: Pick<AgClusterAPI, 'json'>,
    private readonly widgets: () => Iterable<unknown>
  ) {}

  /** Start following; idempotent. */
  start(): void {
    if (this._scanTimer !== null) {
      return;
    }
    this._scanTimer = setInterval(() => this.scan(), SCAN_MS);
    this._repeatTimer = setInterval(() => this.repeatDirty(), DIRTY_REPEAT_MS);
    this.scan();
    void this.poll();
  }

  dispose(): void {
    this._stopped = true;
    if (this._scanTimer !== null) {
      clearInterval(this._scanTimer);
    }
    if (this._repeatTimer !== null) {
      clearInterval(this._repeatTimer);
    }
    this._scanTimer = this._repeatTimer = null;
  }

  /** The open notebooks this page follows, by tree path. */
  get open(): ReadonlyMap<string, OpenContext> {
    const out = new Map<string, OpenContext>();
    for (const context of this._contexts) {
      out.set(treePath(context.path), context);
    }
    return out;
  }

  /** Follow the notebooks opened since the last look. */
  scan(): void {
    for (const widget of this.widgets()) {
      const context = contextOf(widget);
      if (
        !context ||
        context.isDisposed ||
        this._contexts.has(context) ||
        !context.path.endsWith('.ipynb') ||
        context.model.collaborative === true
      ) {
        continue;
      }
      this._contexts.add(context);
      // as on disk now (opened moments ago); again whenever it is saved or reloaded
      this._saved.set(context, cellsKey(context));
      context.model.stateChanged.connect((_, change) => {
        if (change.name === 'dirty' && !context.model.dirty) {
          this._saved.set(context, cellsKey(context));
        }
        this.check(context);
      });
      let settle: ReturnType<typeof setTimeout> | null = null;
      context.model.contentChanged.connect(() => {
        if (settle === null) {
          settle = setTimeout(() => {
            settle = null;
            this.check(context);
          }, SETTLE_MS);
        }
      });
      context.disposed.connect(() => {
        this._contexts.delete(context);
        this._saved.delete(context);
        if (this._reportedDirty.delete(context)) {
          void this.send(treePath(context.path), false);
        }
      });
    }
  }

  /** Has the user typed something into the notebook that is not saved? */
  unsaved(context: OpenContext): boolean {
    return (
      context.model.dirty && cellsKey(context) !== this._saved.get(context)
    );
  }

  /** Tell the server when the unsaved state of an open notebook changed. */
  private check(context: OpenContext): void {
    if (context.isDisposed) {
      return;
    }
    const unsaved = this.unsaved(context);
    if (unsaved === this._reportedDirty.has(context)) {
      return;
    }
    if (unsaved) {
      this._reportedDirty.add(context);
    } else {
      this._reportedDirty.delete(context);
    }
    void this.send(treePath(context.path), unsaved);
  }

  private repeatDirty(): void {
    for (const context of this._reportedDirty) {
      if (!context.isDisposed) {
        void this.send(treePath(context.path), true);
      }
    }
  }

  /** Reports of one path go one after the other: a late "unsaved" must not land last. */
  private send(path: string, dirty: boolean): Promise<void> {
    const previous = this._sending.get(path) ?? Promise.resolve();
    const next = previous.then(() => this._send(path, dirty));
    this._sending.set(path, next);
    void next.then(() => {
      if (this._sending.get(path) === next) {
        this._sending.delete(path);
      }
    });
    return next;
  }

  private async _send(path: string, dirty: boolean): Promise<void> {
    const body: RestBody<'reportOpenNotebook'> = {
      path,
      dirty,
      page: this._page
    };
    try {
      await this.api.json<RestReply<'reportOpenNotebook'>>(
        'notebooks/open',
        'PUT',
        body
      );
    } catch (error) {
      // the tools are off, or the server is away: the edit check then has nothing to
      // protect, or the next repeat says it again
      console.debug('agcluster: notebook state not reported', error);
    }
  }

  /** Long-poll the agents' edits; reload what was edited and is open unchanged. */
  private async poll(): Promise<void> {
    let after: number | null = null;
    while (!this._stopped) {
      if (this._contexts.size === 0 && after !== null) {
        await sleep(SCAN_MS);
        continue;
      }
      try {
        const reply: EditsReply = await this.api.json<EditsReply>(
          'notebooks/edits',
          'GET',
          undefined,
          {
            after: String(after ?? 0),
            // the first look only learns where the feed is: older edits are on disk
            timeout: after === null ? '0' : String(POLL_SECONDS)
          }
        );
        const known = after;
        after = reply.last;
        if (known === null) {
          continue;
        }
        const open = this.open;
        for (const path of new Set(reply.edits.map(edit => edit.path))) {
          const context = open.get(path);
          if (context && !context.isDisposed && !this.unsaved(context)) {
            await context.revert();
          }
        }
      } catch (error) {
        console.debug('agcluster: notebook edits not polled', error);
        await sleep(RETRY_MS);
      }
    }
  }

  private readonly _contexts = new Set<OpenContext>();
  private readonly _reportedDirty = new Set<OpenContext>();
  /** each open notebook's cells as last loaded or saved (`cellsKey`) */
  private readonly _saved = new Map<OpenContext, string>();
  private readonly _sending = new Map<string, Promise<void>>();
  private readonly _page = `page-${Math.random().toString(36).slice(2, 12)}`;
  private _scanTimer: ReturnType<typeof setInterval> | null = null;
  private _repeatTimer: ReturnType<typeof setInterval> | null = null;
  private _stopped = false;
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
