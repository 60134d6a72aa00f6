/** A fake Jupyter server behind `ServerConnection`: routes requests to handlers, records them. */

import { ServerConnection } from '@jupyterlab/services';

import { AgClusterAPI } from '../src/api';
import { AgentEvent } from '../src/events';

export const BASE_URL = 'http://lab.test/user/ann/';
export const TOKEN = 'secret-token';

export type Handler = (request: Request) => Response | Promise<Response>;

export class FakeServer {
  requests: Request[] = [];
  routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [];

  on(method: string, pattern: RegExp, handler: Handler): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }

  api(): AgClusterAPI {
    const fetch = async (
      input: RequestInfo | URL,
      init?: RequestInit
    ): Promise<Response> => {
      const request =
        input instanceof Request ? input : new Request(input, init);
      this.requests.push(request);
      const path = new URL(request.url).pathname.slice(
        new URL(BASE_URL).pathname.length
      );
      for (const route of this.routes) {
        if (route.method === request.method && route.pattern.test(path)) {
          return route.handler(request);
        }
      }
      return json(
        { message: `no route ${request.method} ${path}`, reason: 'Not Found' },
        404
      );
    };
    return new AgClusterAPI(
      ServerConnection.makeSettings({ baseUrl: BASE_URL, token: TOKEN, fetch })
    );
  }
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

export function frame(event: AgentEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * An SSE response that sends `chunks`, then closes (`end: 'close'`), breaks
 * (`end: 'error'`), or stays open and silent (`end: 'hang'`).
 */
export function sse(
  chunks: string[],
  end: 'close' | 'error' | 'hang' = 'close'
): Response {
  const encoder = new TextEncoder();
  const queue = [...chunks];
  // pull-based: a chunk is handed over only when read, so an error comes after the data
  const body = new ReadableStream<Uint8Array>({
    pull(controller): Promise<void> | void {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        controller.enqueue(encoder.encode(chunk));
      } else if (end === 'close') {
        controller.close();
      } else if (end === 'error') {
        controller.error(new TypeError('network connection lost'));
      } else {
        return new Promise<void>(() => undefined); // hang: never more data
      }
      return undefined;
    }
  });
  return new Response(body, {
    headers: { 'Content-Type': 'text/event-stream' }
  });
}

/** Events stamped as a session log would: seq from `from`, ts one second apart. */
export function stamp(
  specs: Array<{ [key: string]: unknown }>,
  from = 1
): AgentEvent[] {
  return specs.map((spec, i) => {
    const seq = from + i;
    const second = String(seq % 60).padStart(2, '0');
    const minute = String(Math.floor(seq / 60)).padStart(2, '0');
    return {
      seq,
      session_id: 's1',
      ts: `2026-11-26T10:${minute}:${second}+00:00`,
      ...spec
    } as unknown as AgentEvent;
  });
}
