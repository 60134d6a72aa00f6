/**
 * The files of one followed session: its workspace tree (and the rows the Files tab draws
 * of it), the file previewed in the pane, downloads, and uploads with their progress
 * (asking before one overwrites; the transport is transfer.ts).  The session
 * (session.ts) owns one as `files`; the Files tab (filestab.tsx) shows it.
 */

import { ApiError, FileNode, FilePreview, FileTree, isAbort } from './api';
import type { SessionHost } from './host';
import { buildUpload, sendUpload } from './transfer';

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

export class WorkspaceFiles {
  /**
   * @param onChange called on every change (the session emits its `changed`)
   */
  constructor(
    readonly host: SessionHost,
    readonly sessionId: string,
    private readonly _onChange: () => void
  ) {}

  /** the workspace tree (null: not loaded yet) */
  tree: FileTree | null = null;
  loading = false;
  /** the file shown in the pane (workspaces outside the Jupyter tree) */
  preview: FilePreview | null = null;
  uploads: UploadState[] = [];
  /** the last failure to show ('' when none) */
  error = '';

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Files open in JupyterLab (the workspace is in the Jupyter tree), not the preview. */
  get inLab(): boolean {
    return (
      typeof this._contentsPath() === 'string' &&
      this.host.hooks.openInLab !== null
    );
  }

  /** Load the workspace tree again. */
  async refresh(): Promise<void> {
    this.loading = true;
    this._emit();
    try {
      this.tree = await this.host.api.files(this.sessionId);
      this.error = '';
    } catch (error) {
      this.error = message(error);
    } finally {
      this.loading = false;
      this._emit();
    }
  }

  /** After a turn: the tree again (once for a burst of turns, as in a replayed log). */
  refreshSoon(): void {
    if (this._timer !== null || this.tree === null || this._disposed) {
      return; // never loaded: it loads when the Files tab opens
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, 150);
  }

  /**
   * Open a workspace file: in JupyterLab's own editor or viewer when the workspace is in
   * the Jupyter tree, else its preview in the pane.
   */
  async openFile(path: string): Promise<void> {
    const contentsPath = this._contentsPath();
    const openInLab = this.host.hooks.openInLab;
    if (typeof contentsPath === 'string' && openInLab) {
      try {
        await openInLab(contentsPathOf(contentsPath, path));
        return;
      } catch (error) {
        // fall back to the preview, saying why
        this.error = `could not open it in JupyterLab: ${message(error)}`;
      }
    }
    try {
      this.preview = await this.host.api.file(this.sessionId, path);
    } catch (error) {
      this.error = message(error);
    }
    this._emit();
  }

  /** "Insert as cells" is offered (a notebook can be reached from here). */
  get canInsert(): boolean {
    return this.host.hooks.insertCode !== null;
  }

  /**
   * A Python file of the workspace into the active notebook, as cells (`# %%` marks
   * split it); refused for a file too big to be a notebook's worth of code.
   */
  async insertAsCells(path: string): Promise<void> {
    const insert = this.host.hooks.insertCode;
    if (!insert) {
      return;
    }
    try {
      const preview = await this.host.api.file(this.sessionId, path);
      if (
        preview.binary ||
        preview.truncated ||
        typeof preview.content !== 'string'
      ) {
        this.error = `${path} is too big or not text: open it and copy what you need`;
      } else {
        insert(preview.content);
        return;
      }
    } catch (error) {
      this.error = message(error);
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
      const response = await this.host.api.rawFile(this.sessionId, path);
      await this.host.hooks.save(response, path.split('/').pop() || 'file');
    } catch (error) {
      this.error = message(error);
      this._emit();
    }
  }

  /** Download the whole workspace as a ZIP. */
  async downloadWorkspace(): Promise<void> {
    try {
      const response = await this.host.api.workspaceZip(this.sessionId);
      await this.host.hooks.save(response, `${this.sessionId}-workspace.zip`);
    } catch (error) {
      this.error = message(error);
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
    const { api, hooks } = this.host;
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
      await this.refresh();
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

  /** Uploads under way end here, and so does a pending refresh. */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    for (const controller of this._uploadControllers.values()) {
      controller.abort();
    }
  }

  private _contentsPath(): string | null | undefined {
    return this.host.sessionInfo(this.sessionId)?.contents_path;
  }

  private _emit(): void {
    if (!this._disposed) {
      this._onChange();
    }
  }

  private _disposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _uploadSeq = 0;
  private _uploadControllers = new Map<number, AbortController>();
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// -- the tree as the Files tab draws it: one row per visible node, depth-first

export interface TreeRow {
  node: FileNode;
  depth: number;
  /** a directory whose children are hidden */
  collapsed: boolean;
}

/** Directories first, then files, each by name (case-insensitive). */
export function sortNodes(nodes: readonly FileNode[]): FileNode[] {
  return [...nodes].sort((a, b) => {
    const dirA = a.type === 'directory' ? 0 : 1;
    const dirB = b.type === 'directory' ? 0 : 1;
    if (dirA !== dirB) {
      return dirA - dirB;
    }
    return a.name.localeCompare(b.name, undefined, { sensitivity: 'base' });
  });
}

/** The rows to draw: children of collapsed directories are left out. */
export function treeRows(
  nodes: readonly FileNode[],
  collapsed: ReadonlySet<string>,
  depth = 0
): TreeRow[] {
  const rows: TreeRow[] = [];
  for (const node of sortNodes(nodes)) {
    const isCollapsed = node.type === 'directory' && collapsed.has(node.path);
    rows.push({ node, depth, collapsed: isCollapsed });
    if (node.type === 'directory' && !isCollapsed && node.children) {
      rows.push(...treeRows(node.children, collapsed, depth + 1));
    }
  }
  return rows;
}

/** Where a workspace file sits in the Jupyter tree (`contents_path` + '/' + path). */
export function contentsPathOf(contentsPath: string, path: string): string {
  const root = contentsPath.replace(/\/+$/, '');
  const file = path.replace(/^\/+/, '');
  return root ? `${root}/${file}` : file;
}
