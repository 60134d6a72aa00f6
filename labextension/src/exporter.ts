/**
 * Export a conversation as a notebook into the Jupyter tree (the contents API), so it
 * opens like any other notebook; a download when the tree refuses it.
 */

import { AgClusterAPI, SessionInfo } from './api';
import { saveBlob } from './transfer';

/** What the export needs of JupyterLab's contents manager. */
export interface ContentsLike {
  get(path: string, options?: { content?: boolean }): Promise<unknown>;
  save(
    path: string,
    options: { type: 'notebook'; format: 'json'; content: unknown }
  ): Promise<{ path: string }>;
}

/** A file-name-safe form of a label: "My agent #2" → "my-agent-2". */
export function slug(label: string): string {
  return (
    label
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[-.]+|-+$/g, '')
      .slice(0, 60) || 'agent'
  );
}

/** The notebook's name: the session's name (or preset) and the start of its id. */
export function exportName(sessionId: string, info?: SessionInfo): string {
  const label = info?.name || info?.config_id || 'agent';
  return `${slug(label)}-${sessionId.slice(0, 8)}`;
}

function join(directory: string, name: string): string {
  const dir = directory.replace(/^\/+|\/+$/g, '');
  return dir ? `${dir}/${name}` : name;
}

/** `dir/base.ipynb`, else `dir/base-1.ipynb`, ...: the first path nothing is at. */
export async function freePath(
  contents: ContentsLike,
  directory: string,
  base: string,
  ext: string
): Promise<string> {
  for (let i = 0; i < 1000; i++) {
    const path = join(directory, `${base}${i ? `-${i}` : ''}${ext}`);
    try {
      await contents.get(path, { content: false });
    } catch {
      return path; // nothing there
    }
  }
  throw new Error(`no free name for ${base}${ext} in ${directory || '/'}`);
}

export interface ExportResult {
  /** where it went: a path of the Jupyter tree, or the downloaded file's name */
  path: string;
  saved: 'contents' | 'download';
}

/**
 * Fetch the session's conversation as a notebook (`export?format=ipynb`) and save it in
 * `directory` of the Jupyter tree; when that fails, download it instead.
 */
export async function exportNotebook(
  api: AgClusterAPI,
  contents: ContentsLike | null,
  sessionId: string,
  options: { info?: SessionInfo; directory?: string } = {}
): Promise<ExportResult> {
  const response = await api.exportConversation(sessionId, 'ipynb');
  const text = await response.text();
  const base = exportName(sessionId, options.info);
  if (contents) {
    try {
      const notebook = JSON.parse(text) as unknown;
      const path = await freePath(
        contents,
        options.directory ?? '',
        base,
        '.ipynb'
      );
      const saved = await contents.save(path, {
        type: 'notebook',
        format: 'json',
        content: notebook
      });
      return { path: saved.path || path, saved: 'contents' };
    } catch (error) {
      console.warn(
        'agcluster-jupyter: could not save the export in the Jupyter tree; downloading it',
        error
      );
    }
  }
  const name = `${base}.ipynb`;
  saveBlob(new Blob([text], { type: 'application/x-ipynb+json' }), name);
  return { path: name, saved: 'download' };
}
