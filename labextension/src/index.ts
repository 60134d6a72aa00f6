import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';

import { exportNotebook } from './exporter';
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
  export const launchDefault = 'agcluster:launch-default-preset';
  export const stopSession = 'agcluster:stop-session';
  export const interrupt = 'agcluster:interrupt';
  export const exportConversation = 'agcluster:export-conversation';
}

/** JupyterLab's command opening a path of the Jupyter tree in its editor or viewer. */
const DOCMANAGER_OPEN = 'docmanager:open';

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
    const { commands } = app;
    const panel = new AgentsPanel({
      rendermime,
      settings,
      actions: {
        exportConversation: () =>
          void commands.execute(CommandIDs.exportConversation)
      }
    });
    const model = panel.model;
    // workspace files open in JupyterLab's own editor or viewer (looked up when used:
    // the document manager's plugin may start after this one)
    model.hooks.openInLab = async path => {
      if (!commands.hasCommand(DOCMANAGER_OPEN)) {
        throw new Error('JupyterLab has no document manager here');
      }
      return commands.execute(DOCMANAGER_OPEN, { path });
    };
    panel.id = 'agcluster-agents-panel';
    panel.title.icon = agentsIcon;
    panel.title.label = 'Agents';
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

    commands.addCommand(CommandIDs.launchDefault, {
      label: 'Launch the Default Agent Preset',
      caption:
        "Launch a session of the default preset (the Agents panel's settings)",
      execute: async () => {
        app.shell.activateById(panel.id);
        const id = await model.launch(settings.defaultPreset);
        if (id === null && model.errors.launch) {
          await showErrorMessage('Launch failed', model.errors.launch);
        }
        return id;
      }
    });

    commands.addCommand(CommandIDs.stopSession, {
      label: 'Stop the Selected Agent Session',
      caption:
        'Stop the session open in the Agents panel (its workspace is kept)',
      isEnabled: () => model.selected !== null,
      execute: () => model.stopSelected()
    });

    commands.addCommand(CommandIDs.interrupt, {
      label: 'Interrupt the Agent',
      caption: "Stop the running turn of the Agents panel's session",
      isEnabled: () =>
        model.selected !== null && (model.sending || model.view.busy),
      execute: () => model.interrupt()
    });

    commands.addCommand(CommandIDs.exportConversation, {
      label: 'Export the Agent Conversation as a Notebook',
      caption:
        "Save the conversation of the Agents panel's session as a notebook and open it",
      icon: args => (args.isPalette ? undefined : agentsIcon),
      isEnabled: () => model.selected !== null,
      execute: async () => {
        const sessionId = model.selected;
        if (sessionId === null) {
          return null;
        }
        try {
          const result = await exportNotebook(
            model.api,
            app.serviceManager.contents,
            sessionId,
            { info: model.selectedInfo, directory: settings.exportDirectory }
          );
          if (
            result.saved === 'contents' &&
            commands.hasCommand(DOCMANAGER_OPEN)
          ) {
            await commands.execute(DOCMANAGER_OPEN, { path: result.path });
          }
          return result.path;
        } catch (error) {
          await showErrorMessage(
            'Export failed',
            error instanceof Error ? error.message : String(error)
          );
          return null;
        }
      }
    });

    for (const command of [
      CommandIDs.openPanel,
      CommandIDs.launchDefault,
      CommandIDs.stopSession,
      CommandIDs.interrupt,
      CommandIDs.exportConversation
    ]) {
      palette?.addItem({ command, category: 'Agents' });
    }

    // the commands' enabled state follows the panel's session and its turn
    let enabledKey = '';
    model.changed.connect(() => {
      const key = `${model.selected}:${model.sending || model.view.busy}`;
      if (key !== enabledKey) {
        enabledKey = key;
        commands.notifyCommandChanged();
      }
    });

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
