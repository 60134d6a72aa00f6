/**
 * Code from the chat as notebook cells: one cell per block, split where a Python file
 * marks cells (`# %%`, as Jupytext, VS Code and Spyder do); `# %% [markdown]` parts become
 * Markdown cells with their comment marks taken off.  Pure.
 */

export interface NewCell {
  cell_type: 'code' | 'markdown';
  source: string;
}

const MARKER = /^#\s*%%(.*)$/;

export function splitCells(code: string): NewCell[] {
  const cells: NewCell[] = [];
  let kind: NewCell['cell_type'] = 'code';
  let lines: string[] = [];
  const flush = (): void => {
    let text = lines.join('\n').replace(/^\n+|\s+$/g, '');
    if (kind === 'markdown') {
      text = text
        .split('\n')
        .map(line => line.replace(/^#\s?/, ''))
        .join('\n');
    }
    if (text) {
      cells.push({ cell_type: kind, source: text });
    }
    lines = [];
  };
  for (const line of code.replace(/\r\n/g, '\n').split('\n')) {
    const marker = MARKER.exec(line);
    if (marker) {
      flush();
      kind = /\[\s*markdown\s*\]/i.test(marker[1]) ? 'markdown' : 'code';
      continue;
    }
    lines.push(line);
  }
  flush();
  return cells;
}
