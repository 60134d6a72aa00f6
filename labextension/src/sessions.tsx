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

/** One session of the list: click opens it in the side panel. */
export function SessionRow({
  session,
  model,
  actions
}: {
  session: SessionInfo;
  model: AgentsModel;
  actions: PanelActions;
}): JSX.Element {
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
