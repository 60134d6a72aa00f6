import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  WidgetTracker,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { ApiError } from './api';
import { splitCells } from './cells';
import { CELLS_MIME, CellsRenderer } from './cellsrenderer';
import { launchHereDialog } from './dialogs';
import { exportNotebook } from './exporter';
import { LiveNotebooks } from './livenotebooks';
import { NotebookLike, asNotebook } from './notebooklike';
import { agentsIcon } from './icons';
import { PanelActions } from './actions';
import { AgentsPanel } from './panel';
import { SessionModel } from './session';
import { AgentSessionTab } from './sessiontab';
import { CheckpointDiffTab, diffTabId } from './diffview';
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
  export const openSessionTab = 'agcluster:open-session-tab';
  export const openAgentHere = 'agcluster:open-agent-here';
}

/** The namespace of the session tabs in JupyterLab's layout (restored on reload). */
const TAB_NAMESPACE = 'agcluster-session';

/** JupyterLab's command opening a path of the Jupyter tree in its editor or viewer. */
const DOCMANAGER_OPEN = 'docmanager:open';

/** The arguments of a command that takes none (`describedBy`, a JSON schema). */
const NO_ARGS = { type: 'object', properties: {} } as const;

/** The arguments of the commands about one session (`describedBy`, a JSON schema). */
const SESSION_ARGS = {
  type: 'object',
  properties: {
    sessionId: {
      type: 'string',
      description:
        "the session's id; none: the focused session tab's, else the one open in the Agents panel"
    }
  }
} as const;

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
    IStateDB,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    rendermime: IRenderMimeRegistry | null,
    labShell: ILabShell | null,
    state: IStateDB | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    let settings: PanelSettings = { ...DEFAULT_SETTINGS };
    const { commands } = app;
    // what the panel and the tabs can ask of the app; opening a session in a tab of its
    // own needs JupyterLab's dock panel (Notebook 7's main area holds its one document)
    const actions: PanelActions = {
      insertCode: code => insertIntoActiveNotebook(code),
      exportConversation: sessionId =>
        void commands.execute(CommandIDs.exportConversation, { sessionId }),
      openTab: labShell
        ? sessionId =>
            void commands.execute(CommandIDs.openSessionTab, { sessionId })
        : undefined,
      openDiff: labShell
        ? (sessionId, turn) => openDiff(sessionId, turn)
        : undefined
    };
    // the notebook last in focus in the main area (the side panel has the focus now)
    let activeNotebook: NotebookLike | null = null;
    const noteNotebook = (): void => {
      const current = labShell?.currentWidget ?? app.shell.currentWidget;
      const notebook = asNotebook(current);
      if (notebook) {
        activeNotebook = notebook;
      }
    };
    labShell?.currentChanged.connect(noteNotebook);
    function insertIntoActiveNotebook(code: string): number {
      noteNotebook();
      const notebook = activeNotebook;
      const model = notebook?.content.model;
      if (!notebook || notebook.isDisposed || !model) {
        void showErrorMessage(
          'No notebook to insert into',
          'Open a notebook (or click into one), then insert the code again.'
        );
        return 0;
      }
      const cells = splitCells(code);
      const at = Math.max(0, notebook.content.activeCellIndex + 1);
      cells.forEach((cell, i) => {
        model.sharedModel.insertCell(at + i, {
          cell_type: cell.cell_type,
          source: cell.source,
          // the user can tell what came from an agent; the signer never vouches for it
          metadata: { agcluster: { inserted_from: 'chat' } }
        });
      });
      if (cells.length) {
        notebook.content.activeCellIndex = at + cells.length - 1;
      }
      return cells.length;
    }
    const panel = new AgentsPanel({ rendermime, settings, actions });
    const model = panel.model;
    // a turn's file changes in a main-area tab (one per session and turn)
    const diffTabs = new Map<string, CheckpointDiffTab>();
    function openDiff(sessionId: string, turn: number): void {
      if (!labShell) {
        return;
      }
      const id = diffTabId(sessionId, turn);
      const open = diffTabs.get(id);
      if (open && !open.isDisposed) {
        labShell.activateById(open.id);
        return;
      }
      const tab = new CheckpointDiffTab({
        api: model.api,
        sessionId,
        turn,
        label: model.label(sessionId),
        onForked: () => void model.refresh(),
        onChanged: () => {
          void model.refresh();
          // the workspace changed under the open Files tabs: show it as it is now
          if (model.current?.sessionId === sessionId) {
            model.current.files.refreshSoon();
          }
          tabOf(sessionId)?.session.files.refreshSoon();
        }
      });
      diffTabs.set(id, tab);
      tab.disposed.connect(() => diffTabs.delete(id));
      labShell.add(tab, 'main', { mode: 'tab-after', type: 'Agent changes' });
      labShell.activateById(tab.id);
    }
    model.hooks.insertCode = code => insertIntoActiveNotebook(code);
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
      describedBy: { args: NO_ARGS },
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.launchDefault, {
      label: 'Launch the Default Agent Preset',
      caption:
        "Launch a session of the default preset (the Agents panel's settings)",
      describedBy: { args: NO_ARGS },
      execute: async () => {
        app.shell.activateById(panel.id);
        const id = await model.launch(settings.defaultPreset);
        if (id === null && model.errors.launch) {
          await showErrorMessage('Launch failed', model.errors.launch);
        }
        return id;
      }
    });

    // session tabs in the main area: one per session, restored after a reload
    const tabs = new WidgetTracker<AgentSessionTab>({
      namespace: TAB_NAMESPACE
    });
    const tabOf = (sessionId: string): AgentSessionTab | undefined =>
      tabs.find(tab => tab.sessionId === sessionId);

    /**
     * The session a command acts on: `args.sessionId`; else the session tab the user is
     * in; else the session open in the side panel.
     */
    const target = (
      args: ReadonlyPartialJSONObject
    ): { id: string; session: SessionModel | null } | null => {
      const explicit = args.sessionId;
      if (typeof explicit === 'string' && explicit) {
        const session =
          tabOf(explicit)?.session ??
          (model.selected === explicit ? model.current : null);
        return { id: explicit, session };
      }
      const current = app.shell.currentWidget;
      if (current instanceof AgentSessionTab) {
        return { id: current.sessionId, session: current.session };
      }
      return model.current
        ? { id: model.current.sessionId, session: model.current }
        : null;
    };

    commands.addCommand(CommandIDs.openSessionTab, {
      label: 'Open the Agent Session in a Tab',
      caption:
        'Open a session (args: sessionId) in a main-area tab, with its chat, tools, tasks and files',
      describedBy: { args: SESSION_ARGS },
      icon: args => (args.isPalette ? undefined : agentsIcon),
      isEnabled: args =>
        labShell !== null &&
        (typeof args.sessionId === 'string' || model.selected !== null),
      execute: async args => {
        const sessionId =
          typeof args.sessionId === 'string' && args.sessionId
            ? args.sessionId
            : model.selected;
        if (!sessionId || !labShell) {
          return null;
        }
        const open = tabOf(sessionId);
        if (open) {
          labShell.activateById(open.id);
          return open;
        }
        if (!model.sessionInfo(sessionId)) {
          try {
            await model.api.session(sessionId); // a tab restored after its purge
          } catch (error) {
            if (error instanceof ApiError && error.status === 404) {
              return null;
            }
            throw error;
          }
          if (tabOf(sessionId)) {
            return tabOf(sessionId); // opened meanwhile (a double click)
          }
        }
        // the session moves from the side panel to its tab (one follower of it)
        if (model.selected === sessionId) {
          model.select(null);
        }
        const tab = new AgentSessionTab({
          agents: model,
          sessionId,
          rendermime,
          actions: {
            exportConversation: actions.exportConversation,
            openDiff: actions.openDiff
          }
        });
        tab.session.changed.connect(refreshEnabled);
        void tabs.add(tab);
        // next to the document being worked on, else as a tab of its own
        const current = labShell.currentWidget;
        const beside =
          current !== null &&
          !(current instanceof AgentSessionTab) &&
          'context' in current;
        labShell.add(tab, 'main', {
          mode: beside ? 'split-right' : 'tab-after',
          type: 'Agent session'
        });
        labShell.activateById(tab.id);
        return tab;
      }
    });

    if (restorer) {
      void restorer.restore(tabs, {
        command: CommandIDs.openSessionTab,
        args: tab => ({ sessionId: tab.sessionId }),
        name: tab => tab.sessionId
      });
    }

    commands.addCommand(CommandIDs.stopSession, {
      label: 'Stop the Selected Agent Session',
      caption:
        "Stop the session of the focused session tab, else the Agents panel's (its workspace is kept)",
      describedBy: { args: SESSION_ARGS },
      isEnabled: args => target(args) !== null,
      execute: async args => {
        const session = target(args);
        if (session) {
          await model.stop(session.id);
        }
      }
    });

    commands.addCommand(CommandIDs.interrupt, {
      label: 'Interrupt the Agent',
      caption:
        "Stop the running turn of the focused session tab, else the Agents panel's session",
      describedBy: { args: SESSION_ARGS },
      isEnabled: args => target(args)?.session?.busy ?? false,
      execute: async args => {
        await target(args)?.session?.interrupt();
      }
    });

    commands.addCommand(CommandIDs.exportConversation, {
      label: 'Export the Agent Conversation as a Notebook',
      caption:
        "Save the conversation of the focused session tab (else the Agents panel's session) as a notebook and open it",
      describedBy: { args: SESSION_ARGS },
      icon: args => (args.isPalette ? undefined : agentsIcon),
      isEnabled: args => target(args) !== null,
      execute: async args => {
        const sessionId = target(args)?.id;
        if (!sessionId) {
          return null;
        }
        try {
          const result = await exportNotebook(
            model.api,
            app.serviceManager.contents,
            sessionId,
            {
              info: model.sessionInfo(sessionId),
              directory: settings.exportDirectory
            }
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

    // "Open an agent here…" on a folder of the file browser: a folder workspace
    const selectedFolder = (): string | null => {
      const item = fileBrowser?.selectedItems().next();
      return item && !item.done && item.value.type === 'directory'
        ? item.value.path
        : null;
    };
    commands.addCommand(CommandIDs.openAgentHere, {
      label: 'Open an Agent Here…',
      caption:
        'Launch an agent session that works in this folder (args: path, relative to the file browser root)',
      icon: args => (args.isPalette ? undefined : agentsIcon),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: {
              type: 'string',
              description:
                "the folder, as the file browser shows it; none: the file browser's selected folder"
            }
          }
        }
      },
      isVisible: args =>
        typeof args.path === 'string' || selectedFolder() !== null,
      execute: async args => {
        const folder =
          typeof args.path === 'string' ? args.path : selectedFolder();
        if (folder === null) {
          return null;
        }
        if (model.configs.length === 0) {
          await model.refresh();
        }
        const choice = await launchHereDialog(
          folder,
          model.configs,
          settings.defaultPreset
        );
        if (!choice) {
          return null;
        }
        app.shell.activateById(panel.id);
        const id = await model.launch(choice.configId, {
          workspace: folder,
          ...(choice.readonly ? { workspace_readonly: true } : {})
        });
        if (id === null && model.errors.launch) {
          await showErrorMessage('Launch failed', model.errors.launch);
        }
        return id;
      }
    });
    app.contextMenu.addItem({
      command: CommandIDs.openAgentHere,
      selector: '.jp-DirListing-item[data-isdir="true"]',
      rank: 60
    });

    // %%agent --cells: the reply's cells, inserted below the cell (trusted outputs only)
    rendermime?.addFactory(
      {
        safe: false,
        mimeTypes: [CELLS_MIME],
        defaultRank: 40,
        createRenderer: () => new CellsRenderer(() => app.shell.widgets('main'))
      },
      40
    );

    // open notebooks reload after an agent's edit; their unsaved changes hold agents off
    const live = new LiveNotebooks(model.api, () => app.shell.widgets('main'));
    void app.restored.then(() => live.start());

    for (const command of [
      CommandIDs.openPanel,
      CommandIDs.launchDefault,
      CommandIDs.openSessionTab,
      CommandIDs.stopSession,
      CommandIDs.interrupt,
      CommandIDs.exportConversation
    ]) {
      palette?.addItem({ command, category: 'Agents' });
    }

    // the commands' enabled state follows the sessions they act on and their turns
    let enabledKey = '';
    function refreshEnabled(): void {
      const session = target({});
      const key = `${model.selected}:${session?.id}:${session?.session?.busy}`;
      if (key !== enabledKey) {
        enabledKey = key;
        commands.notifyCommandChanged();
      }
    }
    model.changed.connect(refreshEnabled);
    labShell?.currentChanged.connect(refreshEnabled);

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
