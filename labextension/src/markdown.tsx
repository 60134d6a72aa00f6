import {
  IRenderMime,
  IRenderMimeRegistry,
  MimeModel
} from '@jupyterlab/rendermime';
import React, { useEffect, useRef } from 'react';
import { AgentContentSanitizer, secureLinks } from './untrusted';

/** A registry's clone that sanitizes with `AgentContentSanitizer`, one per registry. */
const agentRegistries = new WeakMap<IRenderMimeRegistry, IRenderMimeRegistry>();

function forAgentContent(rendermime: IRenderMimeRegistry): IRenderMimeRegistry {
  let clone = agentRegistries.get(rendermime);
  if (!clone) {
    clone = rendermime.clone({ sanitizer: new AgentContentSanitizer() });
    agentRegistries.set(rendermime, clone);
  }
  return clone;
}

/**
 * Agent Markdown through JupyterLab's own renderer, untrusted, with the panel's sanitizer
 * for agent content (`untrusted.ts`); re-rendered as the text streams in; one render at
 * a time, always ending on the latest text.
 */
export function Markdown(props: {
  text: string;
  rendermime: IRenderMimeRegistry | null;
  /** given: each code block gets an "Insert as cells" button calling it */
  onInsertCode?: (code: string) => void;
}): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const onInsert = useRef(props.onInsertCode);
  onInsert.current = props.onInsertCode;
  const state = useRef<{
    renderer: IRenderMime.IRenderer | null;
    rendering: boolean;
    shown: string | null;
    latest: string;
  }>({ renderer: null, rendering: false, shown: null, latest: props.text });

  const pump = (): void => {
    const s = state.current;
    if (!s.renderer || s.rendering || s.shown === s.latest) {
      return;
    }
    const text = s.latest;
    const renderer = s.renderer;
    s.rendering = true;
    renderer
      .renderModel(
        new MimeModel({ data: { 'text/markdown': text }, trusted: false })
      )
      .then(() => {
        secureLinks(renderer.node);
        if (onInsert.current) {
          addInsertButtons(renderer.node, code => onInsert.current?.(code));
        }
      })
      .catch(error =>
        console.warn('agcluster-jupyter: markdown rendering failed', error)
      )
      .finally(() => {
        s.rendering = false;
        if (s.renderer === renderer) {
          s.shown = text;
          pump();
        }
      });
  };

  useEffect(() => {
    if (!props.rendermime || !host.current) {
      return;
    }
    const renderer = forAgentContent(props.rendermime).createRenderer(
      'text/markdown'
    );
    host.current.appendChild(renderer.node);
    state.current.renderer = renderer;
    state.current.shown = null;
    pump();
    return () => {
      state.current.renderer = null;
      renderer.node.remove();
      renderer.dispose();
    };
  }, [props.rendermime]);

  useEffect(() => {
    state.current.latest = props.text;
    pump();
  }, [props.text]);

  if (!props.rendermime) {
    return <div className="jp-AgentsPanel-plain">{props.text}</div>;
  }
  return <div className="jp-AgentsPanel-markdown" ref={host} />;
}

/**
 * An "Insert as cells" button after each code block of rendered agent Markdown.  The code
 * is taken from the block's text (never its HTML), so what lands in the notebook is what
 * the user saw.
 */
export function addInsertButtons(
  node: HTMLElement,
  insert: (code: string) => void
): void {
  for (const pre of Array.from(node.querySelectorAll('pre'))) {
    if (
      pre.nextElementSibling?.classList.contains('jp-AgentsPanel-insertCells')
    ) {
      continue;
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-AgentsPanel-insertCells jp-mod-styled';
    button.dataset.testid = 'insert-as-cells';
    button.textContent = 'Insert as cells';
    button.title =
      'Put this code into the active notebook, below its active cell (# %% marks split it into cells)';
    button.addEventListener('click', () => insert(pre.textContent ?? ''));
    pre.insertAdjacentElement('afterend', button);
  }
}
