import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  ReactWidget,
  caretDownIcon,
  caretLeftIcon,
  caretRightIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useState } from 'react';

import { ConfigSummary, SessionInfo } from './api';
import { age, seconds, tokens, usd } from './format';
import { Markdown } from './markdown';
import { AgentsModel } from './model';
import {
  ChatEntry,
  PendingPermission,
  ToolCallNode,
  callTree,
  durationSeconds,
  summarizeInput,
  tasksDone,
  totalTokens
} from './reducer';
import { PanelSettings } from './settings';

export interface AgentsPanelOptions {
  rendermime: IRenderMimeRegistry | null;
  settings: PanelSettings;
  model?: AgentsModel;
}

/** The Agents side panel: presets to launch, sessions, and the chat of one session. */
export class AgentsPanel extends ReactWidget {
  constructor(options: AgentsPanelOptions) {
    super();
    this.addClass('jp-AgentsPanel');
    this.model = options.model ?? new AgentsModel();
    this._rendermime = options.rendermime;
    this._settings = options.settings;
    this.model.changed.connect(() => this.update(), this);
  }

  readonly model: AgentsModel;

  updateSettings(settings: PanelSettings): void {
    const restart =
      settings.sessionsRefreshSeconds !== this._settings.sessionsRefreshSeconds;
    this._settings = settings;
    if (restart && this._timer !== null) {
      this._stopPolling();
      this._startPolling();
    }
    this.update();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopPolling();
    this.model.dispose();
    super.dispose();
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._activate();
    }
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._activate();
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopPolling();
  }

  protected render(): JSX.Element {
    return (
      <AgentsView
        model={this.model}
        rendermime={this._rendermime}
        settings={this._settings}
      />
    );
  }

  /** Shown: fresh data, then the sessions list polled while it stays visible. */
  private _activate(): void {
    if (this._timer === null) {
      void this.model.refresh();
      this._startPolling();
    }
  }

  private _startPolling(): void {
    if (this._timer === null) {
      const ms = Math.max(1, this._settings.sessionsRefreshSeconds) * 1000;
      this._timer = setInterval(() => void this.model.refreshSessions(), ms);
    }
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _rendermime: IRenderMimeRegistry | null;
  private _settings: PanelSettings;
  private _timer: ReturnType<typeof setInterval> | null = null;
}

interface ViewProps {
  model: AgentsModel;
  rendermime: IRenderMimeRegistry | null;
  settings: PanelSettings;
}

function AgentsView({ model, rendermime, settings }: ViewProps): JSX.Element {
  return (
    <div className="jp-AgentsPanel-body">
      <Header model={model} />
      {model.selected === null ? (
        <Home model={model} settings={settings} />
      ) : (
        <SessionPane model={model} rendermime={rendermime} />
      )}
    </div>
  );
}

function Header({ model }: { model: AgentsModel }): JSX.Element {
  const health = model.health;
  return (
    <div className="jp-AgentsPanel-header">
      <div className="jp-AgentsPanel-titleRow">
        <h2 className="jp-AgentsPanel-title">Agents</h2>
        <button
          className="jp-AgentsPanel-iconButton"
          title="Refresh"
          onClick={() => void model.refresh()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </div>
      {health?.demo_mode && (
        <div className="jp-AgentsPanel-demo" data-testid="demo-mode">
          Demo model: replies are scripted
        </div>
      )}
      {health && health.isolated === false && (
        <div
          className="jp-AgentsPanel-warning"
          title={health.provider_detail ?? ''}
        >
          No isolation: the {health.provider} provider runs agents on this
          machine
        </div>
      )}
      {health && !health.provider_ok && (
        <div className="jp-AgentsPanel-error">
          {health.provider_detail || 'provider unavailable'}
        </div>
      )}
      {model.errors.server && (
        <div className="jp-AgentsPanel-error">{model.errors.server}</div>
      )}
    </div>
  );
}

function Home({
  model,
  settings
}: {
  model: AgentsModel;
  settings: PanelSettings;
}): JSX.Element {
  const configs = [...model.configs].sort((a, b) =>
    a.id === settings.defaultPreset
      ? -1
      : b.id === settings.defaultPreset
        ? 1
        : 0
  );
  return (
    <div className="jp-AgentsPanel-home">
      <Section title="Launch">
        {model.errors.launch && (
          <div className="jp-AgentsPanel-error">{model.errors.launch}</div>
        )}
        {configs.length === 0 && model.loaded && (
          <div className="jp-AgentsPanel-empty">No presets</div>
        )}
        <div className="jp-AgentsPanel-cards">
          {configs.map(config => (
            <PresetCard key={config.id} config={config} model={model} />
          ))}
        </div>
      </Section>
      <Section title={`Sessions (${model.sessions.length})`}>
        {model.errors.sessions && (
          <div className="jp-AgentsPanel-error">{model.errors.sessions}</div>
        )}
        {model.sessions.length === 0 && model.loaded && (
          <div className="jp-AgentsPanel-empty">
            No sessions yet: launch a preset
          </div>
        )}
        <ul className="jp-AgentsPanel-sessions">
          {model.sessions.map(session => (
            <SessionRow
              key={session.session_id}
              session={session}
              model={model}
            />
          ))}
        </ul>
      </Section>
    </div>
  );
}

function Section(props: {
  title: string;
  children?: React.ReactNode;
}): JSX.Element {
  const [open, setOpen] = useState(true);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section className="jp-AgentsPanel-section">
      <button
        className="jp-AgentsPanel-sectionTitle"
        onClick={() => setOpen(!open)}
      >
        <Caret.react tag="span" />
        {props.title}
      </button>
      {open && (
        <div className="jp-AgentsPanel-sectionBody">{props.children}</div>
      )}
    </section>
  );
}

function PresetCard({
  config,
  model
}: {
  config: ConfigSummary;
  model: AgentsModel;
}): JSX.Element {
  const limits = config.resource_limits ?? {};
  const resources = [
    limits.cpu !== undefined ? `${limits.cpu} CPU` : '',
    limits.memory ? `${limits.memory} memory` : '',
    limits.storage ? `${limits.storage} disk` : ''
  ].filter(Boolean);
  const launching = model.launching === config.id;
  return (
    <div className="jp-AgentsPanel-card" data-config-id={config.id}>
      <div className="jp-AgentsPanel-cardTitle">{config.name || config.id}</div>
      {config.description && (
        <div className="jp-AgentsPanel-cardText">{config.description}</div>
      )}
      <div className="jp-AgentsPanel-chips">
        {config.allowed_tools.map(tool => (
          <span key={tool} className="jp-AgentsPanel-chip">
            {tool}
          </span>
        ))}
      </div>
      <div className="jp-AgentsPanel-cardMeta">
        {[...resources, `permissions: ${config.permission_mode}`].join(' · ')}
        {config.has_sub_agents ? ' · sub-agents' : ''}
        {config.has_mcp_servers ? ' · MCP' : ''}
      </div>
      <button
        className="jp-mod-styled jp-mod-accept jp-AgentsPanel-launch"
        disabled={model.launching !== null}
        onClick={() => void model.launch(config.id)}
      >
        {launching ? 'Launching…' : 'Launch'}
      </button>
    </div>
  );
}

const LIVE_STATES = new Set(['starting', 'ready', 'busy', 'idle']);

function StateBadge({ state }: { state: string }): JSX.Element {
  return (
    <span className={`jp-AgentsPanel-state jp-AgentsPanel-state-${state}`}>
      {state}
    </span>
  );
}

function SessionRow({
  session,
  model
}: {
  session: SessionInfo;
  model: AgentsModel;
}): JSX.Element {
  const used = session.usage?.total_tokens ?? 0;
  const stopping = model.stopping.has(session.session_id);
  return (
    <li
      className="jp-AgentsPanel-session"
      data-session-id={session.session_id}
      onClick={() => model.select(session.session_id)}
      title="Open the chat of this session"
    >
      <div className="jp-AgentsPanel-sessionMain">
        <StateBadge state={session.state} />
        <span className="jp-AgentsPanel-sessionName">
          {session.name || session.config_id}
        </span>
      </div>
      <div className="jp-AgentsPanel-sessionMeta">
        {[
          session.name ? session.config_id : '',
          age(session.created_at),
          `${tokens(used)} tokens`
        ]
          .filter(Boolean)
          .join(' · ')}
      </div>
      {LIVE_STATES.has(session.state) && (
        <button
          className="jp-AgentsPanel-iconButton jp-AgentsPanel-stop"
          title="Stop the session (its workspace is kept)"
          disabled={stopping}
          onClick={event => {
            event.stopPropagation();
            void model.stop(session.session_id);
          }}
        >
          <stopIcon.react tag="span" />
        </button>
      )}
    </li>
  );
}

function SessionPane({
  model,
  rendermime
}: {
  model: AgentsModel;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const view = model.view;
  const info = model.selectedInfo;
  const tree = callTree(view);
  const cost = usd(view.costUsd);
  return (
    <div className="jp-AgentsPanel-sessionPane">
      <div className="jp-AgentsPanel-sessionHeader">
        <button
          className="jp-AgentsPanel-iconButton"
          title="Back to the sessions"
          onClick={() => model.select(null)}
        >
          <caretLeftIcon.react tag="span" />
        </button>
        <StateBadge state={view.state} />
        <span className="jp-AgentsPanel-sessionName">
          {info?.name || info?.config_id || model.selected}
        </span>
        <span className="jp-AgentsPanel-usage">
          {tokens(totalTokens(view))} tokens{cost ? ` · ${cost}` : ''}
        </span>
      </div>
      {(model.connection === 'reconnecting' ||
        model.connection === 'failed') && (
        <div
          className={
            model.connection === 'failed'
              ? 'jp-AgentsPanel-error'
              : 'jp-AgentsPanel-warning'
          }
        >
          {model.connection === 'failed' ? 'Event stream lost' : 'Reconnecting'}
          {model.connectionDetail ? `: ${model.connectionDetail}` : '…'}
        </div>
      )}
      <div className="jp-AgentsPanel-scroll">
        <div className="jp-AgentsPanel-chat" data-testid="chat">
          {view.entries.length === 0 && (
            <div className="jp-AgentsPanel-empty">Send a message to start.</div>
          )}
          {view.entries.map((entry, i) => (
            <Entry key={i} entry={entry} rendermime={rendermime} />
          ))}
        </div>
        {view.permissions.map(p => (
          <Permission key={p.request_id} request={p} model={model} />
        ))}
        {tree.length > 0 && (
          <Section title={`Tools (${Object.keys(view.calls).length})`}>
            <ul className="jp-AgentsPanel-timeline">
              {tree.map(call => (
                <Call key={call.tool_use_id} call={call} />
              ))}
            </ul>
          </Section>
        )}
        {view.todos.length > 0 && (
          <Section title={`Tasks (${tasksDone(view)}/${view.todos.length})`}>
            <ul className="jp-AgentsPanel-todos">
              {view.todos.map((todo, i) => (
                <li
                  key={i}
                  className={`jp-AgentsPanel-todo jp-AgentsPanel-todo-${todo.status}`}
                >
                  {todo.status === 'in_progress' && todo.activeForm
                    ? todo.activeForm
                    : todo.content}
                </li>
              ))}
            </ul>
          </Section>
        )}
      </div>
      {model.errors.chat && (
        <div className="jp-AgentsPanel-error">{model.errors.chat}</div>
      )}
      <Composer model={model} />
    </div>
  );
}

function Entry({
  entry,
  rendermime
}: {
  entry: ChatEntry;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const className = `jp-AgentsPanel-entry jp-AgentsPanel-entry-${entry.role}${
    entry.streaming ? ' jp-mod-streaming' : ''
  }`;
  if (entry.role === 'assistant') {
    return (
      <div className={className}>
        <Markdown text={entry.text} rendermime={rendermime} />
      </div>
    );
  }
  return <div className={className}>{entry.text}</div>;
}

function Permission({
  request,
  model
}: {
  request: PendingPermission;
  model: AgentsModel;
}): JSX.Element {
  return (
    <div
      className="jp-AgentsPanel-permission"
      data-request-id={request.request_id}
    >
      <div>
        Allow <b>{request.tool_name}</b>?
      </div>
      <code className="jp-AgentsPanel-permissionInput">
        {summarizeInput(request.input, 200)}
      </code>
      <div className="jp-AgentsPanel-buttons">
        <button
          className="jp-mod-styled jp-mod-accept"
          onClick={() => void model.answer(request.request_id, 'allow')}
        >
          Approve
        </button>
        <button
          className="jp-mod-styled jp-mod-reject"
          onClick={() => void model.answer(request.request_id, 'deny')}
        >
          Deny
        </button>
      </div>
    </div>
  );
}

function Call({ call }: { call: ToolCallNode }): JSX.Element {
  const [open, setOpen] = useState(false);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <li className={`jp-AgentsPanel-call jp-AgentsPanel-call-${call.status}`}>
      <div className="jp-AgentsPanel-callRow" onClick={() => setOpen(!open)}>
        <Caret.react tag="span" />
        <span className="jp-AgentsPanel-callStatus" title={call.status} />
        <span className="jp-AgentsPanel-callName">{call.name}</span>
        <span className="jp-AgentsPanel-callSummary">
          {summarizeInput(call.input)}
        </span>
        <span className="jp-AgentsPanel-callTime">
          {seconds(durationSeconds(call))}
        </span>
      </div>
      {open && (
        <div className="jp-AgentsPanel-callDetail">
          <pre>{JSON.stringify(call.input, null, 2)}</pre>
          {call.notes.map((note, i) => (
            <div key={i} className="jp-AgentsPanel-callNote">
              {note}
            </div>
          ))}
          {call.output && (
            <pre className="jp-AgentsPanel-callOutput">{call.output}</pre>
          )}
        </div>
      )}
      {call.childNodes.length > 0 && (
        <ul className="jp-AgentsPanel-timeline jp-AgentsPanel-children">
          {call.childNodes.map(child => (
            <Call key={child.tool_use_id} call={child} />
          ))}
        </ul>
      )}
    </li>
  );
}

function Composer({ model }: { model: AgentsModel }): JSX.Element {
  const [draft, setDraft] = useState('');
  const busy = model.sending || model.view.busy;
  const send = (): void => {
    const text = draft.trim();
    if (!text || model.sending) {
      return;
    }
    setDraft('');
    void model.send(text);
  };
  return (
    <div className="jp-AgentsPanel-composer">
      <textarea
        className="jp-AgentsPanel-input"
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
            onClick={() => void model.interrupt()}
          >
            Interrupt
          </button>
        )}
        <button
          className="jp-mod-styled jp-mod-accept"
          disabled={!draft.trim() || model.sending}
          onClick={send}
        >
          Send
        </button>
      </div>
    </div>
  );
}
