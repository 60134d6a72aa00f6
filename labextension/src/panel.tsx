/**
 * The Agents side panel: a header (health, demo mode, errors), then either its home
 * (home.tsx: launch, presets, custom config, sessions) or the session open in it
 * (sessionpane.tsx, shared with a session's main-area tab in sessiontab.tsx: chat.tsx,
 * tools.tsx, filestab.tsx); a turn's file changes open in a main-area tab of their own
 * (diffview.tsx).
 *
 * data-testid contract (browser tests rely on these names; keep them stable; each
 * module lists those of what it shows):
 *
 *   demo-mode              "Demo model: replies are scripted"
 *   panel-error            the server or its provider is not usable
 *   refresh                reload health, presets and sessions
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { PanelActions } from './actions';
import { Home } from './home';
import { AgentsModel } from './model';
import { SessionPane } from './sessionpane';
import { PanelSettings } from './settings';

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
