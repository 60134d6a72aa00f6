/**
 * The session pane: one session's header (name, usage, its buttons), the state of its
 * event stream, and its Chat and Files tabs.  The side panel shows the session open in
 * it; a main-area tab (sessiontab.tsx) shows its own.
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   session-pane           the open session (data-session-id, data-state, data-busy:
 *                          "true" while a turn runs, else "false"; data-placement:
 *                          side, or tab in a main-area tab, whose widget has the DOM id
 *                          agcluster-session-<session id>); in a tab, everything below
 *                          is inside that widget
 *   session-title          its name, else its preset's name (name and id in its tooltip)
 *   session-usage          the start of its id (in a tab, its notebook too; its folder
 *                          workspace, "in <folder>"), tokens and
 *                          cost: a line of its own under the title, the buttons below
 *                          (open-tab, export, stop-current) at its end
 *   session-back           back to the sessions (side panel only)
 *   session-export         export the conversation as a notebook
 *   session-stop-current   stop the open session
 *   tab-chat, tab-files    the open session's tabs (aria-selected)
 *   session-open-tab       Open in a tab (side panel only; see sessions.tsx)
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  caretLeftIcon,
  launchIcon,
  notebookIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React from 'react';

import { PanelActions } from './actions';
import { ChatTab } from './chat';
import { FilesTab } from './filestab';
import { shortId, tokens, usd } from './format';
import { totalTokens } from './reducer';
import { SessionModel } from './session';
import { LIVE_STATES, StateBadge } from './sessions';

/** Where a session pane is shown: the side panel (with Back) or a main-area tab. */
export type PanePlacement = 'side' | 'tab';

/**
 * One session: its header, chat (with tools, tasks and permission requests) and files.
 * The side panel shows the session open in it; a main-area tab shows its own.
 */
export function SessionPane({
  session,
  rendermime,
  actions,
  placement
}: {
  session: SessionModel;
  rendermime: IRenderMimeRegistry | null;
  actions: PanelActions;
  placement: PanePlacement;
}): JSX.Element {
  const view = session.view;
  const info = session.info;
  const id = session.sessionId;
  const label = session.agents.label(id);
  const spent = usd(Math.max(view.costUsd, info?.cost_usd ?? 0));
  const waiting = view.permissions.length;
  const tab = session.tab;
  return (
    <div
      className="jp-AgentsPanel-sessionPane"
      data-testid="session-pane"
      data-session-id={id}
      data-state={view.state}
      data-placement={placement}
      data-busy={session.busy ? 'true' : 'false'}
    >
      <div className="jp-AgentsPanel-sessionHeader">
        <div className="jp-AgentsPanel-sessionTitleRow">
          {placement === 'side' && (
            <button
              className="jp-AgentsPanel-iconButton"
              data-testid="session-back"
              title="Back to the sessions"
              onClick={() => session.agents.select(null)}
            >
              <caretLeftIcon.react tag="span" />
            </button>
          )}
          <StateBadge state={view.state} />
          <span
            className="jp-AgentsPanel-sessionName"
            data-testid="session-title"
            title={`${label} (${id})`}
          >
            {label}
          </span>
        </div>
        <div className="jp-AgentsPanel-sessionStatsRow">
          <div
            className="jp-AgentsPanel-usage jp-AgentsPanel-sessionStats"
            data-testid="session-usage"
          >
            {[
              shortId(id),
              placement === 'tab' && info?.notebook ? info.notebook : '',
              // a folder workspace: the user's own folder, as the file browser shows it
              typeof info?.folder === 'string'
                ? `in ${info.folder || '/'}${info.workspace_readonly ? ' (read-only)' : ''}`
                : '',
              `${tokens(totalTokens(view))} tokens`,
              spent
            ]
              .filter(Boolean)
              .join(' · ')}
          </div>
          {placement === 'side' && actions.openTab && (
            <button
              className="jp-AgentsPanel-iconButton"
              data-testid="session-open-tab"
              title="Open in a tab (the main area, next to your notebooks)"
              onClick={() => actions.openTab?.(id)}
            >
              <launchIcon.react tag="span" height="16px" width="16px" />
            </button>
          )}
          {actions.exportConversation && (
            <button
              className="jp-AgentsPanel-iconButton"
              data-testid="session-export"
              title="Export the conversation as a notebook"
              onClick={() => actions.exportConversation?.(id)}
            >
              <notebookIcon.react tag="span" />
            </button>
          )}
          {LIVE_STATES.has(view.state) && (
            <button
              className="jp-AgentsPanel-iconButton"
              data-testid="session-stop-current"
              title="Stop the session (its workspace is kept)"
              disabled={session.stopping}
              onClick={() => void session.stop()}
            >
              <stopIcon.react tag="span" />
            </button>
          )}
        </div>
      </div>
      {(session.connection === 'reconnecting' ||
        session.connection === 'failed') && (
        <div
          className={
            session.connection === 'failed'
              ? 'jp-AgentsPanel-error'
              : 'jp-AgentsPanel-warning'
          }
        >
          {session.connection === 'failed'
            ? 'Event stream lost'
            : 'Reconnecting'}
          {session.connectionDetail ? `: ${session.connectionDetail}` : '…'}
        </div>
      )}
      <div className="jp-AgentsPanel-tabs" role="tablist">
        <button
          role="tab"
          className="jp-AgentsPanel-tab"
          data-testid="tab-chat"
          aria-selected={tab === 'chat'}
          onClick={() => session.setTab('chat')}
        >
          Chat
          {waiting > 0 && (
            <span className="jp-AgentsPanel-badge" title="waiting for you">
              {waiting}
            </span>
          )}
        </button>
        <button
          role="tab"
          className="jp-AgentsPanel-tab"
          data-testid="tab-files"
          aria-selected={tab === 'files'}
          onClick={() => session.setTab('files')}
        >
          Files
          {session.files.tree ? ` (${session.files.tree.total_files})` : ''}
        </button>
      </div>
      {tab === 'chat' ? (
        <ChatTab session={session} rendermime={rendermime} actions={actions} />
      ) : (
        <FilesTab files={session.files} />
      )}
    </div>
  );
}
