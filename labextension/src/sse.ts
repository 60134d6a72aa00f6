/**
 * Server-sent events over `fetch` (not EventSource: it cannot send the Jupyter token or
 * XSRF header, nor POST).  Requests go through `AgClusterAPI`, i.e. `ServerConnection`.
 *
 * - `SSEParser` turns text into frames (`id`, `event`, `data`) and comments (heartbeats).
 * - `EventFollower` follows a session's event log (`GET agents/{id}/events`) and reconnects
 *   with `Last-Event-ID` after a drop, so no event is lost or delivered twice.
 * - `streamTurn` sends a message (`POST agents/{id}/chat`, `Accept: text/event-stream`) and
 *   delivers the turn's events up to `done`, resuming from the event log after a drop.
 *
 * Size: the parser and the two readers share the reconnect and cursor rules; apart, each
 * would restate them.
 */

import { AgClusterAPI, ApiError, abortError } from './api';
import { AgentEvent, parseEvent } from './events';

export interface SSEFrame {
  /** the frame's own `id` field, if it had one */
  id: string | null;
  event: string;
  data: string;
}

export type SSEItem =
  { kind: 'frame'; frame: SSEFrame } | { kind: 'comment'; text: string };

/** An incremental parser of the `text/event-stream` format (WHATWG HTML, server-sent events). */
export class SSEParser {
  /** Parse the next piece of the stream; returns what it completed. */
  feed(chunk: string): SSEItem[] {
    this._buffer += chunk;
    const items: SSEItem[] = [];
    let start = 0;
    for (;;) {
      const cr = this._buffer.indexOf('\r', start);
      const lf = this._buffer.indexOf('\n', start);
      if (cr < 0 && lf < 0) {
        break;
      }
      let end: number;
      let next: number;
      if (lf >= 0 && (cr < 0 || lf < cr)) {
        end = lf;
        next = lf + 1;
      } else if (cr === this._buffer.length - 1) {
        break; // a CR at the end: wait for what follows (it may be CRLF)
      } else {
        end = cr;
        next = this._buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
      }
      this._line(this._buffer.slice(start, end), items);
      start = next;
    }
    this._buffer = this._buffer.slice(start);
    return items;
  }

  /** The stream ended: a frame without its blank line is incomplete and dropped (spec). */
  end(): SSEItem[] {
    const items: SSEItem[] = [];
    if (this._buffer.endsWith('\r')) {
      this._line(this._buffer.slice(0, -1), items);
    }
    this._buffer = '';
    this._reset();
    return items;
  }

  private _line(line: string, items: SSEItem[]): void {
    if (line === '') {
      if (this._data.length > 0) {
        items.push({
          kind: 'frame',
          frame: {
            id: this._id,
            event: this._event || 'message',
            data: this._data.join('\n')
          }
        });
      }
      this._reset();
      return;
    }
    if (line.startsWith(':')) {
      items.push({ kind: 'comment', text: line.slice(1).trim() });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'data':
        this._data.push(value);
        break;
      case 'event':
        this._event = value;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this._id = value;
        }
        break;
      default:
        break; // `retry` and unknown fields: ignored
    }
  }

  private _reset(): void {
    this._data = [];
    this._event = '';
    this._id = null;
  }

  private _buffer = '';
  private _data: string[] = [];
  private _event = '';
  private _id: string | null = null;
}

/** How long a stream may stay silent before it counts as dropped (the server sends a
 * heartbeat comment every 15 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

/**
 * Read an SSE response to its end, handing each item to `onItem`; `onItem` returning true
 * stops reading.  Resolves true when stopped that way, false when the stream ended.
 * Rejects with an AbortError when `signal` aborts, and with an Error when the stream
 * stays silent for `idleTimeoutMs` or breaks.
 */
export async function readSSE(
  response: Response,
  onItem: (item: SSEItem) => boolean | void,
  options: { signal?: AbortSignal; idleTimeoutMs?: number } = {}
): Promise<boolean> {
  if (!response.body) {
    throw new Error('the response has no body to stream');
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SSEParser();
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  let idle = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cancel = (): void => {
    void reader.cancel().catch(() => undefined);
  };
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      cancel();
    }, idleMs);
  };
  options.signal?.addEventListener('abort', cancel);
  try {
    if (options.signal?.aborted) {
      throw abortError();
    }
    arm();
    for (;;) {
      const { done, value } = await reader.read();
      if (options.signal?.aborted) {
        throw abortError();
      }
      if (idle) {
        throw new Error(`no data for ${Math.round(idleMs / 1000)} s`);
      }
      const items = done
        ? parser.feed(decoder.decode()).concat(parser.end())
        : parser.feed(decoder.decode(value, { stream: true }));
      arm();
      for (const item of items) {
        if (onItem(item) === true) {
          cancel();
          return true;
        }
      }
      if (done) {
        return false;
      }
    }
  } catch (error) {
    if (options.signal?.aborted) {
      throw abortError();
    }
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', cancel);
  }
}

/** A delay that ends early (rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether a failure is worth a reconnect: the network, a timeout, a 5xx; not a 4xx. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof ApiError) {
    return error.status === 0 || error.status >= 500;
  }
  return true;
}

/** Exponential backoff: 0.25 s, 0.5 s, 1 s, ... up to `max`. */
export function backoff(attempt: number, base = 250, max = 10_000): number {
  return Math.min(base * 2 ** Math.max(0, attempt - 1), max);
}

const SSE_HEADERS = { Accept: 'text/event-stream' };

/** Open `GET agents/{id}/events` after seq `after` (the `Last-Event-ID` header). */
export function openEvents(
  api: AgClusterAPI,
  sessionId: string,
  after: number,
  options: { signal?: AbortSignal; follow?: boolean } = {}
): Promise<Response> {
  const headers: { [key: string]: string } = { ...SSE_HEADERS };
  if (after > 0) {
    headers['Last-Event-ID'] = String(after);
  }
  return api.fetch(
    `agents/${encodeURIComponent(sessionId)}/events`,
    { headers, signal: options.signal },
    options.follow === false ? { follow: 'false' } : undefined
  );
}

/** Deliver each event of a response once: `seq` above `last()` only. */
function eventsOf(
  deliver: (event: AgentEvent) => boolean | void,
  last: () => number,
  onHeartbeat?: () => void
): (item: SSEItem) => boolean {
  return item => {
    if (item.kind === 'comment') {
      onHeartbeat?.();
      return false;
    }
    const event = parseEvent(item.frame.data);
    if (event === null || event.seq <= last()) {
      return false; // not ours, or already delivered (a reconnect overlaps)
    }
    return deliver(event) === true;
  };
}

export type ConnectionState =
  'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed';

export interface FollowOptions {
  /** deliver events with a seq above this (0: the whole log) */
  after?: number;
  onEvent: (event: AgentEvent) => void;
  onConnection?: (state: ConnectionState, detail?: string) => void;
  onHeartbeat?: () => void;
  idleTimeoutMs?: number;
  /** first reconnect delay (ms), doubled per failed attempt up to `maxRetryDelayMs` */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/**
 * Follows one session's event log for as long as it runs: each event is delivered once,
 * in order; after a drop it reconnects with `Last-Event-ID` = the last delivered seq.  A
 * 4xx (session gone, auth) ends it as `failed`; everything else is retried.
 */
export class EventFollower {
  constructor(
    readonly api: AgClusterAPI,
    readonly sessionId: string,
    private readonly _options: FollowOptions
  ) {
    this._lastSeq = _options.after ?? 0;
  }

  /** The seq of the last event delivered. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  get running(): boolean {
    return this._controller !== null;
  }

  /** Start following (once); resolves when stopped or failed. */
  start(): Promise<void> {
    if (!this._done) {
      this._controller = new AbortController();
      this._done = this._run(this._controller.signal).finally(() => {
        this._controller = null;
      });
    }
    return this._done;
  }

  stop(): void {
    this._controller?.abort();
  }

  private async _run(signal: AbortSignal): Promise<void> {
    const opts = this._options;
    let attempt = 0;
    const deliver = eventsOf(
      event => {
        this._lastSeq = event.seq;
        attempt = 0;
        opts.onEvent(event);
      },
      () => this._lastSeq,
      opts.onHeartbeat
    );
    let detail = '';
    while (!signal.aborted) {
      opts.onConnection?.(
        attempt === 0 ? 'connecting' : 'reconnecting',
        detail
      );
      try {
        const response = await openEvents(
          this.api,
          this.sessionId,
          this._lastSeq,
          { signal }
        );
        opts.onConnection?.('open');
        await readSSE(response, deliver, {
          signal,
          idleTimeoutMs: opts.idleTimeoutMs
        });
        detail = 'the server closed the stream';
      } catch (error) {
        if (signal.aborted) {
          break;
        }
        if (!isRetryable(error)) {
          opts.onConnection?.('failed', (error as Error).message);
          return;
        }
        detail = (error as Error).message;
      }
      attempt += 1;
      try {
        await sleep(
          backoff(attempt, opts.retryDelayMs, opts.maxRetryDelayMs),
          signal
        );
      } catch {
        break;
      }
    }
    opts.onConnection?.('closed');
  }

  private _lastSeq: number;
  private _controller: AbortController | null = null;
  private _done: Promise<void> | null = null;
}

export interface TurnOptions {
  onEvent: (event: AgentEvent) => void;
  signal?: AbortSignal;
  /** the session's last seq before the message; asked from the server when omitted */
  after?: number;
  /** reconnects in a row without a new event before giving up */
  maxReconnects?: number;
  idleTimeoutMs?: number;
  retryDelayMs?: number;
}

export interface TurnResult {
  lastSeq: number;
}

/**
 * Send `message` and deliver the turn's events up to and including `done`.  The POST is
 * never repeated (it would send the message twice); if its stream drops, the turn goes on
 * from the event log with `Last-Event-ID`, each event delivered once.
 */
export async function streamTurn(
  api: AgClusterAPI,
  sessionId: string,
  message: string,
  options: TurnOptions
): Promise<TurnResult> {
  const { signal } = options;
  // where this turn's events start, in case the stream drops before its first event
  let last = options.after ?? (await api.session(sessionId)).last_seq;
  let finished = false;
  let attempt = 0;
  const maxReconnects = options.maxReconnects ?? 8;
  const deliver = eventsOf(
    event => {
      last = event.seq;
      attempt = 0;
      options.onEvent(event);
      finished = event.type === 'done';
      return finished;
    },
    () => last
  );
  let response: Response | null = await api.fetch(
    `agents/${encodeURIComponent(sessionId)}/chat`,
    {
      method: 'POST',
      body: JSON.stringify({ message }),
      headers: { ...SSE_HEADERS, 'Content-Type': 'application/json' },
      signal
    }
  );
  let problem = '';
  for (;;) {
    try {
      if (response === null) {
        response = await openEvents(api, sessionId, last, { signal });
      }
      await readSSE(response, deliver, {
        signal,
        idleTimeoutMs: options.idleTimeoutMs
      });
      if (finished) {
        return { lastSeq: last };
      }
      problem = 'the stream ended before the turn was done';
    } catch (error) {
      if (signal?.aborted) {
        throw abortError();
      }
      if (!isRetryable(error)) {
        throw error;
      }
      problem = (error as Error).message;
    }
    response = null;
    attempt += 1;
    if (attempt > maxReconnects) {
      throw new ApiError(
        `the event stream of ${sessionId} kept dropping: ${problem}`,
        0
      );
    }
    await sleep(backoff(attempt, options.retryDelayMs), signal);
  }
}
