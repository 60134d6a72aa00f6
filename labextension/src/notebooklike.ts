/**
 * The little of a JupyterLab NotebookPanel that inserting cells needs, duck-typed:
 * JupyterLab and Notebook 7 both have it, and the extension needs no dependency on
 * `@jupyterlab/notebook` for it.
 */

export interface NotebookLike {
  readonly isDisposed: boolean;
  readonly content: {
    activeCellIndex: number;
    readonly widgets: readonly {
      readonly node: HTMLElement;
      readonly model: { getMetadata(key: string): unknown };
    }[];
    readonly model: {
      readonly sharedModel: {
        insertCell(
          index: number,
          cell: { cell_type: string; source: string; metadata?: object }
        ): unknown;
      };
    } | null;
  };
}

/** `widget` if it is a notebook panel with a model, else null. */
export function asNotebook(widget: unknown): NotebookLike | null {
  const content = (widget as { content?: Partial<NotebookLike['content']> })
    ?.content;
  return content &&
    typeof content.activeCellIndex === 'number' &&
    Array.isArray(content.widgets) &&
    typeof content.model?.sharedModel?.insertCell === 'function'
    ? (widget as NotebookLike)
    : null;
}
