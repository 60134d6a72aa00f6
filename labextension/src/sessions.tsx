/**
 * One row of the sessions list: what the session is, where it came from, what it costs,
 * and its actions (open in a tab, stop, purge).
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   session-row            one session (data-session-id, data-state); click opens it
 *   session-name           its name, else its preset's name
 *   session-short-id       the start of its id (the whole id in its tooltip), before
 *                          session-cost on the same line
 *   session-first-prompt   the first message sent to it (none before one)
 *   session-notebook       the notebook whose %%agent cell launched it (a path of the
 *                          Jupyter tree; click opens it); none when not from a notebook
 *   session-cost           its preset (when named), age, tokens and cost
 *   session-resources      its CPU and memory
 *   session-open-tab       Open in a tab (on each row, and in the side panel's open
 *                          session; only where the shell has a main dock area: not in
 *                          Notebook 7)
 *   session-stop           Stop (live sessions)
 *   session-purge          Purge (asks first, in a JupyterLab dialog)
 *   session-fork-of        a fork's "fork of <name>" (data-parent-id); the fork's row
 *                          sits under its parent's, indented (data-depth)
 */

import {
  deleteIcon,
  launchIcon,
  notebookIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React from 'react';

import { PanelActions } from './actions';
import { SessionInfo } from './api';
import { age, cost, resourceParts, shortId, tokens } from './format';
import { AgentsModel } from './model';

/** The states in which a session can be stopped. */
export const LIVE_STATES = new Set(['starting', 'ready', 'busy', 'idle']);

export function StateBadge({ state }: { state: string }): JSX.Element {
  return (
    <span
      className={`jp-AgentsPanel-state jp-AgentsPanel-state-${state}`}
      data-testid="session-state"
    >
      {state}
    </span>
  );
}

/**
 * The sessions in list order with each fork right under its parent (depth: how deep a
 * fork it is); a fork whose parent is not in the list stays where it is, at depth 0.
 */
export function forkOrder(
  sessions: readonly SessionInfo[]
): { session: SessionInfo; depth: number }[] {
  const ids = new Set(sessions.map(s => s.session_id));
  const children = new Map<string, SessionInfo[]>();
  const roots: SessionInfo[] = [];
  for (const s of sessions) {
    const parent = s.forked_from?.session_id;
    if (parent && parent !== s.session_id && ids.has(parent)) {
      children.set(parent, [...(children.get(parent) ?? []), s]);
    } else {
      roots.push(s);
    }
  }
  const out: { session: SessionInfo; depth: number }[] = [];
  const seen = new Set<string>();
  const visit = (s: SessionInfo, depth: number): void => {
    if (seen.has(s.session_id)) {
      return;
    }
    seen.add(s.session_id);
    out.push({ session: s, depth });
    for (const child of children.get(s.session_id) ?? []) {
      visit(child, depth + 1);
    }
  };
  roots.forEach(s => visit(s, 0));
  // a cycle of forks (never from the server): still listed
  sessions.forEach(s => visit(s, 0));
  return out;
}

/** One session of the list: click opens it in the side panel. */
export function SessionRow({
  session,
  model,
  actions,
  depth = 0
}: {
  session: SessionInfo;
  model: AgentsModel;
  actions: PanelActions;
  depth?: number;
}): JSX.Element {
  const parent = session.forked_from?.session_id ?? '';
  const parentTurn = session.forked_from?.turn;
  const id = session.session_id;
  const used = session.usage?.total_tokens ?? 0;
  const busy = model.stopping.has(id);
  const { cpu, memory } = resourceParts(session.resources ?? {});
  const prompt = session.first_prompt ?? '';
  const notebook = session.notebook ?? '';
  const openInLab = model.hooks.openInLab;
  return (
    <li
      className="jp-AgentsPanel-session"
      data-testid="session-row"
      data-session-id={id}
      data-state={session.state}
      data-depth={depth}
      style={depth ? { marginLeft: `${Math.min(depth, 4) * 16}px` } : undefined}
      onClick={() => model.select(id)}
      title="Open the chat of this session"
    >
      <div className="jp-AgentsPanel-sessionBody">
        <div className="jp-AgentsPanel-sessionMain">
          <StateBadge state={session.state} />
          <span
            className="jp-AgentsPanel-sessionName"
            data-testid="session-name"
          >
            {model.label(id)}
          </span>
        </div>
        {parent && (
          <div
            className="jp-AgentsPanel-sessionForkOf"
            data-testid="session-fork-of"
            data-parent-id={parent}
            title={`Forked from ${parent}${
              parentTurn ? ` before turn ${parentTurn}` : ''
            }`}
          >
            {`fork of ${model.label(parent)}${
              parentTurn ? ` (turn ${parentTurn})` : ''
            }`}
          </div>
        )}
        {prompt && (
          <div
            className="jp-AgentsPanel-sessionPrompt"
            data-testid="session-first-prompt"
            title={prompt}
          >
            {prompt}
          </div>
        )}
        {notebook && (
          <button
            className="jp-AgentsPanel-sessionNotebook"
            data-testid="session-notebook"
            title={
              openInLab
                ? `Launched from ${notebook}: open it`
                : `Launched from ${notebook}`
            }
            disabled={!openInLab}
            onClick={event => {
              event.stopPropagation();
              void openInLab?.(notebook);
            }}
          >
            <notebookIcon.react
              tag="span"
              className="jp-AgentsPanel-inlineIcon"
            />
            <span className="jp-AgentsPanel-sessionNotebookPath">
              {notebook}
            </span>
          </button>
        )}
        <div className="jp-AgentsPanel-sessionMeta">
          <span
            className="jp-AgentsPanel-sessionId"
            data-testid="session-short-id"
            title={id}
          >
            {shortId(id)}
          </span>
          {' · '}
          <span
            data-testid="session-cost"
            title={`started ${new Date(session.created_at).toLocaleString()}`}
          >
            {[
              session.name ? model.presetName(session.config_id) : '',
              age(session.created_at),
              `${tokens(used)} tokens`,
              cost(session.cost_usd)
            ]
              .filter(Boolean)
              .join(' · ')}
          </span>
        </div>
        {(cpu || memory) && (
          <div
            className="jp-AgentsPanel-sessionMeta"
            data-testid="session-resources"
            title={
              session.resources?.pids !== undefined
                ? `${session.resources.pids} processes`
                : ''
            }
          >
            {[cpu, memory].filter(Boolean).join(' · ')}
          </div>
        )}
      </div>
      <div className="jp-AgentsPanel-rowActions">
        {actions.openTab && (
          <button
            className="jp-AgentsPanel-iconButton"
            data-testid="session-open-tab"
            title="Open in a tab (the main area, next to your notebooks)"
            onClick={event => {
              event.stopPropagation();
              actions.openTab?.(id);
            }}
          >
            <launchIcon.react tag="span" height="16px" width="16px" />
          </button>
        )}
        {LIVE_STATES.has(session.state) && (
          <button
            className="jp-AgentsPanel-iconButton"
            data-testid="session-stop"
            title="Stop the session (its workspace is kept)"
            disabled={busy}
            onClick={event => {
              event.stopPropagation();
              void model.stop(id);
            }}
          >
            <stopIcon.react tag="span" />
          </button>
        )}
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="session-purge"
          title="Purge: stop the session and delete its workspace"
          disabled={busy}
          onClick={event => {
            event.stopPropagation();
            void model.purge(id);
          }}
        >
          <deleteIcon.react tag="span" />
        </button>
      </div>
    </li>
  );
}
