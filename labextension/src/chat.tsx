/**
 * A session's Chat tab: the transcript (the agent's replies as Markdown), the permission
 * requests, tool calls and tasks (tools.tsx) under it, and the composer.
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   chat                   the conversation
 *   message-user, message-assistant (data-streaming="true" while streamed), message-error
 *   chat-input, chat-send, chat-interrupt, chat-error
 *   message-note           a note in the transcript (a rewind)
 *   checkpoint-button      a finished turn's "N files changed (+a −r lines)" (data-turn):
 *                          opens its diff view (diffview.tsx)
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React, { useState } from 'react';

import { PanelActions } from './actions';
import { Markdown } from './markdown';
import { ChatEntry } from './reducer';
import { SessionModel } from './session';
import { Permission, TaskList, ToolTimeline } from './tools';

export function ChatTab({
  session,
  rendermime,
  actions = {}
}: {
  session: SessionModel;
  rendermime: IRenderMimeRegistry | null;
  actions?: PanelActions;
}): JSX.Element {
  const view = session.view;
  return (
    <>
      <div className="jp-AgentsPanel-scroll">
        <div className="jp-AgentsPanel-chat" data-testid="chat">
          {view.entries.length === 0 && (
            <div className="jp-AgentsPanel-empty">Send a message to start.</div>
          )}
          {view.entries.map((entry, i) => (
            <Entry
              key={i}
              entry={entry}
              rendermime={rendermime}
              openDiff={
                actions.openDiff
                  ? turn => actions.openDiff?.(session.sessionId, turn)
                  : undefined
              }
              insertCode={actions.insertCode}
            />
          ))}
        </div>
        {view.permissions.map(p => (
          <Permission
            key={p.request_id}
            request={p}
            session={session}
            rendermime={rendermime}
          />
        ))}
        <ToolTimeline
          view={view}
          onGrantKernel={notebook => session.grantKernel(notebook)}
        />
        <TaskList view={view} />
      </div>
      {session.errors.chat && (
        <div className="jp-AgentsPanel-error" data-testid="chat-error">
          {session.errors.chat}
        </div>
      )}
      <Composer session={session} />
    </>
  );
}

function Entry({
  entry,
  rendermime,
  openDiff,
  insertCode
}: {
  entry: ChatEntry;
  rendermime: IRenderMimeRegistry | null;
  openDiff?: (turn: number) => void;
  insertCode?: (code: string) => number;
}): JSX.Element {
  if (entry.role === 'checkpoint' && entry.checkpoint) {
    const turn = entry.checkpoint.turn;
    return (
      <div className="jp-AgentsPanel-entry jp-AgentsPanel-entry-checkpoint">
        <button
          className="jp-AgentsPanel-checkpoint"
          data-testid="checkpoint-button"
          data-turn={turn}
          disabled={!openDiff}
          title={
            openDiff
              ? `See what turn ${turn} changed (restore, rewind, fork)`
              : 'Diffs open in a main-area tab: not available here'
          }
          onClick={() => openDiff?.(turn)}
        >
          {entry.text}
        </button>
      </div>
    );
  }
  const className = `jp-AgentsPanel-entry jp-AgentsPanel-entry-${entry.role}${
    entry.streaming ? ' jp-mod-streaming' : ''
  }`;
  const testid = `message-${entry.role}`;
  if (entry.role === 'assistant') {
    return (
      <div
        className={className}
        data-testid={testid}
        data-streaming={entry.streaming ? 'true' : 'false'}
      >
        <Markdown
          text={entry.text}
          rendermime={rendermime}
          onInsertCode={insertCode ? code => void insertCode(code) : undefined}
        />
      </div>
    );
  }
  return (
    <div className={className} data-testid={testid}>
      {entry.text}
    </div>
  );
}

function Composer({ session }: { session: SessionModel }): JSX.Element {
  const [draft, setDraft] = useState('');
  const busy = session.busy;
  const send = (): void => {
    const text = draft.trim();
    if (!text || session.sending) {
      return;
    }
    setDraft('');
    void session.send(text);
  };
  return (
    <div className="jp-AgentsPanel-composer">
      <textarea
        className="jp-AgentsPanel-input"
        data-testid="chat-input"
        placeholder="Message the agent (Enter sends, Shift+Enter: new line)"
        rows={3}
        value={draft}
        onChange={event => setDraft(event.target.value)}
        onKeyDown={event => {
          if (
            event.key === 'Enter' &&
            !event.shiftKey &&
            !event.nativeEvent.isComposing
          ) {
            event.preventDefault();
            event.stopPropagation();
            send();
          }
        }}
      />
      <div className="jp-AgentsPanel-buttons">
        {busy && (
          <button
            className="jp-mod-styled jp-mod-warn"
            data-testid="chat-interrupt"
            onClick={() => void session.interrupt()}
          >
            Interrupt
          </button>
        )}
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="chat-send"
          disabled={!draft.trim() || session.sending}
          onClick={send}
        >
          Send
        </button>
      </div>
    </div>
  );
}
