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
}): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
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
      .then(() => secureLinks(renderer.node))
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
