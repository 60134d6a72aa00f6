import { ReadonlyPartialJSONValue } from '@lumino/coreutils';

/** The user settings of the Agents panel (see `schema/plugin.json`). */
export interface PanelSettings {
  defaultPreset: string;
  panelSide: 'left' | 'right';
  sessionsRefreshSeconds: number;
  /** where exported conversations go in the Jupyter tree ('' = its root) */
  exportDirectory: string;
}

export const DEFAULT_SETTINGS: PanelSettings = {
  defaultPreset: 'code-assistant',
  panelSide: 'right',
  sessionsRefreshSeconds: 5,
  exportDirectory: ''
};

/** The settings from a composite settings object, each field checked, defaults elsewhere. */
export function readSettings(
  composite: ReadonlyPartialJSONValue | undefined
): PanelSettings {
  const raw = (composite ?? {}) as { [key: string]: unknown };
  const preset = raw.defaultPreset;
  const side = raw.panelSide;
  const refresh = raw.sessionsRefreshSeconds;
  const exportDirectory = raw.exportDirectory;
  return {
    defaultPreset:
      typeof preset === 'string' ? preset : DEFAULT_SETTINGS.defaultPreset,
    panelSide:
      side === 'left' || side === 'right' ? side : DEFAULT_SETTINGS.panelSide,
    sessionsRefreshSeconds:
      typeof refresh === 'number' && refresh >= 1
        ? refresh
        : DEFAULT_SETTINGS.sessionsRefreshSeconds,
    exportDirectory:
      typeof exportDirectory === 'string'
        ? exportDirectory
        : DEFAULT_SETTINGS.exportDirectory
  };
}
