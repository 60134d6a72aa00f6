/** The workspace tree as the panel draws it: one row per visible node, depth-first. */

import { FileNode } from './api';

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
