/**
 * A collapsible section of the panel (launch, custom config, sessions; a session's tools
 * and tasks).
 *
 * data-testid contract (browser tests rely on these names; keep them stable):
 *
 *   section-<name>         a collapsible section's title button: launch, custom-config,
 *                          sessions, tools, tasks (click to open/close; data-open)
 */

import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

export function Section(props: {
  title: string;
  name: string;
  initiallyOpen?: boolean;
  children?: React.ReactNode;
}): JSX.Element {
  const [open, setOpen] = useState(props.initiallyOpen ?? true);
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section className="jp-AgentsPanel-section">
      <button
        className="jp-AgentsPanel-sectionTitle"
        data-testid={`section-${props.name}`}
        data-open={open ? 'true' : 'false'}
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <Caret.react tag="span" />
        {props.title}
      </button>
      {open && (
        <div className="jp-AgentsPanel-sectionBody">{props.children}</div>
      )}
    </section>
  );
}
