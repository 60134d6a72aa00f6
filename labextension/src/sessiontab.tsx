/**
 * A session in a main-area tab: the whole session pane (chat, tools, tasks, files) next
 * to the user's notebooks, while the side panel keeps the list and quick chats.
 *
 * The tab follows its session with a `SessionModel` of its own (from the side panel's
 * `AgentsModel`, whose sessions list, stop and purge it shares), titled by what the
 * session is called and the start of its id, and closes itself when the session leaves
 * the list (purged, here or elsewhere).
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { sessionTitle } from './format';
import { agentsIcon } from './icons';
import { AgentsModel } from './model';
import { PanelActions } from './actions';
import { SessionPane } from './sessionpane';
import { SessionModel } from './session';

export interface SessionTabOptions {
  agents: AgentsModel;
  sessionId: string;
  rendermime: IRenderMimeRegistry | null;
  actions?: PanelActions;
}

/** The DOM id of a session's tab. */
export function sessionTabId(sessionId: string): string {
  return `agcluster-session-${sessionId}`;
}

export class AgentSessionTab extends ReactWidget {
  constructor(options: SessionTabOptions) {
    super();
    this.addClass('jp-AgentsPanel');
    this.addClass('jp-AgentsSessionTab');
    this.id = sessionTabId(options.sessionId);
    this.agents = options.agents;
    this.session = options.agents.follow(options.sessionId);
    this._rendermime = options.rendermime;
    this._actions = options.actions ?? {};
    this.title.icon = agentsIcon;
    this.title.closable = true;
    this._retitle();
    this.session.changed.connect(() => this.update(), this);
    this.agents.changed.connect(() => {
      this._retitle();
      this.update();
    }, this);
    this.agents.removed.connect((_, id) => {
      if (id === this.sessionId) {
        this.close();
      }
    }, this);
  }

  readonly agents: AgentsModel;
  readonly session: SessionModel;

  get sessionId(): string {
    return this.session.sessionId;
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (!this.agents.loaded) {
      // restored after a reload, the side panel not shown yet: its names and presets
      void this.agents.refresh();
    }
  }

  /** Closing the tab ends its following (event stream, a running turn's stream). */
  protected override onCloseRequest(msg: Message): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.session.dispose();
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <div className="jp-AgentsPanel-body">
        <SessionPane
          session={this.session}
          rendermime={this._rendermime}
          actions={this._actions}
          placement="tab"
        />
      </div>
    );
  }

  private _retitle(): void {
    const id = this.sessionId;
    const label = this.agents.label(id);
    this.title.label = sessionTitle(label, id);
    const prompt = this.session.info?.first_prompt;
    this.title.caption = `Agent session ${label} (${id})${prompt ? `\n${prompt}` : ''}`;
  }

  private _rendermime: IRenderMimeRegistry | null;
  private _actions: PanelActions;
}
