// @vitest-environment jsdom
/**
 * The panel model's new pieces against a fake server: launch options (name, key kept in
 * memory), the custom config editor's errors, purge with confirmation, the files tab
 * (refresh after `done`, open in Lab or preview, downloads) and uploads with the
 * 409 → overwrite flow.
 */

import { describe, expect, it } from 'vitest';

import { Confirmation } from '../src/dialogs';
import { AgentsModel, ModelHooks, parseConfig } from '../src/model';
import { FakeServer, frame, json, sse, stamp } from './fakeserver';
import { FakeXHR } from './xhr';

const TREE = {
  root: '/workspace',
  tree: [
    {
      name: 'data',
      path: 'data',
      type: 'directory',
      size_bytes: 0,
      modified: '2026-11-27T00:00:00+00:00',
      children: [
        {
          name: 'a.csv',
          path: 'data/a.csv',
          type: 'file',
          size_bytes: 8,
          modified: '2026-11-27T00:00:00+00:00'
        }
      ]
    }
  ],
  total_files: 1,
  truncated: false
};

function info(
  id: string,
  extra: { [key: string]: unknown } = {}
): { [key: string]: unknown } {
  return {
    session_id: id,
    name: 'mine',
    state: 'idle',
    config_id: 'code-assistant',
    created_at: new Date().toISOString(),
    usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
    cost_usd: 0.0123,
    resources: { cpu_percent: 3.5, memory_bytes: 220 * 2 ** 20 },
    contents_path: 'agent-workspaces/s1',
    last_seq: 0,
    ...extra
  };
}

function setup(
  options: {
    sessions?: Array<{ [key: string]: unknown }>;
    events?: string[];
    answers?: boolean[];
    hooks?: Partial<ModelHooks>;
  } = {}
): {
  fake: FakeServer;
  model: AgentsModel;
  asked: Confirmation[];
  opened: string[];
  saved: Array<[string, string]>;
} {
  const sessions = options.sessions ?? [info('s1')];
  const answers = [...(options.answers ?? [])];
  const asked: Confirmation[] = [];
  const opened: string[] = [];
  const saved: Array<[string, string]> = [];
  const fake = new FakeServer()
    .on('GET', /agents\/sessions$/, () =>
      json({ sessions, total: sessions.length })
    )
    .on('GET', /agents\/s1\/events$/, () =>
      sse(options.events ?? [': hb\n\n'], 'hang')
    )
    .on('GET', /files\/s1$/, () => json(TREE))
    .on('GET', /files\/s1\/data\/a\.csv$/, request =>
      new URL(request.url).searchParams.get('raw') === '1'
        ? new Response('a,b\n1,2\n', {
            headers: { 'Content-Disposition': 'inline; filename="a.csv"' }
          })
        : json({
            path: 'data/a.csv',
            content: 'a,b\n1,2\n',
            language: 'csv',
            size_bytes: 8,
            lines: 2,
            binary: false
          })
    )
    .on('GET', /files\/s1\/download$/, () => new Response('PK'))
    .on('DELETE', /agents\/sessions\/s1$/, () =>
      json({ session_id: 's1', stopped: true, purged: true })
    );
  const model = new AgentsModel(fake.api(), {
    confirm: async question => {
      asked.push(question);
      return answers.shift() ?? false;
    },
    openInLab: async path => {
      opened.push(path);
    },
    save: async (response, fallback) => {
      saved.push([fallback, await response.text()]);
      return fallback;
    },
    ...options.hooks
  });
  return { fake, model, asked, opened, saved };
}

/** A request's path (ServerConnection adds a cache-busting query). */
function pathOf(request: Request): string {
  return new URL(request.url).pathname;
}

async function until(probe: () => unknown, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!probe()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(r => setTimeout(r, 5));
  }
}

describe('launch options and the custom config', () => {
  it('send the name, the key only when not using the server key, and keep both out of storage', async () => {
    const { fake, model } = setup();
    fake.on('POST', /agents\/launch$/, () =>
      json(
        { session_id: 's1', config_id: 'code-assistant', status: 'ready' },
        201
      )
    );
    model.setLaunchOptions({ name: ' nightly ', apiKey: 'sk-ant-123' });
    await model.launch('code-assistant');
    model.setLaunchOptions({ useServerKey: false });
    model.select(null);
    await model.launch('research-agent');
    const bodies = await Promise.all(
      fake.requests.filter(r => pathOf(r).endsWith('launch')).map(r => r.json())
    );
    expect(bodies).toEqual([
      { config_id: 'code-assistant', name: 'nightly' },
      { config_id: 'research-agent', api_key: 'sk-ant-123' }
    ]);
    // the name is for one launch; the key stays for the page's life, in memory only
    expect(model.launchOptions.name).toBe('');
    expect(model.launchOptions.apiKey).toBe('sk-ant-123');
    expect(JSON.stringify({ ...localStorage })).not.toContain('sk-ant');
    expect(JSON.stringify({ ...sessionStorage })).not.toContain('sk-ant');
    model.dispose();
  });

  it('refuses to launch without a key when the server key is not to be used', async () => {
    const { fake, model } = setup();
    model.setLaunchOptions({ useServerKey: false, apiKey: '  ' });
    expect(await model.launch('code-assistant')).toBeNull();
    expect(model.errors.launch).toMatch(/API key/);
    expect(fake.requests.filter(r => pathOf(r).endsWith('launch'))).toEqual([]);
  });

  it('prefills from a preset, shows bad JSON and the server field, launches {config}', async () => {
    const { fake, model } = setup();
    const preset = { id: 'code-assistant', allowed_tools: ['Bash'] };
    let reply = json(
      {
        message:
          "config.resource_limits.memory: 'lots' is not a size; use a number with k, m, g or t, e.g. '4g'",
        reason: 'Bad Request',
        field: 'config.resource_limits.memory'
      },
      400
    );
    fake
      .on('GET', /configs\/code-assistant$/, () => json(preset))
      .on('POST', /agents\/launch$/, () => reply);
    await model.loadConfigTemplate('code-assistant');
    expect(JSON.parse(model.configText)).toEqual(preset);

    model.setConfigText('{"id": "x",');
    expect(await model.launchCustom()).toBeNull();
    expect(model.configError?.message).toMatch(/^not valid JSON/);
    expect(fake.requests.some(r => pathOf(r).endsWith('launch'))).toBe(false);

    model.setConfigText('{"id": "x", "resource_limits": {"memory": "lots"}}');
    expect(await model.launchCustom()).toBeNull();
    expect(model.configError).toEqual({
      message: expect.stringContaining("'lots' is not a size"),
      field: 'config.resource_limits.memory'
    });

    reply = json({ session_id: 's1', config_id: 'x', status: 'ready' }, 201);
    expect(await model.launchCustom()).toBe('s1');
    expect(model.configError).toBeNull();
    const last = fake.requests.filter(r => pathOf(r).endsWith('launch')).pop()!;
    expect(await last.json()).toEqual({
      config: { id: 'x', resource_limits: { memory: 'lots' } }
    });
    model.dispose();
  });

  it('parseConfig: objects only', () => {
    expect(parseConfig('')).toHaveProperty('error');
    expect(parseConfig('[1]')).toEqual({
      error: 'the config must be a JSON object ({...})'
    });
    expect(parseConfig('{"a": 1}')).toEqual({ config: { a: 1 } });
  });
});

describe('purge', () => {
  it('asks first: no request when declined, DELETE ?purge=true when accepted', async () => {
    const { fake, model, asked } = setup({ answers: [false, true] });
    await model.refreshSessions();
    model.select('s1');
    expect(await model.purge('s1')).toBe(false);
    expect(fake.requests.some(r => r.method === 'DELETE')).toBe(false);
    expect(asked[0]).toMatchObject({ accept: 'Purge', danger: true });
    expect(asked[0].body).toContain('"mine"');
    expect(asked[0].body).toContain('deleted');

    expect(await model.purge('s1')).toBe(true);
    const deletes = fake.requests.filter(r => r.method === 'DELETE');
    expect(deletes.map(r => new URL(r.url).searchParams.get('purge'))).toEqual([
      'true'
    ]);
    expect(model.selected).toBeNull();
    model.dispose();
  });
});

describe('files', () => {
  it('load with the tab, and again after a turn is done', async () => {
    const turn = stamp([
      { type: 'status', state: 'busy', detail: '' },
      { type: 'status', state: 'idle', detail: '' },
      { type: 'done' }
    ]);
    const { fake, model } = setup();
    let release: () => void = () => undefined;
    const gate = new Promise<void>(r => (release = r));
    fake.routes = fake.routes.filter(r => !r.pattern.test('agents/s1/events'));
    fake.on('GET', /agents\/s1\/events$/, async () => {
      await gate;
      return sse(turn.map(frame), 'hang');
    });
    const treeGets = (): number =>
      fake.requests.filter(r => /files\/s1$/.test(pathOf(r))).length;
    await model.refreshSessions();
    model.select('s1');
    model.current!.setTab('files');
    await until(() => model.current!.files.tree !== null, 'the tree');
    expect(model.current!.files.tree?.total_files).toBe(1);
    expect(treeGets()).toBe(1);
    release();
    await until(() => treeGets() === 2, 'a refresh after done');
    model.dispose();
  });

  it('open in JupyterLab at contents_path/path, else the preview in the panel', async () => {
    const { model, opened } = setup({
      sessions: [info('s1'), info('s2', { contents_path: null })]
    });
    await model.refreshSessions();
    model.select('s1');
    await model.current!.files.openFile('data/a.csv');
    expect(opened).toEqual(['agent-workspaces/s1/data/a.csv']);
    expect(model.current!.files.preview).toBeNull();

    // outside the Jupyter tree (or no document manager): the server's preview
    model.hooks.openInLab = null;
    await model.current!.files.openFile('data/a.csv');
    expect(model.current!.files.preview).toMatchObject({
      path: 'data/a.csv',
      language: 'csv',
      content: 'a,b\n1,2\n'
    });
    model.current!.files.closePreview();
    expect(model.current!.files.preview).toBeNull();
    model.dispose();
  });

  it('download one file (raw bytes) and the workspace ZIP', async () => {
    const { fake, model, saved } = setup();
    model.select('s1');
    await model.current!.files.downloadFile('data/a.csv');
    await model.current!.files.downloadWorkspace();
    expect(saved).toEqual([
      ['a.csv', 'a,b\n1,2\n'],
      ['s1-workspace.zip', 'PK']
    ]);
    const raw = fake.requests.find(r => r.url.includes('a.csv'))!;
    expect(new URL(raw.url).searchParams.get('raw')).toBe('1');
    model.dispose();
  });
});

describe('upload', () => {
  const CONFLICT = {
    message: "'data/a.csv' already exists; pass overwrite=true to replace it",
    reason: 'Conflict',
    field: 'files'
  };

  function uploader(answers: boolean[]): {
    model: AgentsModel;
    asked: Confirmation[];
    xhrs: FakeXHR[];
    fake: FakeServer;
  } {
    const xhrs: FakeXHR[] = [];
    const { model, asked, fake } = setup({
      answers,
      hooks: {
        createXHR: () => {
          const xhr = new FakeXHR();
          xhrs.push(xhr);
          // the first upload finds the file there; a retry with overwrite succeeds
          xhr.autoRespond = x => {
            x.progress(10, 20);
            if (x.url.includes('overwrite=true')) {
              x.progress(20, 20);
              x.respond(200, {
                uploaded: [{ filename: 'a.csv', path: 'data/a.csv' }]
              });
            } else {
              x.respond(409, CONFLICT, 'Conflict');
            }
          };
          return xhr;
        }
      }
    });
    model.select('s1');
    return { model, asked, xhrs, fake };
  }

  it('409: asks to overwrite, sends again with overwrite=true, refreshes the tree', async () => {
    const { model, asked, xhrs, fake } = uploader([true]);
    const file = new File(['a,b\n'], 'a.csv');
    const result = await model.current!.files.upload([file], 'data');
    expect(result?.state).toBe('done');
    expect(xhrs.map(x => new URL(x.url).search)).toEqual([
      '?target_path=data&overwrite=false',
      '?target_path=data&overwrite=true'
    ]);
    expect(xhrs[1].parts()).toEqual([['files', 'a.csv']]);
    expect(asked).toHaveLength(1);
    expect(asked[0].title).toBe('Overwrite?');
    expect(asked[0].body).toContain("'data/a.csv' already exists");
    expect(asked[0].body).not.toContain('pass overwrite=true');
    expect(model.current!.files.uploads).toEqual([
      expect.objectContaining({ state: 'done', names: ['a.csv'] })
    ]);
    expect(fake.requests.some(r => /files\/s1$/.test(pathOf(r)))).toBe(true);
    model.dispose();
  });

  it('409 declined: nothing sent again, the upload says so', async () => {
    const { model, xhrs } = uploader([false]);
    const result = await model.current!.files.upload(
      [new File(['x'], 'a.csv')],
      'data'
    );
    expect(xhrs).toHaveLength(1);
    expect(result).toMatchObject({
      state: 'cancelled',
      error: 'not overwritten'
    });
    model.dispose();
  });

  it('shows progress while sending; other errors end it; cancel aborts', async () => {
    const xhrs: FakeXHR[] = [];
    const { model } = setup({
      hooks: {
        createXHR: () => {
          const xhr = new FakeXHR();
          xhrs.push(xhr);
          return xhr;
        }
      }
    });
    model.select('s1');
    const first = model.current!.files.upload([new File(['12345'], 'big.bin')]);
    await until(() => xhrs.length === 1, 'the request');
    xhrs[0].progress(300, 1000);
    expect(model.current!.files.uploads[0]).toMatchObject({
      state: 'uploading',
      loaded: 300,
      total: 1000
    });
    xhrs[0].respond(413, { message: 'too large', reason: 'Payload Too Large' });
    expect(await first).toMatchObject({ state: 'error', error: 'too large' });

    const second = model.current!.files.upload([new File(['1'], 'c.txt')]);
    await until(() => xhrs.length === 2, 'the second request');
    // the finished one made room for it
    expect(model.current!.files.uploads.map(u => u.names[0])).toEqual([
      'c.txt'
    ]);
    model.current!.files.dismissUpload(model.current!.files.uploads[0].id);
    expect(await second).toMatchObject({ state: 'cancelled' });
    expect(xhrs[1].aborted).toBe(true);
    model.current!.files.dismissUpload(model.current!.files.uploads[0].id);
    expect(model.current!.files.uploads).toEqual([]);
    model.dispose();
  });
});

describe('sessions that leave the list', () => {
  it('are announced once (purged elsewhere); the side panel lets go of its own', async () => {
    const sessions = [info('s1'), info('s2')];
    const { fake, model } = setup({ sessions });
    const removed: string[] = [];
    model.removed.connect((_, id) => removed.push(id));
    await model.refreshSessions();
    model.select('s1');
    expect(model.selected).toBe('s1');
    // purged by someone else: gone from the next list
    sessions.splice(0, 1);
    await model.refreshSessions();
    await model.refreshSessions();
    expect(removed).toEqual(['s1']);
    expect(model.selected).toBeNull();
    // a list that fails says nothing about them
    fake.routes = fake.routes.filter(r => !r.pattern.test('agents/sessions'));
    await model.refreshSessions();
    expect(removed).toEqual(['s1']);
    model.dispose();
  });
});
