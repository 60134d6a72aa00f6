// @vitest-environment jsdom
/**
 * The panel's DOM in jsdom against a fake server: demo label, preset cards, sessions,
 * launching, and the composer (Enter sends, Shift+Enter does not).
 */

import { Widget } from '@lumino/widgets';
import { afterEach, describe, expect, it } from 'vitest';

import { AgentsModel } from '../src/model';
import { AgentsPanel } from '../src/panel';
import { DEFAULT_SETTINGS } from '../src/settings';
import { FakeServer, frame, json, sse, stamp } from './fakeserver';

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
    resource_limits: { cpu: 2, memory: '4g', storage: '10g' }
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

async function until<T>(
  probe: () => T | null | undefined | false,
  what: string
): Promise<T> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const value = probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}: ${document.body.innerHTML.slice(0, 2000)}`
      );
    }
    await new Promise(r => setTimeout(r, 10));
  }
}

function type(area: HTMLTextAreaElement, text: string): void {
  const setter = Object.getOwnPropertyDescriptor(
    HTMLTextAreaElement.prototype,
    'value'
  )!.set!;
  setter.call(area, text);
  area.dispatchEvent(new Event('input', { bubbles: true }));
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
    expect(cards[0].textContent).toContain('4g memory');
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
      () => model.view.turns === 0 && model.view.lastSeq === 9,
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
