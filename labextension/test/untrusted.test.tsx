// @vitest-environment jsdom
/**
 * Agent content in the panel is untrusted: the sanitizer on its own, then the whole panel
 * fed a session whose every surface carries the XSS payloads (`fixtures/xss.json`, the
 * same list as the Python and browser tests): chat text, a tool's input and output, a
 * permission request, tasks, an error, file names and a file's preview.  Markdown goes
 * through a real rendermime registry whose parser hands every payload to the sanitizer as
 * raw HTML (the worst case).  Nothing active may reach the page; every marker stays
 * readable as text.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Widget } from '@lumino/widgets';
import { afterEach, describe, expect, it } from 'vitest';

import { AgentsModel } from '../src/model';
import { AgentsPanel } from '../src/panel';
import { DEFAULT_SETTINGS } from '../src/settings';
import { AgentContentSanitizer, safeHref } from '../src/untrusted';
import { $, $$, until } from './dom';
import { FakeServer, frame, json, sse, stamp } from './fakeserver';

const XSS = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'xss.json'), 'utf-8')
) as { flag: string; exfil_host: string; payloads: Record<string, string> };
const NAMES = Object.keys(XSS.payloads);
const marker = (name: string): string => `XSS-${name}-MARK`;
const TEXT = NAMES.map(n => `${marker(n)} ${XSS.payloads[n]}`).join('\n\n');

const ACTIVE =
  'script, iframe, frame, object, embed, svg, math, style, link, meta, base, form, ' +
  'img, video, audio, source, picture, template';

/** What in `root` could run script, load by itself or run a JupyterLab command. */
function problems(root: ParentNode): string[] {
  const found: string[] = [];
  for (const element of Array.from(root.querySelectorAll(ACTIVE))) {
    if (element.closest('[data-icon]')) {
      continue; // the panel's own icons (LabIcon), not agent content
    }
    found.push(
      `<${element.tagName.toLowerCase()}> element: ${element.outerHTML.slice(0, 200)}`
    );
  }
  for (const element of Array.from(root.querySelectorAll('*'))) {
    for (const attribute of Array.from(element.attributes)) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value
        // control characters are what a browser skips in a URL scheme
        // eslint-disable-next-line no-control-regex
        .replace(/[\s\u0000-\u001f]/g, '')
        .toLowerCase();
      if (name.startsWith('on')) {
        found.push(`${name} on <${element.tagName.toLowerCase()}>`);
      }
      if (name.startsWith('data-commandlinker') || name === 'srcdoc') {
        found.push(`${name} on <${element.tagName.toLowerCase()}>`);
      }
      if (
        ['href', 'src', 'action', 'formaction', 'xlink:href'].includes(name) &&
        !/^(https?:\/\/|#)/.test(value)
      ) {
        found.push(`${name}=${attribute.value}`);
      }
    }
  }
  for (const anchor of Array.from(root.querySelectorAll('a[href]'))) {
    const href = anchor.getAttribute('href') ?? '';
    const rel = (anchor.getAttribute('rel') ?? '').split(/\s+/);
    if (
      !href.startsWith('#') &&
      !(rel.includes('noopener') && rel.includes('noreferrer'))
    ) {
      found.push(`a without noopener noreferrer: ${href}`);
    }
  }
  return found;
}

describe('AgentContentSanitizer', () => {
  const sanitizer = new AgentContentSanitizer();
  const render = (dirty: string): HTMLElement => {
    const host = document.createElement('div');
    host.innerHTML = sanitizer.sanitize(dirty);
    return host;
  };

  it.each(NAMES)('%s comes out inert and its marker readable', name => {
    const host = render(`<p>${marker(name)} ${XSS.payloads[name]}</p>`);
    expect(problems(host)).toEqual([]);
    expect(host.textContent).toContain(marker(name));
  });

  it('keeps formatting and http(s) links; images become links, other links text', () => {
    const host = render(
      '<h2>T</h2><p><strong>b</strong> <code>x</code> ' +
        '<a href="https://example.org/a">docs</a> <a href="/api/x">rel</a> ' +
        `<img src="https://${XSS.exfil_host}/t.png" alt="chart"> <img src="data:image/png;base64,AA" alt="d"></p>`
    );
    expect(host.querySelector('h2')?.textContent).toBe('T');
    expect(host.querySelector('strong')?.textContent).toBe('b');
    const links = Array.from(host.querySelectorAll('a')).map(a => [
      a.getAttribute('href'),
      a.textContent,
      a.getAttribute('rel')
    ]);
    expect(links).toEqual([
      ['https://example.org/a', 'docs', 'noopener noreferrer'],
      [
        `https://${XSS.exfil_host}/t.png`,
        '[image: chart]',
        'noopener noreferrer'
      ]
    ]);
    expect(host.textContent).toContain('rel');
    expect(host.textContent).toContain('[image: d]');
    expect(host.querySelector('img')).toBeNull();
  });

  it('safeHref keeps absolute http(s) URLs only', () => {
    expect(
      [
        'https://x.org',
        ' http://x.org/a ',
        'javascript:alert(1)',
        'JAVASCRIPT:x',
        '/api/x',
        '//x.org',
        'data:text/html,x',
        null
      ].map(safeHref)
    ).toEqual([
      'https://x.org',
      'http://x.org/a',
      null,
      null,
      null,
      null,
      null,
      null
    ]);
  });
});

const HOSTILE = stamp([
  { type: 'status', state: 'busy', detail: '' },
  { type: 'message', role: 'user', text: TEXT },
  { type: 'thinking', text: TEXT },
  { type: 'message', role: 'assistant', text: TEXT },
  {
    type: 'tool_use',
    tool_use_id: 't1',
    name: XSS.payloads['script'],
    input: { command: TEXT }
  },
  { type: 'tool_result', tool_use_id: 't1', is_error: true, output: TEXT },
  {
    type: 'tool_use',
    tool_use_id: 't2',
    name: 'Write',
    input: { file_path: '/workspace/x.html', content: TEXT }
  },
  {
    type: 'permission_request',
    request_id: 't2',
    tool_name: XSS.payloads['svg-onload'],
    input: { file_path: '/workspace/x.html', content: TEXT }
  },
  {
    // a run in the user's kernel: its whole code and its notebook, shown as text
    type: 'permission_request',
    request_id: 'srv_k1',
    tool_name: 'mcp__jupyter__run_code',
    input: { notebook: XSS.payloads['script'], kernel_id: 'k', code: TEXT }
  },
  {
    type: 'todo_update',
    todos: NAMES.map((n, i) => ({
      content: `${marker(n)} ${XSS.payloads[n]}`,
      activeForm: `${marker(n)} ${XSS.payloads[n]}`,
      status: ['pending', 'in_progress', 'completed'][i % 3]
    }))
  },
  { type: 'error', message: TEXT, code: XSS.payloads['img-onerror'] }
]);

const FILE_NAME = `${marker('file-name')} ${XSS.payloads['img-onerror']}.html`;

function hostileServer(): FakeServer {
  const session = {
    session_id: 's1',
    name: `${marker('session-name')} ${XSS.payloads['script']}`,
    state: 'busy',
    config_id: 'code-assistant',
    created_at: new Date().toISOString(),
    usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 },
    last_seq: 0
  };
  return new FakeServer()
    .on('GET', /health$/, () =>
      json({
        status: 'ok',
        provider: 'docker',
        provider_ok: true,
        isolated: true
      })
    )
    .on('GET', /configs\/$/, () => json({ configs: [], total: 0 }))
    .on('GET', /agents\/sessions$/, () =>
      json({ sessions: [session], total: 1 })
    )
    .on('GET', /agents\/s1\/events$/, () => sse(HOSTILE.map(frame), 'hang'))
    .on('GET', /files\/s1$/, () =>
      json({
        root: '/workspace',
        tree: [
          {
            name: FILE_NAME,
            path: FILE_NAME,
            type: 'file',
            size_bytes: TEXT.length,
            modified: ''
          }
        ],
        total_files: 1
      })
    )
    .on('GET', /files\/s1\/.+/, () =>
      json({
        path: FILE_NAME,
        content: TEXT,
        language: 'html',
        size_bytes: TEXT.length,
        lines: 20,
        binary: false
      })
    );
}

describe('the panel with a hostile session', () => {
  let panel: AgentsPanel | null = null;
  afterEach(() => {
    panel?.dispose();
    panel = null;
    document.body.innerHTML = '';
  });

  it('puts no agent content into the page as HTML, and shows all of it as text', async () => {
    const { RenderMimeRegistry, standardRendererFactories } =
      await import('@jupyterlab/rendermime');
    // the worst parser: every payload reaches the sanitizer as raw HTML
    const rendermime = new RenderMimeRegistry({
      initialFactories: standardRendererFactories,
      markdownParser: { render: async (source: string) => `<p>${source}</p>` }
    });
    const model = new AgentsModel(hostileServer().api());
    panel = new AgentsPanel({ rendermime, settings: DEFAULT_SETTINGS, model });
    Widget.attach(panel, document.body);
    panel.show();
    (await until(() => $('session-row'), 'the session row')).click();
    await until(() => $$('task-item').length === NAMES.length, 'the tasks');
    await until(
      () =>
        document
          .querySelector(
            '[data-testid="message-assistant"] .jp-RenderedMarkdown'
          )
          ?.textContent?.includes(marker(NAMES[NAMES.length - 1])),
      'the reply rendered'
    );
    for (const row of $$('tool-call-row')) {
      row.click(); // open each call: its input and output
    }
    await until(() => $$('tool-call-detail').length === 2, 'the details');
    const chatSurfaces = {
      reply: $('message-assistant')!,
      user: $('message-user')!,
      error: $('message-error')!,
      tools: $('tool-timeline')!,
      permission: $('permission-request')!,
      tasks: $('task-list')!
    };
    for (const [surface, node] of Object.entries(chatSurfaces)) {
      expect([surface, problems(node)]).toEqual([surface, []]);
    }
    for (const name of NAMES) {
      for (const surface of [
        'reply',
        'user',
        'error',
        'tools',
        'tasks'
      ] as const) {
        expect([
          surface,
          chatSurfaces[surface].textContent?.includes(marker(name))
        ]).toEqual([surface, true]);
      }
    }
    // tool names are text too (the call is named by a <script> payload)
    expect(chatSurfaces.tools.textContent).toContain(XSS.payloads['script']);
    expect(chatSurfaces.permission.textContent).toContain(
      XSS.payloads['svg-onload']
    );
    const run = $('permission-kernel-run')!;
    expect(problems(run)).toEqual([]);
    expect(
      run.querySelector('[data-testid=permission-notebook]')?.textContent
    ).toBe(XSS.payloads['script']);
    const code = await until(
      () =>
        run
          .querySelector('[data-testid=permission-code]')
          ?.textContent?.includes(marker(NAMES[NAMES.length - 1]))
          ? run.querySelector('[data-testid=permission-code]')
          : null,
      'the code rendered'
    );
    for (const name of NAMES) {
      // all of it: no summary cuts a run's code short
      expect([name, code.textContent?.includes(marker(name))]).toEqual([
        name,
        true
      ]);
    }

    (await until(() => $('tab-files'), 'the files tab')).click();
    const entry = await until(() => $('file-entry'), 'the hostile file name');
    expect(entry.textContent).toContain(marker('file-name'));
    entry.click(); // no Lab here: the panel's own preview
    const preview = await until(() => $('file-preview'), 'the preview');
    await until(
      () => preview.textContent?.includes(marker('script')),
      'its text'
    );
    expect(problems($('files-dropzone') ?? preview)).toEqual([]);
    for (const name of NAMES) {
      expect(preview.textContent).toContain(marker(name));
    }
    expect(problems(document.body)).toEqual([]);
    expect(
      (window as unknown as Record<string, unknown>)[XSS.flag]
    ).toBeUndefined();
  });
});
