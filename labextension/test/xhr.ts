/** A fake XMLHttpRequest for uploads: records what was sent, answers when told. */

import { XHRLike } from '../src/transfer';

export class FakeXHR implements XHRLike {
  static all: FakeXHR[] = [];

  constructor() {
    FakeXHR.all.push(this);
  }

  method = '';
  url = '';
  headers: { [name: string]: string } = {};
  body: FormData | null = null;
  aborted = false;
  withCredentials = false;
  status = 0;
  statusText = '';
  responseText = '';
  upload: { onprogress: ((event: ProgressEvent) => void) | null } = {
    onprogress: null
  };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  /** what to do once sent (default: nothing until the test answers) */
  autoRespond: ((xhr: FakeXHR) => void) | null = null;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  send(body: FormData): void {
    this.body = body;
    if (this.autoRespond) {
      const respond = this.autoRespond;
      setTimeout(() => respond(this), 0);
    }
  }

  abort(): void {
    this.aborted = true;
    this.onabort?.();
  }

  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({
      loaded,
      total,
      lengthComputable: total > 0
    } as ProgressEvent);
  }

  respond(status: number, body: unknown, statusText = ''): void {
    this.status = status;
    this.statusText = statusText;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.onload?.();
  }

  fail(): void {
    this.onerror?.();
  }

  /** The names of the body's parts and the file names in them. */
  parts(): Array<[string, string]> {
    const parts: Array<[string, string]> = [];
    this.body?.forEach((value, name) => {
      parts.push([name, value instanceof File ? value.name : String(value)]);
    });
    return parts;
  }
}

/**
 * An XMLHttpRequest over fetch (for node, where there is none): no progress until the
 * end, otherwise the same request and the same outcome.
 */
export class FetchXHR implements XHRLike {
  method = '';
  url = '';
  headers: { [name: string]: string } = {};
  withCredentials = false;
  status = 0;
  statusText = '';
  responseText = '';
  upload: { onprogress: ((event: ProgressEvent) => void) | null } = {
    onprogress: null
  };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  private _controller = new AbortController();

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  send(body: FormData): void {
    fetch(this.url, {
      method: this.method,
      headers: this.headers,
      body,
      signal: this._controller.signal
    })
      .then(async response => {
        this.upload.onprogress?.({
          loaded: 1,
          total: 1,
          lengthComputable: true
        } as ProgressEvent);
        this.status = response.status;
        this.statusText = response.statusText;
        this.responseText = await response.text();
        this.onload?.();
      })
      .catch(() =>
        this._controller.signal.aborted ? this.onabort?.() : this.onerror?.()
      );
  }

  abort(): void {
    this._controller.abort();
  }
}
