/** Questions to the user, through JupyterLab's own dialogs (tests hand in their own). */

import { Dialog, showDialog } from '@jupyterlab/apputils';

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
