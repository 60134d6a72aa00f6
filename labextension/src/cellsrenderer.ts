/**
 * `%%agent --cells`: the kernel displays the agent's reply as
 * `application/vnd.agcluster.cells+json` (`kernel/reply_cells.py`); this renderer
 * inserts those cells below the cell the output belongs to, once: every inserted cell
 * carries `metadata.agcluster.from` = the bundle's key, and a bundle whose cells are
 * already there inserts nothing (a re-render, a reopened notebook).  The type is not
 * "safe": JupyterLab renders it only for trusted outputs (the user's own run), so a
 * notebook from elsewhere inserts nothing.
 */

import { IRenderMime } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { asNotebook } from './notebooklike';

export const CELLS_MIME = 'application/vnd.agcluster.cells+json';

interface CellsBundle {
  key: string;
  cells: { cell_type: string; source: string }[];
}

function parse(data: unknown): CellsBundle | null {
  const bundle = data as Partial<CellsBundle> | null;
  if (
    !bundle ||
    typeof bundle.key !== 'string' ||
    !Array.isArray(bundle.cells)
  ) {
    return null;
  }
  const cells = bundle.cells.filter(
    c =>
      c &&
      (c.cell_type === 'code' || c.cell_type === 'markdown') &&
      typeof c.source === 'string'
  );
  return { key: bundle.key, cells };
}

/** Insert the bundle's cells below the cell holding `node`; how many were inserted. */
export function insertBelow(
  node: HTMLElement,
  bundle: CellsBundle,
  widgets: Iterable<unknown>
): number | null {
  for (const widget of widgets) {
    const notebook = asNotebook(widget);
    const model = notebook?.content.model;
    if (!notebook || !model) {
      continue;
    }
    const cells = notebook.content.widgets;
    const index = cells.findIndex(cell => cell.node.contains(node));
    if (index < 0) {
      continue;
    }
    const done = cells.some(cell => {
      const mark = cell.model.getMetadata('agcluster') as
        { from?: unknown } | undefined;
      return mark?.from === bundle.key;
    });
    if (done) {
      return 0;
    }
    bundle.cells.forEach((cell, i) => {
      model.sharedModel.insertCell(index + 1 + i, {
        cell_type: cell.cell_type,
        source: cell.source,
        metadata: { agcluster: { from: bundle.key } }
      });
    });
    return bundle.cells.length;
  }
  return null;
}

export class CellsRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly widgets: () => Iterable<unknown>) {
    super();
    this.addClass('jp-AgentsPanel-cellsOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const bundle = parse(model.data[CELLS_MIME]);
    if (!bundle) {
      this.node.textContent = 'agcluster: unreadable cells output';
      return;
    }
    const count = bundle.cells.length;
    this.node.textContent = `${count} cell${count === 1 ? '' : 's'} from the agent's reply, below.`;
    // the output is in the page only once it is attached: then find its cell
    for (let i = 0; i < 50 && !this.node.isConnected; i++) {
      await new Promise(resolve => requestAnimationFrame(resolve));
    }
    const inserted = insertBelow(this.node, bundle, this.widgets());
    if (inserted === null) {
      this.node.textContent = `${count} cell${count === 1 ? '' : 's'} from the agent's reply (no notebook to insert them into here).`;
    }
  }
}
