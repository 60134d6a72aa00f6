import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';

import { agentsIcon } from './icons';
import { AgentsPanel } from './panel';
import { PanelSettings, DEFAULT_SETTINGS, readSettings } from './settings';

/** The plugin id: also the settings schema's id (`schema/plugin.json`). */
export const PLUGIN_ID = 'agcluster-jupyter:plugin';

/** Where the panel keeps the session being looked at across reloads. */
const STATE_KEY = `${PLUGIN_ID}:state`;

/** Command ids. */
export namespace CommandIDs {
  export const openPanel = 'agcluster:open-panel';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'The Agents side panel: launch, chat with and follow agcluster agent sessions.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    IRenderMimeRegistry,
    ILabShell,
    IStateDB
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    rendermime: IRenderMimeRegistry | null,
    labShell: ILabShell | null,
    state: IStateDB | null
  ) => {
    let settings: PanelSettings = { ...DEFAULT_SETTINGS };
    const panel = new AgentsPanel({ rendermime, settings });
    panel.id = 'agcluster-agents-panel';
    panel.title.icon = agentsIcon;
    panel.title.caption = 'Agents';

    let side: 'left' | 'right' = settings.panelSide;
    // `type` names the panel in JupyterLab's own layout (and its "switch side" menu)
    app.shell.add(panel, side, { rank: 900, type: 'Agents' });
    // the panel's open/closed state and its side area come back after a reload
    restorer?.add(panel, 'agcluster-agents-panel');

    const moveTo = (next: 'left' | 'right'): void => {
      if (next === side || !labShell) {
        return;
      }
      const wasVisible = panel.isVisible;
      side = next;
      labShell.move(panel, side);
      if (wasVisible) {
        labShell.activateById(panel.id);
      }
    };

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Open the Agents Panel',
      caption: 'Show the agcluster Agents side panel',
      icon: agentsIcon,
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'Agents' });

    if (state) {
      // the session being looked at comes back too (if it still exists)
      void Promise.all([state.fetch(STATE_KEY), app.restored])
        .then(async ([saved]) => {
          const selected = (saved as { selected?: unknown } | undefined)
            ?.selected;
          if (typeof selected === 'string' && panel.model.selected === null) {
            await panel.model.api.session(selected);
            panel.model.select(selected);
          }
        })
        .catch(() => undefined)
        .then(() => {
          let last = panel.model.selected;
          panel.model.changed.connect(model => {
            if (model.selected !== last) {
              last = model.selected;
              void state.save(STATE_KEY, { selected: last });
            }
          });
        });
    }

    if (settingRegistry) {
      Promise.all([settingRegistry.load(PLUGIN_ID), app.restored])
        .then(([loaded]) => {
          const apply = (): void => {
            settings = readSettings(loaded.composite);
            panel.updateSettings(settings);
            moveTo(settings.panelSide);
          };
          apply();
          loaded.changed.connect(apply);
        })
        .catch(reason => {
          console.error(
            'agcluster-jupyter: failed to load the settings',
            reason
          );
        });
    }
  }
};

export default plugin;
