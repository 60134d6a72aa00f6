/**
 * The panel's home, when no session is open in it: the launch options, the presets to
 * launch, the custom config editor and the sessions list (rows in sessions.tsx).
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
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
 *   sessions-error         a failed list/stop/purge
 */

import React from 'react';

import { PanelActions } from './actions';
import { ConfigSummary } from './api';
import { AgentsModel, CUSTOM_LAUNCH, FieldError } from './model';
import { Section } from './section';
import { SessionRow, forkOrder } from './sessions';
import { PanelSettings } from './settings';

/** Presets first (the default one on top), the custom config, then the sessions. */
export function Home({
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
          {forkOrder(model.sessions).map(({ session, depth }) => (
            <SessionRow
              key={session.session_id}
              session={session}
              model={model}
              actions={actions}
              depth={depth}
            />
          ))}
        </ul>
      </Section>
    </div>
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
