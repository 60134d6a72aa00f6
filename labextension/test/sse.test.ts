import { describe, expect, it } from 'vitest';

import { ApiError } from '../src/api';
import { AgentEvent } from '../src/events';
import {
  ConnectionState,
  EventFollower,
  SSEItem,
  SSEParser,
  readSSE,
  streamTurn
} from '../src/sse';
import {
  BASE_URL,
  FakeServer,
  TOKEN,
  frame,
  json,
  sse,
  stamp
} from './fakeserver';

function frames(items: SSEItem[]): Array<[string | null, string, string]> {
  return items.flatMap(i =>
    i.kind === 'frame' ? [[i.frame.id, i.frame.event, i.frame.data]] : []
  );
}

const TEXT =
  ': heartbeat\n\n' +
  'id: 1\nevent: status\ndata: {"a":1}\n\n' +
  'id: 2\r\nevent: message\r\ndata: line one\r\ndata: line two\r\n\r\n' +
  'data:no space\rid: 3\r\r' +
  'id: 4\nevent: done\ndata: {}\n';

describe('SSEParser', () => {
  const expected = [
    ['1', 'status', '{"a":1}'],
    ['2', 'message', 'line one\nline two'],
    ['3', 'message', 'no space']
  ];

  it('parses frames, CRLF/CR line ends, multi-line data and comments', () => {
    const parser = new SSEParser();
    const items = parser.feed(TEXT);
    expect(frames(items)).toEqual(expected);
    expect(items[0]).toEqual({ kind: 'comment', text: 'heartbeat' });
    // the last frame has no blank line: incomplete, dropped at the end of the stream
    expect(parser.end()).toEqual([]);
  });

  it('gives the same frames whatever the chunking (one character at a time)', () => {
    const parser = new SSEParser();
    const items: SSEItem[] = [];
    for (const ch of TEXT) {
      items.push(...parser.feed(ch));
    }
    items.push(...parser.end());
    expect(frames(items)).toEqual(expected);
  });
});

describe('readSSE', () => {
  it('decodes UTF-8 split across chunks and stops when asked', async () => {
    const bytes = new TextEncoder().encode(
      'data: h\u00e9llo \u{1F600}\n\ndata: second\n\n'
    );
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const b of bytes) {
          controller.enqueue(new Uint8Array([b]));
        }
        controller.close();
      }
    });
    const seen: string[] = [];
    const stopped = await readSSE(new Response(body), item => {
      if (item.kind === 'frame') {
        seen.push(item.frame.data);
      }
      return true;
    });
    expect(stopped).toBe(true);
    expect(seen).toEqual(['h\u00e9llo \u{1F600}']);
  });

  it('counts a silent stream as dropped', async () => {
    await expect(
      readSSE(sse([': hb\n\n'], 'hang'), () => false, { idleTimeoutMs: 50 })
    ).rejects.toThrow(/no data/);
  });
});

describe('AgClusterAPI', () => {
  it('sends the token under the base URL and surfaces the server message', async () => {
    const server = new FakeServer()
      .on('GET', /^api\/agcluster\/health$/, () =>
        json({ status: 'ok', demo_mode: true })
      )
      .on('POST', /^api\/agcluster\/agents\/launch$/, () =>
        json(
          {
            message: "config.resource_limits.memory: 'lots' is not a size",
            reason: 'Bad Request',
            field: 'config.resource_limits.memory'
          },
          400
        )
      );
    const api = server.api();
    expect((await api.health()).demo_mode).toBe(true);
    const request = server.requests[0];
    expect(request.url.startsWith(`${BASE_URL}api/agcluster/health`)).toBe(
      true
    );
    expect(request.headers.get('Authorization')).toBe(`token ${TOKEN}`);

    const error = await api.launch({ config: { id: 'x' } }).catch(e => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe(
      "config.resource_limits.memory: 'lots' is not a size"
    );
    expect([error.status, error.field]).toEqual([
      400,
      'config.resource_limits.memory'
    ]);
    expect(await server.requests[1].json()).toEqual({ config: { id: 'x' } });
  });

  it('says when the server cannot be reached', async () => {
    const server = new FakeServer().on('GET', /health/, () => {
      throw new TypeError('fetch failed');
    });
    const error = await server
      .api()
      .health()
      .catch(e => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/cannot reach the Jupyter server/);
  });
});

const LOG = stamp([
  { type: 'status', state: 'busy', detail: '' },
  { type: 'message', role: 'user', text: 'hi' },
  { type: 'text_delta', text: 'Hel' },
  { type: 'text_delta', text: 'lo' },
  { type: 'message', role: 'assistant', text: 'Hello' },
  { type: 'status', state: 'idle', detail: '' },
  { type: 'done' }
]);

/** The log after seq `after`, as the server's events endpoint sends it. */
function logAfter(request: Request, log: AgentEvent[] = LOG): AgentEvent[] {
  const after = Number(request.headers.get('Last-Event-ID') ?? '0');
  return log.filter(e => e.seq > after);
}

describe('EventFollower', () => {
  it('reconnects from Last-Event-ID after drops and delivers each event once', async () => {
    let calls = 0;
    const server = new FakeServer().on(
      'GET',
      /^api\/agcluster\/agents\/s1\/events$/,
      request => {
        calls += 1;
        const rest = logAfter(request);
        if (calls === 1) {
          return sse(rest.slice(0, 3).map(frame), 'error'); // 1-3, then the network breaks
        }
        if (calls === 2) {
          // a server that replays a little more than asked (overlap), then closes
          return sse([...LOG.slice(1, 5).map(frame), ': heartbeat\n\n']);
        }
        if (calls === 3) {
          return json(
            { message: 'server restarting', reason: 'Service Unavailable' },
            503
          );
        }
        if (calls === 4) {
          return sse(rest.map(frame), 'close');
        }
        return json({ message: 'no session s1', reason: 'Not Found' }, 404);
      }
    );
    const seen: number[] = [];
    const states: Array<[ConnectionState, string | undefined]> = [];
    const follower = new EventFollower(server.api(), 's1', {
      onEvent: e => seen.push(e.seq),
      onConnection: (state, detail) => states.push([state, detail]),
      retryDelayMs: 1
    });
    await follower.start();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(follower.lastSeq).toBe(7);
    const sent = server.requests.map(r => r.headers.get('Last-Event-ID'));
    expect(sent).toEqual([null, '3', '5', '5', '7']);
    expect(
      server.requests.every(
        r => r.headers.get('Accept') === 'text/event-stream'
      )
    ).toBe(true);
    expect(states.at(-1)).toEqual(['failed', 'no session s1']);
  });

  it('stops when asked, without reconnecting', async () => {
    const server = new FakeServer().on('GET', /events$/, () =>
      sse([frame(LOG[0])], 'hang')
    );
    const seen: number[] = [];
    const follower = new EventFollower(server.api(), 's1', {
      onEvent: e => seen.push(e.seq),
      after: 0
    });
    const done = follower.start();
    while (seen.length === 0) {
      await new Promise(r => setTimeout(r, 5));
    }
    follower.stop();
    await done;
    expect(seen).toEqual([1]);
    expect(server.requests).toHaveLength(1);
    expect(follower.running).toBe(false);
  });
});

describe('streamTurn', () => {
  const before = stamp([{ type: 'status', state: 'idle', detail: '' }]);
  const turn = stamp(
    [
      { type: 'status', state: 'busy', detail: '' },
      { type: 'message', role: 'user', text: 'hi' },
      { type: 'text_delta', text: 'Hi' },
      { type: 'message', role: 'assistant', text: 'Hi!' },
      { type: 'done' }
    ],
    2
  );
  const log = [...before, ...turn];

  it('resumes a dropped turn from the event log: nothing lost, nothing twice, one POST', async () => {
    const server = new FakeServer()
      .on('GET', /^api\/agcluster\/agents\/sessions\/s1$/, () =>
        json({ session_id: 's1', last_seq: 1 })
      )
      .on('POST', /^api\/agcluster\/agents\/s1\/chat$/, () =>
        sse(turn.slice(0, 2).map(frame), 'error')
      )
      .on('GET', /^api\/agcluster\/agents\/s1\/events$/, request =>
        sse([frame(log[1]), ...logAfter(request, log).map(frame)], 'hang')
      );
    const seen: AgentEvent[] = [];
    const result = await streamTurn(server.api(), 's1', 'hi', {
      onEvent: e => seen.push(e),
      retryDelayMs: 1
    });
    expect(seen.map(e => e.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(seen.at(-1)?.type).toBe('done');
    expect(result.lastSeq).toBe(6);
    const posts = server.requests.filter(r => r.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(await posts[0].json()).toEqual({ message: 'hi' });
    expect(posts[0].headers.get('Accept')).toBe('text/event-stream');
    expect(server.requests.at(-1)?.headers.get('Last-Event-ID')).toBe('3');
  });

  it('a drop before the first event resumes after the seq the session had', async () => {
    const server = new FakeServer()
      .on('POST', /chat$/, () => sse([], 'error'))
      .on('GET', /events$/, request =>
        sse(logAfter(request, log).map(frame), 'hang')
      );
    const seen: number[] = [];
    await streamTurn(server.api(), 's1', 'hi', {
      onEvent: e => seen.push(e.seq),
      after: 1,
      retryDelayMs: 1
    });
    expect(seen).toEqual([2, 3, 4, 5, 6]);
  });

  it('surfaces a refused message and never retries the POST', async () => {
    const server = new FakeServer().on('POST', /chat$/, () =>
      json(
        { message: 'session s1 is busy with a turn', reason: 'Conflict' },
        409
      )
    );
    await expect(
      streamTurn(server.api(), 's1', 'hi', {
        onEvent: () => undefined,
        after: 0
      })
    ).rejects.toMatchObject({
      status: 409,
      message: 'session s1 is busy with a turn'
    });
    expect(server.requests).toHaveLength(1);
  });

  it('gives up after repeated drops without progress', async () => {
    const server = new FakeServer()
      .on('POST', /chat$/, () => sse([], 'error'))
      .on('GET', /events$/, () => sse([], 'error'));
    await expect(
      streamTurn(server.api(), 's1', 'hi', {
        onEvent: () => undefined,
        after: 0,
        maxReconnects: 2,
        retryDelayMs: 1
      })
    ).rejects.toThrow(/kept dropping/);
    expect(server.requests).toHaveLength(3);
  });

  it('aborts cleanly', async () => {
    const server = new FakeServer().on('POST', /chat$/, () =>
      sse([frame(turn[0])], 'hang')
    );
    const controller = new AbortController();
    const seen: number[] = [];
    const running = streamTurn(server.api(), 's1', 'hi', {
      onEvent: e => {
        seen.push(e.seq);
        controller.abort();
      },
      signal: controller.signal,
      after: 1
    });
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toEqual([2]);
    expect(server.requests).toHaveLength(1);
  });
});
