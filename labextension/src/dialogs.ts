/** Questions to the user, through JupyterLab's own dialogs (tests hand in their own). */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

export interface Confirmation {
  title: string;
  body: string;
  /** the accept button's label */
  accept: string;
  /** a destructive action: the accept button is drawn as a warning */
  danger?: boolean;
}

/** Ask; true when the user accepted. */
export type Confirm = (question: Confirmation) => Promise<boolean>;

/** `showDialog` with Cancel and an accept button. */
export const confirmDialog: Confirm = async question => {
  const accept = question.danger
    ? Dialog.warnButton({ label: question.accept })
    : Dialog.okButton({ label: question.accept });
  const result = await showDialog({
    title: question.title,
    body: question.body,
    buttons: [Dialog.cancelButton(), accept]
  });
  return result.button.accept;
};

/** What "Open an agent here…" asks: which preset, and whether the folder is read-only. */
export interface LaunchHereChoice {
  configId: string;
  readonly: boolean;
}

/** The dialog of "Open an agent here…" on a folder of the file browser. */
export async function launchHereDialog(
  folder: string,
  presets: { id: string; name: string }[],
  preferred: string
): Promise<LaunchHereChoice | null> {
  const body = document.createElement('div');
  body.className = 'agc-LaunchHere';
  const intro = document.createElement('p');
  intro.textContent = `The agent works in ${folder || 'the root folder'}: it reads and changes the files there, in its own container, and every turn is a checkpoint you can undo.`;
  const label = document.createElement('label');
  label.textContent = 'Preset ';
  const select = document.createElement('select');
  select.dataset.testid = 'launch-here-preset';
  for (const preset of presets) {
    const option = document.createElement('option');
    option.value = preset.id;
    option.textContent = preset.name || preset.id;
    option.selected = preset.id === preferred;
    select.appendChild(option);
  }
  label.appendChild(select);
  const readonlyLabel = document.createElement('label');
  const readonly = document.createElement('input');
  readonly.type = 'checkbox';
  readonly.dataset.testid = 'launch-here-readonly';
  readonlyLabel.append(readonly, ' Read-only (the agent may look, not change)');
  body.append(intro, label, document.createElement('br'), readonlyLabel);
  const result = await showDialog({
    title: 'Open an Agent Here',
    body: new Widget({ node: body }),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Launch' })]
  });
  if (!result.button.accept || !select.value) {
    return null;
  }
  return { configId: select.value, readonly: readonly.checked };
}
