/**
 * A turn's file changes in a main-area tab: the files it added, modified and deleted, each
 * with its unified diff (a notebook: its cell changes; a binary: its sizes), and what can
 * be done about them: restore these files, rewind the session to before the turn, fork a
 * new session from there, and undo the last restore or rewind.
 *
 * File names and diffs are the agent's (untrusted): they are rendered as React text nodes
 * only (a diff in a <pre>, each line a <span> classed by its +/-), never as HTML.
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   checkpoint-button      in the chat, under a finished turn that changed files:
 *                          "N files changed (+a −r lines)" (data-turn); click opens the view
 *   diff-view              the view of one turn (data-turn, data-session-id)
 *   diff-loading           while the diff loads
 *   diff-file              one file (data-path, data-status: added|modified|deleted)
 *   diff-file-path         its path;  diff-file-status  its status
 *   diff-text              its unified diff (a <pre>); lines: diff-line (data-kind:
 *                          add|del|hunk|meta|context)
 *   diff-truncated         the diff was cut by the server
 *   diff-cells             a notebook's cell changes; diff-cell one of them
 *   diff-binary            a binary file's sizes
 *   diff-restore           Restore these files
 *   diff-rewind            Rewind to before this turn (asks first, in a JupyterLab dialog)
 *   diff-fork              Fork from here
 *   diff-undo              Undo (after a restore or a rewind)
 *   diff-message           what the last action did
 *   diff-error             the server's message when an action failed (409 while a turn runs)
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import {
  AgClusterAPI,
  CellChange,
  CheckpointAPI,
  CheckpointDiff,
  FileChange
} from './api';
import { Confirm, confirmDialog } from './dialogs';
import { agentsIcon } from './icons';

/** The DOM id of a turn's diff tab. */
export function diffTabId(sessionId: string, turn: number): string {
  return `agcluster-diff-${sessionId}-${turn}`;
}

export type DiffLineKind = 'add' | 'del' | 'hunk' | 'meta' | 'context';

/** What a line of a unified diff is. */
export function diffLineKind(line: string): DiffLineKind {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'meta';
  }
  if (line.startsWith('@@')) {
    return 'hunk';
  }
  if (line.startsWith('+')) {
    return 'add';
  }
  if (line.startsWith('-')) {
    return 'del';
  }
  if (line.startsWith('\\')) {
    return 'meta';
  }
  return 'context';
}

/** A unified diff as text: one <span> per line, classed by its kind. */
export function DiffText({ text }: { text: string }): JSX.Element {
  const lines = text.replace(/\n$/, '').split('\n');
  return (
    <pre className="jp-AgentsDiff-text" data-testid="diff-text">
      {lines.map((line, i) => {
        const kind = diffLineKind(line);
        return (
          <span
            key={i}
            className={`jp-AgentsDiff-line jp-AgentsDiff-line-${kind}`}
            data-testid="diff-line"
            data-kind={kind}
          >
            {line}
          </span>
        );
      })}
    </pre>
  );
}

function size(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '\u2013';
  }
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  if (bytes < 1024 * 1024) {
    return `${(bytes / 1024).toFixed(1)} KB`;
  }
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function CellView({ cell }: { cell: CellChange }): JSX.Element {
  const index = cell.index ?? cell.index_before;
  const changed =
    Array.isArray(cell.changed) && cell.changed.length
      ? ` (${cell.changed.map(String).join(', ')})`
      : '';
  return (
    <li
      className={`jp-AgentsDiff-cell jp-AgentsDiff-cell-${String(cell.status)}`}
      data-testid="diff-cell"
      data-status={String(cell.status)}
    >
      <div className="jp-AgentsDiff-cellHead">
        {`${String(cell.status)} ${String(cell.cell_type ?? 'cell')} ${
          index === undefined ? '' : `#${index}`
        }${changed}`}
      </div>
      {typeof cell.diff === 'string' && cell.diff && (
        <DiffText text={cell.diff} />
      )}
      {typeof cell.diff !== 'string' && typeof cell.source === 'string' && (
        <pre className="jp-AgentsDiff-text">
          {cell.source.split('\n').map((line, i) => (
            <span
              key={i}
              className={`jp-AgentsDiff-line jp-AgentsDiff-line-${
                cell.status === 'deleted' ? 'del' : 'add'
              }`}
            >
              {(cell.status === 'deleted' ? '-' : '+') + line}
            </span>
          ))}
        </pre>
      )}
    </li>
  );
}

/** One file of a turn's diff. */
export function FileView({ file }: { file: FileChange }): JSX.Element {
  const status = String(file.status);
  return (
    <li
      className={`jp-AgentsDiff-file jp-AgentsDiff-file-${status}`}
      data-testid="diff-file"
      data-path={file.path}
      data-status={status}
    >
      <div className="jp-AgentsDiff-fileHead">
        <span
          className={`jp-AgentsDiff-status jp-AgentsDiff-status-${status}`}
          data-testid="diff-file-status"
        >
          {status}
        </span>{' '}
        <span className="jp-AgentsDiff-path" data-testid="diff-file-path">
          {file.path}
        </span>
        {file.link && <span className="jp-AgentsDiff-note"> (link)</span>}
      </div>
      {file.binary ? (
        <div className="jp-AgentsDiff-binary" data-testid="diff-binary">
          {`binary: ${size(file.size_before)} \u2192 ${size(file.size_after)}`}
        </div>
      ) : Array.isArray(file.cells) ? (
        <ul className="jp-AgentsDiff-cells" data-testid="diff-cells">
          {file.cells.map((cell, i) => (
            <CellView key={i} cell={cell} />
          ))}
        </ul>
      ) : typeof file.diff === 'string' && file.diff ? (
        <DiffText text={file.diff} />
      ) : (
        <div className="jp-AgentsDiff-note">no text changes</div>
      )}
      {file.truncated && (
        <div className="jp-AgentsDiff-note" data-testid="diff-truncated">
          (the diff was cut: too long)
        </div>
      )}
    </li>
  );
}

export interface DiffViewProps {
  checkpoints: CheckpointAPI;
  sessionId: string;
  turn: number;
  /** the session as the user knows it (its name), for messages */
  label?: string;
  confirm?: Confirm;
  /** a fork was made: its id (the list should show it) */
  onForked?: (sessionId: string) => void;
  /** the workspace changed (restore, rewind, undo) */
  onChanged?: () => void;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The view of one turn's changes, with its actions. */
export function DiffView(props: DiffViewProps): JSX.Element {
  const { checkpoints, sessionId, turn } = props;
  const confirm = props.confirm ?? confirmDialog;
  const [diff, setDiff] = useState<CheckpointDiff | null>(null);
  const [laterTurns, setLaterTurns] = useState<number[]>([]);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [working, setWorking] = useState(false);
  const [canUndo, setCanUndo] = useState(false);

  useEffect(() => {
    let live = true;
    checkpoints.diff(sessionId, turn).then(
      reply => live && setDiff(reply),
      err => live && setError(message(err))
    );
    checkpoints.list(sessionId).then(
      reply =>
        live &&
        setLaterTurns(reply.checkpoints.map(c => c.turn).filter(t => t > turn)),
      () => undefined
    );
    return () => {
      live = false;
    };
  }, [checkpoints, sessionId, turn]);

  const act = async (action: () => Promise<void>): Promise<void> => {
    setWorking(true);
    setError('');
    try {
      await action();
    } catch (err) {
      setError(message(err));
    } finally {
      setWorking(false);
    }
  };

  const paths = (diff?.files ?? []).map(f => f.path);

  const restore = (): Promise<void> =>
    act(async () => {
      const reply = await checkpoints.restore(sessionId, turn, paths);
      const n = reply.restored.length;
      setNote(
        `Restored ${n} ${n === 1 ? 'file' : 'files'} to before turn ${turn}.`
      );
      setCanUndo(true);
      props.onChanged?.();
    });

  const rewind = async (): Promise<void> => {
    const files = paths.length ? paths.join(', ') : 'no files';
    const turns = [turn, ...laterTurns];
    const ok = await confirm({
      title: `Rewind to before turn ${turn}?`,
      body:
        `The workspace goes back to how it was before turn ${turn}: ` +
        `the changes to ${files} are undone` +
        (laterTurns.length ? ', and those of the later turns.' : '.') +
        ` The agent forgets ${turns.length === 1 ? 'turn' : 'turns'} ` +
        `${turns.join(', ')}: the next message continues from before turn ${turn}.`,
      accept: 'Rewind',
      danger: true
    });
    if (!ok) {
      return;
    }
    await act(async () => {
      const reply = await checkpoints.rewind(sessionId, turn);
      const n = reply.restored.length;
      setNote(
        `Rewound to before turn ${turn} (${n} ${n === 1 ? 'file' : 'files'} restored).`
      );
      setCanUndo(true);
      props.onChanged?.();
    });
  };

  const undo = (): Promise<void> =>
    act(async () => {
      const reply = await checkpoints.undo(sessionId);
      const n = reply.restored.length;
      setNote(
        `Undid the ${reply.undid} (${n} ${n === 1 ? 'file' : 'files'} back).`
      );
      setCanUndo(false);
      props.onChanged?.();
    });

  const fork = (): Promise<void> =>
    act(async () => {
      const reply = await checkpoints.fork(sessionId, turn);
      setNote(`Forked from turn ${turn}: new session ${reply.session_id}.`);
      props.onForked?.(reply.session_id);
    });

  return (
    <div
      className="jp-AgentsDiff"
      data-testid="diff-view"
      data-turn={turn}
      data-session-id={sessionId}
    >
      <div className="jp-AgentsDiff-head">
        <span className="jp-AgentsDiff-title">
          {`Turn ${turn} of ${props.label ?? sessionId}`}
        </span>
        {diff && (
          <span className="jp-AgentsDiff-summary">
            {` \u00b7 ${diff.files.length} ${
              diff.files.length === 1 ? 'file' : 'files'
            } changed`}
          </span>
        )}
      </div>
      <div className="jp-AgentsPanel-buttons jp-AgentsDiff-actions">
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="diff-restore"
          disabled={working || !diff || paths.length === 0}
          title="Put these files back as they were before this turn"
          onClick={() => void restore()}
        >
          Restore these files
        </button>
        <button
          className="jp-mod-styled jp-mod-warn"
          data-testid="diff-rewind"
          disabled={working || !diff}
          title="Undo this turn and the later ones; the agent forgets them"
          onClick={() => void rewind()}
        >
          Rewind to before this turn
        </button>
        <button
          className="jp-mod-styled"
          data-testid="diff-fork"
          disabled={working}
          title="A new session from here (this session is left as it is)"
          onClick={() => void fork()}
        >
          Fork from here
        </button>
        {canUndo && (
          <button
            className="jp-mod-styled"
            data-testid="diff-undo"
            disabled={working}
            title="Undo the last restore or rewind"
            onClick={() => void undo()}
          >
            Undo
          </button>
        )}
      </div>
      {note && (
        <div className="jp-AgentsDiff-message" data-testid="diff-message">
          {note}
        </div>
      )}
      {error && (
        <div className="jp-AgentsPanel-error" data-testid="diff-error">
          {error}
        </div>
      )}
      {!diff && !error && (
        <div className="jp-AgentsPanel-empty" data-testid="diff-loading">
          Loading the changes…
        </div>
      )}
      {diff && (
        <ul className="jp-AgentsDiff-files">
          {diff.files.map(file => (
            <FileView key={file.path} file={file} />
          ))}
        </ul>
      )}
    </div>
  );
}

export interface DiffTabOptions {
  api: AgClusterAPI;
  sessionId: string;
  turn: number;
  label?: string;
  confirm?: Confirm;
  onForked?: (sessionId: string) => void;
  onChanged?: () => void;
}

/** A turn's diff view as a main-area tab. */
export class CheckpointDiffTab extends ReactWidget {
  constructor(options: DiffTabOptions) {
    super();
    this.addClass('jp-AgentsPanel');
    this.addClass('jp-AgentsDiffTab');
    this.id = diffTabId(options.sessionId, options.turn);
    this.sessionId = options.sessionId;
    this.turn = options.turn;
    this._options = options;
    this._checkpoints = new CheckpointAPI(options.api);
    this.title.icon = agentsIcon;
    this.title.closable = true;
    this.title.label = `Turn ${options.turn}: changes`;
    this.title.caption = `The files turn ${options.turn} of ${
      options.label ?? options.sessionId
    } changed`;
  }

  readonly sessionId: string;
  readonly turn: number;

  protected render(): JSX.Element {
    const o = this._options;
    return (
      <div className="jp-AgentsPanel-body jp-AgentsDiff-body">
        <DiffView
          checkpoints={this._checkpoints}
          sessionId={o.sessionId}
          turn={o.turn}
          label={o.label}
          confirm={o.confirm}
          onForked={o.onForked}
          onChanged={o.onChanged}
        />
      </div>
    );
  }

  private _options: DiffTabOptions;
  private _checkpoints: CheckpointAPI;
}
