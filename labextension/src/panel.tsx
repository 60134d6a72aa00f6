import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { PanelSettings } from './settings';

export interface AgentsPanelOptions {
  rendermime: IRenderMimeRegistry | null;
  settings: PanelSettings;
}

/** The Agents side panel. */
export class AgentsPanel extends ReactWidget {
  constructor(options: AgentsPanelOptions) {
    super();
    this.addClass('jp-AgentsPanel');
    this._settings = options.settings;
  }

  updateSettings(settings: PanelSettings): void {
    this._settings = settings;
    this.update();
  }

  protected render(): JSX.Element {
    return <div className="jp-AgentsPanel-header">Agents ({this._settings.defaultPreset})</div>;
  }

  private _settings: PanelSettings;
}
