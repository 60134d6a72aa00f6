/**
 * The Agents side panel, and the session pane it shares with a session's main-area tab
 * (sessiontab.tsx).
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   demo-mode              "Demo model: replies are scripted"
 *   panel-error            the server or its provider is not usable
 *   section-<name>         a collapsible section's title button: launch, custom-config,
 *                          sessions, tools, tasks (click to open/close; data-open)
 *   launch-name            session name of the next launch
 *   launch-use-server-key  checkbox "Use the server's key" (checked: no api_key sent)
 *   launch-api-key         the user's API key (shown when unchecked; memory only)
 *   launch-error           a failed launch
 *   preset-card            one preset (data-config-id)
 *   preset-prompt          its system prompt (a <details>, closed)
 *   preset-launch          its Launch button
 *   config-template        select: fill the editor from a preset
 *   config-editor          the custom config (JSON textarea)
 *   config-launch          launch the custom config
 *   config-error           why it was refused (data-field: the field at fault); its text
 *                          names the field once
 *   config-error-field     that field's name (the message's own mention of it, else
 *                          before the message)
 *   sessions-list          the sessions (ul)
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
 *   sessions-error         a failed list/stop/purge
 *   session-pane           the open session (data-session-id, data-state, data-busy:
 *                          "true" while a turn runs, else "false"; data-placement:
 *                          side, or tab in a main-area tab, whose widget has the DOM id
 *                          agcluster-session-<session id>); in a tab, everything below
 *                          is inside that widget
 *   session-title          its name, else its preset's name (name and id in its tooltip)
 *   session-usage          the start of its id (in a tab, its notebook too), tokens and
 *                          cost: a line of its own under the title, the buttons below
 *                          (open-tab, export, stop-current) at its end
 *   session-back           back to the sessions (side panel only)
 *   session-export         export the conversation as a notebook
 *   session-stop-current   stop the open session
 *   tab-chat, tab-files    the open session's tabs (aria-selected)
 *   chat                   the conversation
 *   message-user, message-assistant (data-streaming="true" while streamed), message-error
 *   permission-request     (data-request-id, data-tool-name)
 *   permission-approve, permission-deny
 *   tool-timeline          the tool calls (ul)
 *   tool-call              one call (data-tool-name, data-status: running|ok|error|
 *                          waiting|interrupted, data-tool-use-id); nested under its Task
 *   tool-call-row          its title row (click: input and output)
 *   tool-call-detail       its input and output
 *   task-list, task-item   tasks (data-status: pending|in_progress|completed)
 *   chat-input, chat-send, chat-interrupt, chat-error
 *   files-dropzone         the Files tab: drop files anywhere on it to upload them
 *   files-tree             the workspace tree (ul)
 *   file-entry             one node (data-path, data-type: file|directory); a file opens
 *                          in JupyterLab (or the preview), a directory folds; drop
 *                          files on a directory to upload into it
 *   file-download          download that file
 *   files-total            "N files"
 *   files-refresh, files-download-zip, files-error
 *   upload-button          opens the file picker; upload-input is the <input type=file>
 *   upload-progress        one upload (data-state: uploading|done|error|cancelled;
 *                          role=progressbar inside with aria-valuenow 0..100)
 *   upload-cancel          cancel it, or dismiss it when finished
 *   file-preview           a file shown in the panel (data-path)
 *   file-preview-close
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  ReactWidget,
  caretDownIcon,
  caretLeftIcon,
  caretRightIcon,
  closeIcon,
  deleteIcon,
  downloadIcon,
  fileIcon,
  fileUploadIcon,
  folderIcon,
  launchIcon,
  notebookIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useRef, useState } from 'react';

import { ConfigSummary, FilePreview, SessionInfo } from './api';
import { treeRows } from './files';
import {
  age,
  bytes,
  cost,
  resourceParts,
  seconds,
  shortId,
  tokens,
  usd
} from './format';
import { Markdown } from './markdown';
import { AgentsModel, CUSTOM_LAUNCH, FieldError } from './model';
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
import { SessionModel, UploadState } from './session';
import { PanelSettings } from './settings';

/** What the panel can do beyond the model (commands of the app). */
export interface PanelActions {
  /** export a session's conversation as a notebook */
  exportConversation?: (sessionId: string) => void;
  /** open a session in a main-area tab (none: the shell has no such tabs) */
  openTab?: (sessionId: string) => void;
}

export interface AgentsPanelOptions {
  rendermime: IRenderMimeRegistry | null;
  settings: PanelSettings;
  model?: AgentsModel;
  actions?: PanelActions;
}

/** The Agents side panel: presets to launch, sessions, and the chat of one session. */
export class AgentsPanel extends ReactWidget {
  constructor(options: AgentsPanelOptions) {
    super();
    this.addClass('jp-AgentsPanel');
    this.model = options.model ?? new AgentsModel();
    this._rendermime = options.rendermime;
    this._settings = options.settings;
    this._actions = options.actions ?? {};
    this.model.changed.connect(() => this.update(), this);
  }

  readonly model: AgentsModel;

  get settings(): PanelSettings {
    return this._settings;
  }

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
        actions={this._actions}
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
  private _actions: PanelActions;
  private _timer: ReturnType<typeof setInterval> | null = null;
}

interface ViewProps {
  model: AgentsModel;
  rendermime: IRenderMimeRegistry | null;
  settings: PanelSettings;
  actions: PanelActions;
}

function AgentsView({
  model,
  rendermime,
  settings,
  actions
}: ViewProps): JSX.Element {
  return (
    <div className="jp-AgentsPanel-body">
      <Header model={model} />
      {model.current === null ? (
        <Home model={model} settings={settings} actions={actions} />
      ) : (
        <SessionPane
          session={model.current}
          rendermime={rendermime}
          actions={actions}
          placement="side"
        />
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
          data-testid="refresh"
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
        <div className="jp-AgentsPanel-error" data-testid="panel-error">
          {health.provider_detail || 'provider unavailable'}
        </div>
      )}
      {model.errors.server && (
        <div className="jp-AgentsPanel-error" data-testid="panel-error">
          {model.errors.server}
        </div>
      )}
    </div>
  );
}

function Home({
  model,
  settings,
  actions
}: {
  model: AgentsModel;
  settings: PanelSettings;
  actions: PanelActions;
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
      <Section title="Launch" name="launch">
        <LaunchOptionsForm model={model} />
        {model.errors.launch && (
          <div className="jp-AgentsPanel-error" data-testid="launch-error">
            {model.errors.launch}
          </div>
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
      <Section title="Custom config" name="custom-config" initiallyOpen={false}>
        <ConfigEditor model={model} configs={configs} />
      </Section>
      <Section title={`Sessions (${model.sessions.length})`} name="sessions">
        {model.errors.sessions && (
          <div className="jp-AgentsPanel-error" data-testid="sessions-error">
            {model.errors.sessions}
          </div>
        )}
        {model.sessions.length === 0 && model.loaded && (
          <div className="jp-AgentsPanel-empty">
            No sessions yet: launch a preset
          </div>
        )}
        <ul className="jp-AgentsPanel-sessions" data-testid="sessions-list">
          {model.sessions.map(session => (
            <SessionRow
              key={session.session_id}
              session={session}
              model={model}
              actions={actions}
            />
          ))}
        </ul>
      </Section>
    </div>
  );
}

function Section(props: {
  title: string;
  name: string;
  initiallyOpen?: boolean;
  children?: React.ReactNode;
}): JSX.Element {
  const [open, setOpen] = useState(props.initiallyOpen ?? true);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section className="jp-AgentsPanel-section">
      <button
        className="jp-AgentsPanel-sectionTitle"
        data-testid={`section-${props.name}`}
        data-open={open ? 'true' : 'false'}
        aria-expanded={open}
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

/** Name and key of the next launch; the key stays in this page's memory only. */
function LaunchOptionsForm({ model }: { model: AgentsModel }): JSX.Element {
  const options = model.launchOptions;
  const noServerKey =
    model.health?.server_key === false && !model.health?.demo_mode;
  return (
    <div className="jp-AgentsPanel-launchOptions">
      <label className="jp-AgentsPanel-field">
        <span>Session name</span>
        <input
          className="jp-AgentsPanel-textInput"
          data-testid="launch-name"
          type="text"
          placeholder="optional"
          value={options.name}
          onChange={event =>
            model.setLaunchOptions({ name: event.target.value })
          }
        />
      </label>
      <label className="jp-AgentsPanel-check">
        <input
          type="checkbox"
          data-testid="launch-use-server-key"
          checked={options.useServerKey}
          onChange={event =>
            model.setLaunchOptions({ useServerKey: event.target.checked })
          }
        />
        <span>Use the server's key</span>
      </label>
      {noServerKey && options.useServerKey && (
        <div className="jp-AgentsPanel-hint">
          The server has no API key of its own: enter yours.
        </div>
      )}
      {!options.useServerKey && (
        <label className="jp-AgentsPanel-field">
          <span>API key</span>
          <input
            className="jp-AgentsPanel-textInput"
            data-testid="launch-api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            placeholder="sk-ant-… (kept in this page's memory only)"
            value={options.apiKey}
            onChange={event =>
              model.setLaunchOptions({ apiKey: event.target.value })
            }
          />
        </label>
      )}
    </div>
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
    <div
      className="jp-AgentsPanel-card"
      data-testid="preset-card"
      data-config-id={config.id}
    >
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
      {config.system_prompt ? (
        <details className="jp-AgentsPanel-prompt" data-testid="preset-prompt">
          <summary>Prompt</summary>
          <div className="jp-AgentsPanel-promptText">
            {config.system_prompt}
          </div>
        </details>
      ) : null}
      <button
        className="jp-mod-styled jp-mod-accept jp-AgentsPanel-launch"
        data-testid="preset-launch"
        disabled={model.launching !== null}
        onClick={() => void model.launch(config.id)}
      >
        {launching ? 'Launching…' : 'Launch'}
      </button>
    </div>
  );
}

/** A JSON config, prefilled from a preset; the server's refusal shows under it. */
function ConfigEditor({
  model,
  configs
}: {
  model: AgentsModel;
  configs: ConfigSummary[];
}): JSX.Element {
  const error = model.configError;
  const launching = model.launching === CUSTOM_LAUNCH;
  return (
    <div className="jp-AgentsPanel-configEditor">
      <select
        className="jp-AgentsPanel-select"
        data-testid="config-template"
        value=""
        onChange={event => {
          if (event.target.value) {
            void model.loadConfigTemplate(event.target.value);
          }
        }}
      >
        <option value="">Start from a preset…</option>
        {configs.map(config => (
          <option key={config.id} value={config.id}>
            {config.name || config.id}
          </option>
        ))}
      </select>
      <textarea
        className={`jp-AgentsPanel-input jp-AgentsPanel-code${error ? ' jp-mod-invalid' : ''}`}
        data-testid="config-editor"
        aria-label="Custom config (JSON)"
        aria-invalid={error ? true : undefined}
        spellCheck={false}
        rows={12}
        placeholder='{"id": "reviewer", "allowed_tools": ["Read", "Grep"], "system_prompt": "..."}'
        value={model.configText}
        onChange={event => model.setConfigText(event.target.value)}
      />
      {error && (
        <div
          className="jp-AgentsPanel-error"
          data-testid="config-error"
          data-field={error.field}
          role="alert"
        >
          <FieldMessage error={error} />
        </div>
      )}
      <div className="jp-AgentsPanel-buttons jp-AgentsPanel-end">
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="config-launch"
          disabled={model.launching !== null || !model.configText.trim()}
          onClick={() => void model.launchCustom()}
        >
          {launching ? 'Launching…' : 'Launch custom config'}
        </button>
      </div>
    </div>
  );
}

/**
 * A refusal with the field at fault named once: where the message names it already
 * ("config.max_turns: must be a positive integer"), that mention is the marked field;
 * else the field comes first.
 */
function FieldMessage({ error }: { error: FieldError }): JSX.Element {
  const field = (text: string): JSX.Element => (
    <code
      className="jp-AgentsPanel-errorField"
      data-testid="config-error-field"
    >
      {text}
    </code>
  );
  if (!error.field) {
    return <span>{error.message}</span>;
  }
  const at = error.message.indexOf(error.field);
  if (at < 0) {
    return (
      <span>
        {field(error.field)}: {error.message}
      </span>
    );
  }
  return (
    <span>
      {error.message.slice(0, at)}
      {field(error.field)}
      {error.message.slice(at + error.field.length)}
    </span>
  );
}

const LIVE_STATES = new Set(['starting', 'ready', 'busy', 'idle']);

function StateBadge({ state }: { state: string }): JSX.Element {
  return (
    <span
      className={`jp-AgentsPanel-state jp-AgentsPanel-state-${state}`}
      data-testid="session-state"
    >
      {state}
    </span>
  );
}

function SessionRow({
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
          Files{session.files ? ` (${session.files.total_files})` : ''}
        </button>
      </div>
      {tab === 'chat' ? (
        <ChatTab session={session} rendermime={rendermime} />
      ) : (
        <FilesTab session={session} />
      )}
    </div>
  );
}

function ChatTab({
  session,
  rendermime
}: {
  session: SessionModel;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const view = session.view;
  const tree = callTree(view);
  return (
    <>
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
          <Permission key={p.request_id} request={p} session={session} />
        ))}
        {tree.length > 0 && (
          <Section
            title={`Tools (${Object.keys(view.calls).length})`}
            name="tools"
          >
            <ul className="jp-AgentsPanel-timeline" data-testid="tool-timeline">
              {tree.map(call => (
                <Call
                  key={call.tool_use_id}
                  call={call}
                  sessionId={view.sessionId}
                />
              ))}
            </ul>
          </Section>
        )}
        {view.todos.length > 0 && (
          <Section
            title={`Tasks (${tasksDone(view)}/${view.todos.length})`}
            name="tasks"
          >
            <ul className="jp-AgentsPanel-todos" data-testid="task-list">
              {view.todos.map((todo, i) => (
                <li
                  key={i}
                  className={`jp-AgentsPanel-todo jp-AgentsPanel-todo-${todo.status}`}
                  data-testid="task-item"
                  data-status={todo.status}
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
  rendermime
}: {
  entry: ChatEntry;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
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
        <Markdown text={entry.text} rendermime={rendermime} />
      </div>
    );
  }
  return (
    <div className={className} data-testid={testid}>
      {entry.text}
    </div>
  );
}

function Permission({
  request,
  session
}: {
  request: PendingPermission;
  session: SessionModel;
}): JSX.Element {
  return (
    <div
      className="jp-AgentsPanel-permission"
      data-testid="permission-request"
      data-request-id={request.request_id}
      data-tool-name={request.tool_name}
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
          data-testid="permission-approve"
          onClick={() => void session.answer(request.request_id, 'allow')}
        >
          Approve
        </button>
        <button
          className="jp-mod-styled jp-mod-reject"
          data-testid="permission-deny"
          onClick={() => void session.answer(request.request_id, 'deny')}
        >
          Deny
        </button>
      </div>
    </div>
  );
}

function Call({
  call,
  sessionId
}: {
  call: ToolCallNode;
  sessionId: string;
}): JSX.Element {
  const [open, setOpen] = useState(false);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <li
      className={`jp-AgentsPanel-call jp-AgentsPanel-call-${call.status}`}
      data-testid="tool-call"
      data-tool-name={call.name}
      data-status={call.status}
      data-tool-use-id={call.tool_use_id}
    >
      <div
        className="jp-AgentsPanel-callRow"
        data-testid="tool-call-row"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <Caret.react tag="span" />
        <span className="jp-AgentsPanel-callStatus" title={call.status} />
        <span className="jp-AgentsPanel-callName">{call.name}</span>
        <span className="jp-AgentsPanel-callSummary">
          {summarizeInput(call.input, 80, sessionId)}
        </span>
        <span className="jp-AgentsPanel-callTime">
          {seconds(durationSeconds(call))}
        </span>
      </div>
      {open && (
        <div
          className="jp-AgentsPanel-callDetail"
          data-testid="tool-call-detail"
        >
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
            <Call key={child.tool_use_id} call={child} sessionId={sessionId} />
          ))}
        </ul>
      )}
    </li>
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

/** Files of a drop, or none (text or links dragged in). */
function droppedFiles(event: React.DragEvent): File[] {
  return Array.from(event.dataTransfer?.files ?? []);
}

function hasFiles(event: React.DragEvent): boolean {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

function FilesTab({ session }: { session: SessionModel }): JSX.Element {
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const [dragging, setDragging] = useState(false);
  const [dropTarget, setDropTarget] = useState<string | null>(null);
  const depth = useRef(0);
  const picker = useRef<HTMLInputElement>(null);
  const tree = session.files;
  const inLab =
    typeof session.info?.contents_path === 'string' &&
    session.agents.hooks.openInLab !== null;
  const toggle = (path: string): void => {
    const next = new Set(collapsed);
    if (next.has(path)) {
      next.delete(path);
    } else {
      next.add(path);
    }
    setCollapsed(next);
  };
  const drop = (event: React.DragEvent, target: string): void => {
    event.preventDefault();
    event.stopPropagation();
    depth.current = 0;
    setDragging(false);
    setDropTarget(null);
    const files = droppedFiles(event);
    if (files.length > 0) {
      void session.upload(files, target);
    }
  };
  return (
    <div
      className={`jp-AgentsPanel-files${dragging ? ' jp-mod-dropTarget' : ''}`}
      data-testid="files-dropzone"
      onDragEnter={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          depth.current += 1;
          setDragging(true);
        }
      }}
      onDragOver={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
        }
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) {
          setDragging(false);
          setDropTarget(null);
        }
      }}
      onDrop={event => drop(event, '')}
    >
      <div className="jp-AgentsPanel-toolbar">
        <span className="jp-AgentsPanel-usage" data-testid="files-total">
          {tree
            ? `${tree.total_files} ${tree.total_files === 1 ? 'file' : 'files'}${tree.truncated ? ' (list cut short)' : ''}`
            : session.filesLoading
              ? 'Loading…'
              : ''}
        </span>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="files-refresh"
          title="Refresh the workspace tree"
          disabled={session.filesLoading}
          onClick={() => void session.refreshFiles()}
        >
          <refreshIcon.react tag="span" />
        </button>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="upload-button"
          title="Upload files into the workspace"
          onClick={() => picker.current?.click()}
        >
          <fileUploadIcon.react tag="span" />
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          data-testid="upload-input"
          onChange={event => {
            const files = Array.from(event.target.files ?? []);
            event.target.value = '';
            if (files.length > 0) {
              void session.upload(files, '');
            }
          }}
        />
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="files-download-zip"
          title="Download the whole workspace as a ZIP"
          onClick={() => void session.downloadWorkspace()}
        >
          <downloadIcon.react tag="span" />
        </button>
      </div>
      {session.uploads.map(upload => (
        <UploadRow key={upload.id} upload={upload} session={session} />
      ))}
      {session.errors.files && (
        <div className="jp-AgentsPanel-error" data-testid="files-error">
          {session.errors.files}
        </div>
      )}
      {session.preview && (
        <Preview preview={session.preview} session={session} />
      )}
      <div className="jp-AgentsPanel-scroll">
        {tree && tree.tree.length === 0 && (
          <div className="jp-AgentsPanel-empty">
            The workspace is empty. Drop files here to upload them.
          </div>
        )}
        <ul className="jp-AgentsPanel-tree" data-testid="files-tree">
          {tree &&
            treeRows(tree.tree, collapsed).map(
              ({ node, depth: level, collapsed: folded }) => {
                const isDir = node.type === 'directory';
                const Icon = isDir ? folderIcon : fileIcon;
                const Caret = folded ? caretRightIcon : caretDownIcon;
                return (
                  <li
                    key={node.path}
                    className={`jp-AgentsPanel-treeRow${dropTarget === node.path ? ' jp-mod-dropTarget' : ''}`}
                    style={{ paddingLeft: `${4 + level * 14}px` }}
                    data-testid="file-entry"
                    data-path={node.path}
                    data-type={node.type}
                    title={
                      isDir
                        ? node.path
                        : `${node.path}: ${inLab ? 'open in JupyterLab' : 'preview'}`
                    }
                    onClick={() =>
                      isDir
                        ? toggle(node.path)
                        : void session.openFile(node.path)
                    }
                    onDragOver={
                      isDir
                        ? event => {
                            if (hasFiles(event)) {
                              event.preventDefault();
                              setDropTarget(node.path);
                            }
                          }
                        : undefined
                    }
                    onDrop={isDir ? event => drop(event, node.path) : undefined}
                  >
                    {isDir ? (
                      <Caret.react
                        tag="span"
                        className="jp-AgentsPanel-treeCaret"
                      />
                    ) : (
                      <span className="jp-AgentsPanel-treeCaret" />
                    )}
                    <Icon.react
                      tag="span"
                      className="jp-AgentsPanel-treeIcon"
                    />
                    <span className="jp-AgentsPanel-treeName">{node.name}</span>
                    {!isDir && (
                      <>
                        <span className="jp-AgentsPanel-treeSize">
                          {bytes(node.size_bytes)}
                        </span>
                        <button
                          className="jp-AgentsPanel-iconButton"
                          data-testid="file-download"
                          title={`Download ${node.name}`}
                          onClick={event => {
                            event.stopPropagation();
                            void session.downloadFile(node.path);
                          }}
                        >
                          <downloadIcon.react tag="span" />
                        </button>
                      </>
                    )}
                  </li>
                );
              }
            )}
        </ul>
        <div className="jp-AgentsPanel-hint jp-AgentsPanel-dropHint">
          Drop files here (or on a folder) to upload them.
        </div>
      </div>
    </div>
  );
}

function UploadRow({
  upload,
  session
}: {
  upload: UploadState;
  session: SessionModel;
}): JSX.Element {
  const percent =
    upload.state === 'done'
      ? 100
      : upload.total > 0
        ? Math.min(100, Math.round((upload.loaded / upload.total) * 100))
        : 0;
  const label =
    upload.state === 'uploading'
      ? `${percent}%`
      : upload.state === 'done'
        ? 'uploaded'
        : upload.state === 'cancelled'
          ? upload.error || 'cancelled'
          : upload.error;
  const names =
    upload.names.length > 2
      ? `${upload.names.slice(0, 2).join(', ')} and ${upload.names.length - 2} more`
      : upload.names.join(', ');
  return (
    <div
      className={`jp-AgentsPanel-upload jp-AgentsPanel-upload-${upload.state}`}
      data-testid="upload-progress"
      data-state={upload.state}
    >
      <div className="jp-AgentsPanel-uploadTitle">
        <span className="jp-AgentsPanel-uploadName">
          {names}
          {upload.target ? ` → ${upload.target}/` : ''}
        </span>
        <span className="jp-AgentsPanel-uploadState">{label}</span>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="upload-cancel"
          title={upload.state === 'uploading' ? 'Cancel the upload' : 'Dismiss'}
          onClick={() => session.dismissUpload(upload.id)}
        >
          <closeIcon.react tag="span" />
        </button>
      </div>
      <div
        className="jp-AgentsPanel-progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
      >
        <div
          className="jp-AgentsPanel-progressBar"
          style={{ width: `${percent}%` }}
        />
      </div>
    </div>
  );
}

function Preview({
  preview,
  session
}: {
  preview: FilePreview;
  session: SessionModel;
}): JSX.Element {
  return (
    <div
      className="jp-AgentsPanel-preview"
      data-testid="file-preview"
      data-path={preview.path}
    >
      <div className="jp-AgentsPanel-previewTitle">
        <span className="jp-AgentsPanel-treeName">{preview.path}</span>
        <span className="jp-AgentsPanel-usage">
          {[preview.language, bytes(preview.size_bytes)]
            .filter(Boolean)
            .join(' · ')}
        </span>
        <button
          className="jp-AgentsPanel-iconButton"
          title="Download"
          onClick={() => void session.downloadFile(preview.path)}
        >
          <downloadIcon.react tag="span" />
        </button>
        <button
          className="jp-AgentsPanel-iconButton"
          data-testid="file-preview-close"
          title="Close the preview"
          onClick={() => session.closePreview()}
        >
          <closeIcon.react tag="span" />
        </button>
      </div>
      {preview.binary ? (
        <div className="jp-AgentsPanel-empty">
          Binary file{preview.mime_type ? ` (${preview.mime_type})` : ''}:
          download it to look inside.
        </div>
      ) : (
        <pre className="jp-AgentsPanel-previewText">
          <code>{preview.content ?? ''}</code>
        </pre>
      )}
      {preview.truncated && (
        <div className="jp-AgentsPanel-hint">
          Only the beginning is shown: download the file for all of it.
        </div>
      )}
    </div>
  );
}
