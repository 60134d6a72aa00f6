// @vitest-environment jsdom
/**
 * The panel's DOM in jsdom against a fake server: demo label, preset cards, sessions,
 * launching, and the composer (Enter sends, Shift+Enter does not); session rows with cost
 * and resources, purge through JupyterLab's own dialog, the custom config editor's error
 * next to it, the Files tab (tree entries, open, fold) and an upload's progress bar.
 * Selectors are mostly the data-testid names the browser tests use.
 */

import { Widget } from '@lumino/widgets';
import { afterEach, describe, expect, it } from 'vitest';

import { AgentsModel } from '../src/model';
import { AgentsPanel } from '../src/panel';
import { DEFAULT_SETTINGS } from '../src/settings';
import { $, $$, type, until } from './dom';
import { FakeServer, frame, json, sse, stamp } from './fakeserver';
import { FakeXHR } from './xhr';

const CONFIGS = [
  {
    id: 'research-agent',
    name: 'Research Agent',
    description: 'Reads and summarises',
    allowed_tools: ['Read', 'WebSearch'],
    permission_mode: 'default',
    has_mcp_servers: false,
    has_sub_agents: false,
    resource_limits: { cpu: 1, memory: '2g' }
  },
  {
    id: 'code-assistant',
    name: 'Code Assistant',
    description: 'Writes code',
    allowed_tools: ['Bash', 'Write'],
    permission_mode: 'acceptEdits',
    has_mcp_servers: false,
    has_sub_agents: true,
    resource_limits: { cpu: 2, memory: '4g', storage: '10g' },
    system_prompt: 'You are a careful <coder>.'
  }
];

function session(id: string, state = 'idle'): { [key: string]: unknown } {
  return {
    session_id: id,
    name: '',
    state,
    config_id: 'code-assistant',
    created_at: new Date(Date.now() - 120_000).toISOString(),
    usage: { input_tokens: 1000, output_tokens: 234, total_tokens: 1234 },
    last_seq: 0
  };
}

const TURN = stamp([
  { type: 'status', state: 'busy', detail: '' },
  { type: 'message', role: 'user', text: 'hello' },
  { type: 'text_delta', text: 'Hi ' },
  { type: 'text_delta', text: 'there' },
  { type: 'message', role: 'assistant', text: 'Hi there!' },
  {
    type: 'tool_use',
    tool_use_id: 't1',
    name: 'Bash',
    input: { command: 'ls' }
  },
  { type: 'tool_result', tool_use_id: 't1', is_error: false, output: 'a.txt' },
  { type: 'status', state: 'idle', detail: '' },
  { type: 'done' }
]);

function server(): FakeServer {
  const sessions = [session('s0')];
  return new FakeServer()
    .on('GET', /health$/, () =>
      json({
        status: 'ok',
        provider: 'local',
        provider_ok: true,
        isolated: false,
        demo_mode: true
      })
    )
    .on('GET', /configs\/$/, () => json({ configs: CONFIGS, total: 2 }))
    .on('GET', /agents\/sessions$/, () =>
      json({ sessions, total: sessions.length })
    )
    .on('POST', /agents\/launch$/, () => {
      sessions.push(session('s1', 'ready'));
      return json(
        { session_id: 's1', config_id: 'code-assistant', status: 'ready' },
        201
      );
    })
    .on('GET', /agents\/sessions\/s1$/, () => json(session('s1')))
    .on('GET', /agents\/s1\/events$/, () => sse([': heartbeat\n\n'], 'hang'))
    .on('POST', /agents\/s1\/chat$/, () => sse(TURN.map(frame)));
}

function key(area: HTMLTextAreaElement, shiftKey: boolean): void {
  area.dispatchEvent(
    new KeyboardEvent('keydown', {
      key: 'Enter',
      shiftKey,
      bubbles: true,
      cancelable: true
    })
  );
}

describe('AgentsPanel', () => {
  let panel: AgentsPanel | null = null;
  afterEach(() => {
    panel?.dispose();
    panel = null;
  });

  it('shows demo mode, presets and sessions; launches; Enter sends a turn', async () => {
    const fake = server();
    const model = new AgentsModel(fake.api());
    panel = new AgentsPanel({
      rendermime: null,
      settings: DEFAULT_SETTINGS,
      model
    });
    Widget.attach(panel, document.body);
    panel.show();

    await until(
      () => document.querySelector('[data-testid="demo-mode"]'),
      'the demo label'
    );
    expect(
      document.querySelector('[data-testid="demo-mode"]')?.textContent
    ).toBe('Demo model: replies are scripted');
    expect(document.body.textContent).toContain('No isolation');
    const cards = await until(() => {
      const found = document.querySelectorAll('.jp-AgentsPanel-card');
      return found.length === 2 && found;
    }, 'two preset cards');
    // the default preset (settings) comes first
    expect((cards[0] as HTMLElement).dataset.configId).toBe('code-assistant');
    expect($$('preset-card')).toHaveLength(2);
    expect($('preset-launch', cards[0])?.textContent).toBe('Launch');
    expect(cards[0].textContent).toContain('4g memory');
    // the prompt is there, folded, as text (not HTML); a preset without one shows none
    const prompt = $('preset-prompt', cards[0]) as HTMLDetailsElement;
    expect(prompt.open).toBe(false);
    expect(prompt.textContent).toContain('You are a careful <coder>.');
    expect(prompt.querySelector('coder')).toBeNull();
    expect($('preset-prompt', cards[1])).toBeNull();
    const row = await until(
      () => document.querySelector('[data-session-id="s0"]'),
      'session s0'
    );
    expect(row.textContent).toContain('1.2k tokens');
    expect(row.textContent).toContain('2 min');

    (cards[0].querySelector('button') as HTMLButtonElement).click();
    const area = await until(
      () =>
        document.querySelector<HTMLTextAreaElement>('.jp-AgentsPanel-input'),
      'the chat of the launched session'
    );
    expect(model.selected).toBe('s1');
    const launch = fake.requests.find(
      r => r.method === 'POST' && r.url.includes('launch')
    )!;
    expect(await launch.json()).toEqual({ config_id: 'code-assistant' });

    type(area, 'hello');
    key(area, true); // Shift+Enter: a new line, not a message
    await new Promise(r => setTimeout(r, 50));
    expect(fake.requests.filter(r => r.url.includes('/chat'))).toHaveLength(0);

    key(area, false);
    await until(
      () =>
        model.current!.view.turns === 0 && model.current!.view.lastSeq === 9,
      'the whole turn'
    );
    const chat = fake.requests.filter(r => r.url.includes('/chat'));
    expect(chat).toHaveLength(1);
    expect(await chat[0].json()).toEqual({ message: 'hello' });
    await until(
      () => document.querySelectorAll('.jp-AgentsPanel-entry').length === 2,
      'two chat entries'
    );
    const entries = [...document.querySelectorAll('.jp-AgentsPanel-entry')].map(
      e => e.textContent
    );
    expect(entries).toEqual(['hello', 'Hi there!']);
    expect(
      document.querySelector('.jp-AgentsPanel-call-ok')?.textContent
    ).toContain('Bash');
    // the names the browser tests use
    expect($$('preset-card').map(c => c.dataset.configId)).toEqual([]);
    expect($('chat-input')).toBe(area);
    expect($$('message-user').map(e => e.textContent)).toEqual(['hello']);
    const reply = $$('message-assistant');
    expect(reply.map(e => [e.textContent, e.dataset.streaming])).toEqual([
      ['Hi there!', 'false']
    ]);
    const call = $('tool-call')!;
    expect([call.dataset.toolName, call.dataset.status]).toEqual([
      'Bash',
      'ok'
    ]);
    expect($('session-pane')?.dataset.sessionId).toBe('s1');
    expect(area.value).toBe('');
  });
});

describe('Markdown', () => {
  it('renders through rendermime, sanitized, ending on the latest streamed text', async () => {
    const { RenderMimeRegistry, standardRendererFactories } =
      await import('@jupyterlab/rendermime');
    const { Markdown } = await import('../src/markdown');
    const { ReactWidget } = await import('@jupyterlab/ui-components');
    const React = await import('react');
    const rendermime = new RenderMimeRegistry({
      initialFactories: standardRendererFactories,
      markdownParser: {
        render: async (source: string) =>
          `<p>${source}</p><script>bad()</script>`
      }
    });
    class Host extends ReactWidget {
      text = 'Hello';
      protected render(): JSX.Element {
        return React.createElement(Markdown, { text: this.text, rendermime });
      }
    }
    const widget = new Host();
    Widget.attach(widget, document.body);
    for (const more of [' wor', 'ld', '!']) {
      widget.text += more;
      widget.update();
      await new Promise(r => setTimeout(r, 1));
    }
    const rendered = await until(() => {
      const node = document.querySelector(
        '.jp-AgentsPanel-markdown .jp-RenderedMarkdown'
      );
      return node?.textContent === 'Hello world!' && node;
    }, 'the latest text rendered');
    expect(rendered.innerHTML).not.toContain('<script');
    widget.dispose();
  });
});

const CONFIG_CA = {
  id: 'code-assistant',
  name: 'Code Assistant',
  description: 'Writes code',
  allowed_tools: ['Bash'],
  permission_mode: 'acceptEdits',
  has_mcp_servers: false,
  has_sub_agents: false,
  resource_limits: { cpu: 2, memory: '4g' }
};

const SESSION_S1 = {
  session_id: 's1',
  name: 'nightly',
  state: 'idle',
  config_id: 'code-assistant',
  created_at: new Date(Date.now() - 3_600_000).toISOString(),
  usage: { input_tokens: 9030, output_tokens: 46, total_tokens: 9076 },
  cost_usd: 0.03704,
  resources: {
    cpu_percent: 12.4,
    memory_bytes: 231124992,
    memory_limit_bytes: 4294967296,
    pids: 14
  },
  contents_path: 'agent-workspaces/s1',
  last_seq: 0
};

const TREE_S1 = {
  root: '/workspace',
  tree: [
    {
      name: 'src',
      path: 'src',
      type: 'directory',
      size_bytes: 0,
      modified: '',
      children: [
        {
          name: 'fib.py',
          path: 'src/fib.py',
          type: 'file',
          size_bytes: 120,
          modified: ''
        }
      ]
    },
    {
      name: 'README.md',
      path: 'README.md',
      type: 'file',
      size_bytes: 2048,
      modified: ''
    }
  ],
  total_files: 2
};

function serverS1(): FakeServer {
  let sessions = [SESSION_S1];
  return new FakeServer()
    .on('GET', /health$/, () =>
      json({
        status: 'ok',
        provider: 'docker',
        provider_ok: true,
        isolated: true
      })
    )
    .on('GET', /configs\/$/, () => json({ configs: [CONFIG_CA], total: 1 }))
    .on('GET', /configs\/code-assistant$/, () => json({ id: 'code-assistant' }))
    .on('GET', /agents\/sessions$/, () =>
      json({ sessions, total: sessions.length })
    )
    .on('DELETE', /agents\/sessions\/s1$/, () => {
      sessions = [];
      return json({ session_id: 's1', stopped: true, purged: true });
    })
    .on('POST', /agents\/launch$/, () =>
      json(
        {
          message: "config.max_turns: must be a positive integer, not 'many'",
          reason: 'Bad Request',
          field: 'config.max_turns'
        },
        400
      )
    )
    .on('GET', /agents\/s1\/events$/, () => sse([': hb\n\n'], 'hang'))
    .on('GET', /files\/s1$/, () => json(TREE_S1));
}

describe('AgentsPanel (sessions, config editor, files)', () => {
  let panel: AgentsPanel | null = null;
  afterEach(() => {
    panel?.dispose();
    panel = null;
    document.body.innerHTML = '';
  });

  function open(model: AgentsModel): void {
    panel = new AgentsPanel({
      rendermime: null,
      settings: DEFAULT_SETTINGS,
      model
    });
    Widget.attach(panel, document.body);
    panel.show();
  }

  it('a session row shows state, preset, age, tokens, cost, CPU, memory; Purge asks in a dialog', async () => {
    const fake = serverS1();
    open(new AgentsModel(fake.api()));
    const row = await until(() => $('session-row'), 'the session row');
    expect(row.dataset.sessionId).toBe('s1');
    expect(row.dataset.state).toBe('idle');
    expect($('session-state', row)?.textContent).toBe('idle');
    expect($('session-cost', row)?.textContent).toBe(
      'Code Assistant · 1 h · 9.1k tokens · $0.04'
    );
    expect($('session-resources', row)?.textContent).toBe(
      '12% CPU · 220 MB / 4.0 GB'
    );
    expect($('session-stop', row)).not.toBeNull();

    // Purge: JupyterLab's dialog; Cancel sends nothing
    $('session-purge', row)!.click();
    let dialog = await until(
      () => document.querySelector('.jp-Dialog'),
      'the dialog'
    );
    expect(dialog.textContent).toContain('Purge the session?');
    expect(dialog.textContent).toContain('"nightly"');
    (dialog.querySelector('.jp-mod-reject') as HTMLButtonElement).click();
    await until(
      () => !document.querySelector('.jp-Dialog'),
      'the dialog closed'
    );
    expect(fake.requests.some(r => r.method === 'DELETE')).toBe(false);

    $('session-purge', row)!.click();
    dialog = await until(
      () => document.querySelector('.jp-Dialog'),
      'the dialog'
    );
    (dialog.querySelector('.jp-mod-warn') as HTMLButtonElement).click();
    await until(() => $$('session-row').length === 0, 'the row gone');
    const del = fake.requests.find(r => r.method === 'DELETE')!;
    expect(new URL(del.url).searchParams.get('purge')).toBe('true');
  });

  it("the custom config editor shows the server's message and field next to it", async () => {
    const fake = serverS1();
    open(new AgentsModel(fake.api()));
    const section = await until(
      () => $('section-custom-config'),
      'the section'
    );
    expect(section.dataset.open).toBe('false');
    section.click();
    const template = await until(
      () => $('config-template') as HTMLSelectElement | null,
      'the preset select'
    );
    await until(() => template.options.length === 2, 'the presets in it');
    template.value = 'code-assistant';
    template.dispatchEvent(new Event('change', { bubbles: true }));
    const editor = $('config-editor') as HTMLTextAreaElement;
    await until(() => editor.value.includes('"code-assistant"'), 'the prefill');

    type(editor, '{"id": "x", "max_turns": "many"}');
    $('config-launch')!.click();
    const error = await until(() => $('config-error'), 'the error');
    expect(error.dataset.field).toBe('config.max_turns');
    expect($('config-error-field', error)?.textContent).toBe(
      'config.max_turns'
    );
    expect(error.textContent).toContain('must be a positive integer');
    // the field once: the message names it, and that mention is the marked field
    expect(error.textContent).toBe(
      "config.max_turns: must be a positive integer, not 'many'"
    );
    expect($$('config-error-field', error)).toHaveLength(1);
    expect(editor.getAttribute('aria-invalid')).toBe('true');
    // right under the editor
    expect(editor.nextElementSibling).toBe(error);

    type(editor, 'not json');
    $('config-launch')!.click();
    await until(
      () => $('config-error')?.textContent?.includes('not valid JSON'),
      'the JSON error'
    );
  });

  it('the API key field appears only without the server key, as a password field', async () => {
    const fake = serverS1();
    const model = new AgentsModel(fake.api());
    open(model);
    const check = await until(
      () => $('launch-use-server-key') as HTMLInputElement | null,
      'the checkbox'
    );
    expect(check.checked).toBe(true);
    expect($('launch-api-key')).toBeNull();
    check.click();
    const key = await until(
      () => $('launch-api-key') as HTMLInputElement | null,
      'the key field'
    );
    expect(key.type).toBe('password');
    type(key, 'sk-ant-secret');
    expect(model.launchOptions.apiKey).toBe('sk-ant-secret');
    type($('launch-name') as HTMLInputElement, 'run 1');
    expect(model.launchOptions.name).toBe('run 1');
  });

  it('the Files tab: entries with path and type, a file opens in Lab, a folder folds; upload shows progress', async () => {
    const fake = serverS1();
    const opened: string[] = [];
    const xhrs: FakeXHR[] = [];
    const model = new AgentsModel(fake.api(), {
      openInLab: async path => {
        opened.push(path);
      },
      createXHR: () => {
        const xhr = new FakeXHR();
        xhrs.push(xhr);
        return xhr;
      }
    });
    open(model);
    (await until(() => $('session-row'), 'the row')).click();
    (await until(() => $('tab-files'), 'the files tab')).click();
    await until(() => $$('file-entry').length === 3, 'three entries');
    expect($('tab-files')?.getAttribute('aria-selected')).toBe('true');
    expect($('files-total')?.textContent).toBe('2 files');
    expect($$('file-entry').map(e => [e.dataset.path, e.dataset.type])).toEqual(
      [
        ['src', 'directory'],
        ['src/fib.py', 'file'],
        ['README.md', 'file']
      ]
    );

    $$('file-entry')[1].click();
    await until(() => opened.length === 1, 'the file opened');
    expect(opened).toEqual(['agent-workspaces/s1/src/fib.py']);

    $$('file-entry')[0].click(); // fold src
    await until(() => $$('file-entry').length === 2, 'src folded');

    // the file picker: an upload with a progress bar
    const input = $('upload-input') as HTMLInputElement;
    const file = new File(['x'.repeat(100)], 'notes.txt');
    Object.defineProperty(input, 'files', {
      value: [file],
      configurable: true
    });
    input.dispatchEvent(new Event('change', { bubbles: true }));
    await until(() => xhrs.length === 1, 'the upload request');
    xhrs[0].progress(40, 160);
    const progress = await until(
      () =>
        $('upload-progress')
          ?.querySelector('[role="progressbar"]')
          ?.getAttribute('aria-valuenow') === '25' && $('upload-progress'),
      'the progress at 25%'
    );
    expect(progress.dataset.state).toBe('uploading');
    expect(progress.textContent).toContain('notes.txt');
    xhrs[0].respond(200, {
      uploaded: [{ filename: 'notes.txt', path: 'notes.txt' }]
    });
    await until(() => $('upload-progress')?.dataset.state === 'done', 'done');
    expect(xhrs[0].parts()).toEqual([['files', 'notes.txt']]);
  });
});

// -- sessions told apart, and a session in a main-area tab ----------------------------------

const S_NAMED = 'a1b2c3d4-0000-4000-8000-000000000001';
const S_PLAIN = 'e5f6a7b8-0000-4000-8000-000000000002';

function twoSessions(): { [key: string]: unknown }[] {
  return [
    {
      ...session(S_NAMED),
      name: 'nightly <b>report</b>',
      first_prompt: 'summarise <script>the</script> logs',
      notebook: 'reports/weekly.ipynb',
      created_at: new Date(Date.now() - 3_600_000).toISOString()
    },
    {
      ...session(S_PLAIN),
      first_prompt: 'fix the failing test',
      notebook: '',
      created_at: new Date(Date.now() - 300_000).toISOString()
    }
  ];
}

function serverTwo(): FakeServer {
  let sessions = twoSessions();
  return new FakeServer()
    .on('GET', /health$/, () =>
      json({ status: 'ok', provider: 'local', provider_ok: true })
    )
    .on('GET', /configs\/$/, () => json({ configs: CONFIGS, total: 2 }))
    .on('GET', /agents\/sessions$/, () =>
      json({ sessions, total: sessions.length })
    )
    .on('DELETE', /agents\/sessions\/[^/]+$/, request => {
      const id = new URL(request.url).pathname.split('/').pop();
      sessions = sessions.filter(s => s.session_id !== id);
      return json({ session_id: id, stopped: true, purged: true });
    })
    .on('GET', /agents\/[^/]+\/events$/, () => sse([': hb\n\n'], 'hang'))
    .on('POST', /agents\/[^/]+\/chat$/, () =>
      sse(
        stamp([
          { type: 'message', role: 'user', text: 'hello' },
          { type: 'message', role: 'assistant', text: 'Hi from the tab' },
          { type: 'done' }
        ]).map(frame)
      )
    );
}

describe('sessions told apart; a session in a tab', () => {
  const widgets: Widget[] = [];
  afterEach(() => {
    for (const widget of widgets.splice(0)) {
      widget.dispose();
    }
    document.body.innerHTML = '';
  });

  it('a row shows the name or preset, the start of the id, the first prompt, the notebook and the age', async () => {
    const opened: string[] = [];
    const tabs: string[] = [];
    const model = new AgentsModel(serverTwo().api(), {
      openInLab: async path => {
        opened.push(path);
      }
    });
    const panel = new AgentsPanel({
      rendermime: null,
      settings: DEFAULT_SETTINGS,
      model,
      actions: { openTab: id => tabs.push(id) }
    });
    widgets.push(panel);
    Widget.attach(panel, document.body);
    panel.show();
    await until(() => $$('session-row').length === 2, 'two rows');
    // newest first
    expect($$('session-row').map(r => r.dataset.sessionId)).toEqual([
      S_PLAIN,
      S_NAMED
    ]);

    const row = (id: string): HTMLElement =>
      document.querySelector<HTMLElement>(
        `[data-testid="session-row"][data-session-id="${id}"]`
      )!;
    const a = row(S_NAMED);
    expect($('session-name', a)?.textContent).toBe('nightly <b>report</b>');
    expect(a.querySelector('b, script')).toBeNull(); // text, never markup
    expect($('session-short-id', a)?.textContent).toBe('a1b2c3d4');
    expect($('session-short-id', a)?.title).toBe(S_NAMED);
    expect($('session-first-prompt', a)?.textContent).toBe(
      'summarise <script>the</script> logs'
    );
    expect($('session-notebook', a)?.textContent).toBe('reports/weekly.ipynb');
    expect($('session-cost', a)?.textContent).toBe(
      'Code Assistant · 1 h · 1.2k tokens · $0.00'
    );

    const b = row(S_PLAIN);
    // no name: the preset's name; its first prompt and age tell it apart
    expect($('session-name', b)?.textContent).toBe('Code Assistant');
    expect($('session-short-id', b)?.textContent).toBe('e5f6a7b8');
    expect($('session-first-prompt', b)?.textContent).toBe(
      'fix the failing test'
    );
    expect($('session-notebook', b)).toBeNull();
    expect($('session-cost', b)?.textContent).toBe(
      '5 min · 1.2k tokens · $0.00'
    );

    // the notebook opens in Lab, the tab button asks for a tab: neither opens the chat
    $('session-notebook', a)!.click();
    await until(() => opened.length === 1, 'the notebook opened');
    expect(opened).toEqual(['reports/weekly.ipynb']);
    $('session-open-tab', b)!.click();
    expect(tabs).toEqual([S_PLAIN]);
    expect(model.selected).toBeNull();

    // the open session's header has the button too
    b.click();
    const pane = await until(() => $('session-pane'), 'the session pane');
    expect(pane.dataset.placement).toBe('side');
    $('session-open-tab', pane)!.click();
    expect(tabs).toEqual([S_PLAIN, S_PLAIN]);
  });

  it('a field the message does not name comes first, once', async () => {
    const model = new AgentsModel(serverTwo().api());
    const panel = new AgentsPanel({
      rendermime: null,
      settings: DEFAULT_SETTINGS,
      model
    });
    widgets.push(panel);
    Widget.attach(panel, document.body);
    panel.show();
    (await until(() => $('section-custom-config'), 'the section')).click();
    model.setLaunchOptions({ useServerKey: false, apiKey: '' });
    type(
      await until(
        () => $('config-editor') as HTMLTextAreaElement,
        'the editor'
      ),
      '{"id": "x"}'
    );
    const launch = await until(
      () =>
        !($('config-launch') as HTMLButtonElement).disabled &&
        $('config-launch'),
      'the launch button enabled'
    );
    launch.click();
    const error = await until(() => $('config-error'), 'the error');
    expect(error.dataset.field).toBe('api_key');
    expect(error.textContent).toBe(
      "api_key: enter an API key, or use the server's key"
    );
    expect($$('config-error-field', error).map(e => e.textContent)).toEqual([
      'api_key'
    ]);
  });

  it('without a way to open tabs (Notebook 7), no tab buttons', async () => {
    const model = new AgentsModel(serverTwo().api());
    const panel = new AgentsPanel({
      rendermime: null,
      settings: DEFAULT_SETTINGS,
      model
    });
    widgets.push(panel);
    Widget.attach(panel, document.body);
    panel.show();
    await until(() => $$('session-row').length === 2, 'two rows');
    expect($$('session-open-tab')).toEqual([]);
  });

  it('a tab follows its session apart from the side panel, is titled, chats, and closes when purged', async () => {
    const { AgentSessionTab } = await import('../src/sessiontab');
    const fake = serverTwo();
    const model = new AgentsModel(fake.api(), { confirm: async () => true });
    await model.refresh();
    model.select(S_NAMED); // the side panel's session
    const tab = new AgentSessionTab({
      agents: model,
      sessionId: S_PLAIN,
      rendermime: null
    });
    widgets.push(tab);
    Widget.attach(tab, document.body);
    expect(tab.title.label).toBe('Code Assistant · e5f6a7b8');
    expect(tab.title.caption).toContain('fix the failing test');
    expect(tab.title.closable).toBe(true);
    const pane = await until(() => $('session-pane', tab.node), 'its pane');
    expect(pane.dataset.sessionId).toBe(S_PLAIN);
    expect(pane.dataset.placement).toBe('tab');
    expect($('session-back', tab.node)).toBeNull();
    expect($('session-open-tab', tab.node)).toBeNull();
    expect($('session-title', tab.node)?.textContent).toBe('Code Assistant');
    expect($('session-usage', tab.node)?.textContent).toContain('e5f6a7b8');

    const area = $('chat-input', tab.node) as HTMLTextAreaElement;
    type(area, 'hello');
    key(area, false);
    await until(
      () =>
        $$('message-assistant', tab.node).some(
          e => e.textContent === 'Hi from the tab'
        ),
      'the reply in the tab'
    );
    const chats = fake.requests.filter(r => r.url.includes('/chat'));
    expect(chats.map(r => new URL(r.url).pathname)).toEqual([
      expect.stringContaining(`agents/${S_PLAIN}/chat`)
    ]);
    // the side panel's session is another one, untouched
    expect(model.selected).toBe(S_NAMED);
    expect(model.current?.view.entries).toEqual([]);

    // purged (from the side panel's list): the tab closes and stops following
    expect(await model.purge(S_PLAIN)).toBe(true);
    await until(() => tab.isDisposed, 'the tab closed');
    expect(tab.session.isDisposed).toBe(true);
    expect(model.selected).toBe(S_NAMED);
  });
});
