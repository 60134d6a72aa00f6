/**
 * What an agent says is untrusted content: the panel's one sanitizer for it.
 *
 * Everything else the panel shows of an agent (tool inputs and outputs, file names and
 * previews, tasks, errors) goes into the page as React text, never as HTML.  Assistant
 * text is Markdown, rendered by JupyterLab's renderer, untrusted; its HTML passes through
 * `AgentContentSanitizer`, before it is put into the page:
 *
 * - JupyterLab's own sanitizer first (no script, no event handlers, no command-linker
 *   attributes that would run JupyterLab commands on a click);
 * - then, in an inert document (a `DOMParser` document loads nothing): links kept only
 *   for absolute http(s) targets, the others become their text; images become links,
 *   so nothing loads by itself (a remote image would carry data out of a container that
 *   has no network, through the user's browser).
 *
 * After rendering, `secureLinks` gives every link `rel="noopener noreferrer"` (JupyterLab
 * sets `noopener` only).
 */
import { Sanitizer } from '@jupyterlab/apputils';
import type { IRenderMime } from '@jupyterlab/rendermime';

/** `url` if it is an absolute http(s) URL (a link the panel may show), else null. */
export function safeHref(url: string | null | undefined): string | null {
  if (!url) {
    return null;
  }
  const candidate = url.trim();
  if (!/^https?:\/\/[^\s]/i.test(candidate)) {
    return null;
  }
  try {
    const parsed = new URL(candidate);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:'
      ? candidate
      : null;
  } catch {
    return null;
  }
}

function linkTo(doc: Document, href: string, label: string): HTMLAnchorElement {
  const anchor = doc.createElement('a');
  anchor.setAttribute('href', href);
  anchor.setAttribute('target', '_blank');
  anchor.setAttribute('rel', 'noopener noreferrer');
  anchor.textContent = label;
  return anchor;
}

export class AgentContentSanitizer implements IRenderMime.ISanitizer {
  readonly allowNamedProperties = false;
  readonly allowCommandLinker = false;

  getAutolink(): boolean {
    return true;
  }

  sanitize(dirty: string, options?: IRenderMime.ISanitizerOptions): string {
    const clean = this._base.sanitize(dirty, options);
    const doc = new DOMParser().parseFromString(
      `<!DOCTYPE html><html><body>${clean}</body></html>`,
      'text/html'
    );
    for (const image of Array.from(doc.body.querySelectorAll('img'))) {
      const label = `[image: ${image.getAttribute('alt') || 'image'}]`;
      const href = safeHref(image.getAttribute('src'));
      image.replaceWith(
        href ? linkTo(doc, href, label) : doc.createTextNode(label)
      );
    }
    for (const anchor of Array.from(doc.body.querySelectorAll('a'))) {
      const href = anchor.getAttribute('href');
      if (href !== null && href.startsWith('#') && href.length > 1) {
        continue; // a heading's own anchor
      }
      if (safeHref(href) === null) {
        anchor.replaceWith(...Array.from(anchor.childNodes));
        continue;
      }
      anchor.setAttribute('target', '_blank');
      anchor.setAttribute('rel', 'noopener noreferrer');
    }
    for (const element of Array.from(
      doc.body.querySelectorAll('svg, math, iframe, object, embed, form, style')
    )) {
      element.replaceWith(doc.createTextNode(element.textContent ?? ''));
    }
    return doc.body.innerHTML;
  }

  private _base = AgentContentSanitizer._lab();

  private static _lab(): Sanitizer {
    // JupyterLab's default keeps data-commandlinker-* (a click runs a Lab command)
    const base = new Sanitizer();
    base.setAllowCommandLinker(false);
    base.setAllowNamedProperties(false);
    return base;
  }
}

/** JupyterLab's renderer sets `rel="noopener"` on the links it keeps: add `noreferrer`. */
export function secureLinks(node: HTMLElement): void {
  for (const anchor of Array.from(node.querySelectorAll('a[href]'))) {
    const href = anchor.getAttribute('href') ?? '';
    if (href.startsWith('#')) {
      continue;
    }
    anchor.setAttribute('target', '_blank');
    anchor.setAttribute('rel', 'noopener noreferrer');
  }
}
