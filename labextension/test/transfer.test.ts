// @vitest-environment jsdom
/** Uploads (request building with the page's auth, progress, errors) and download names. */

import { ServerConnection } from '@jupyterlab/services';
import { afterEach, describe, expect, it } from 'vitest';

import { AgClusterAPI, ApiError } from '../src/api';
import {
  authHeaders,
  buildUpload,
  filenameOf,
  saveResponse,
  sendUpload
} from '../src/transfer';
import { BASE_URL, TOKEN } from './fakeserver';
import { FakeXHR } from './xhr';

function api(token = TOKEN): AgClusterAPI {
  return new AgClusterAPI(
    ServerConnection.makeSettings({
      baseUrl: BASE_URL,
      token,
      fetch: async () => new Response(null, { status: 599 })
    })
  );
}

function clearCookies(): void {
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0].trim();
    if (name) {
      document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT`;
    }
  }
}

describe('upload requests', () => {
  afterEach(clearCookies);

  it('carry the token and the _xsrf cookie as ServerConnection would, no Content-Type', async () => {
    document.cookie = '_xsrf=2|abc|def';
    const headers = await authHeaders(
      api().settings,
      `${BASE_URL}api/agcluster/files/s1/upload`
    );
    expect(headers).toEqual({
      authorization: `token ${TOKEN}`,
      'x-xsrftoken': '2|abc|def'
    });
  });

  it('with cookie auth only (no token): just the XSRF header', async () => {
    document.cookie = '_xsrf=xyz';
    const headers = await authHeaders(
      api('').settings,
      `${BASE_URL}api/agcluster/x`
    );
    expect(headers).toEqual({ 'x-xsrftoken': 'xyz' });
  });

  it('POST files/{id}/upload?target_path=&overwrite=, one part named files per file', async () => {
    const files = [
      new File(['a,b\n'], 'data.csv', { type: 'text/csv' }),
      new File(['x'], 'notes é.txt')
    ];
    const request = await buildUpload(api(), 's 1', files, {
      targetPath: 'data/raw',
      overwrite: true
    });
    expect(request.url).toBe(
      `${BASE_URL}api/agcluster/files/s%201/upload?target_path=data%2Fraw&overwrite=true`
    );
    expect(request.headers.authorization).toBe(`token ${TOKEN}`);
    const parts: Array<[string, string]> = [];
    request.body.forEach((value, name) =>
      parts.push([name, (value as File).name])
    );
    expect(parts).toEqual([
      ['files', 'data.csv'],
      ['files', 'notes é.txt']
    ]);
    const plain = await buildUpload(api(), 's1', files);
    expect(plain.url).toMatch(/upload\?target_path=&overwrite=false$/);
  });
});

describe('sendUpload', () => {
  const request = {
    url: `${BASE_URL}api/agcluster/files/s1/upload?target_path=&overwrite=false`,
    headers: { authorization: 'token t', 'x-xsrftoken': 'x' },
    body: new FormData(),
    withCredentials: false
  };

  it('sends the headers, reports progress and resolves with the reply', async () => {
    const xhr = new FakeXHR();
    const progress: Array<[number, number]> = [];
    const done = sendUpload(request, {
      createXHR: () => xhr,
      onProgress: (loaded, total) => progress.push([loaded, total])
    });
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe(request.url);
    expect(xhr.headers).toEqual(request.headers);
    expect(xhr.body).toBe(request.body);
    xhr.progress(50, 200);
    xhr.progress(200, 200);
    xhr.respond(200, { uploaded: [{ filename: 'a', path: 'a' }] });
    await expect(done).resolves.toEqual({
      uploaded: [{ filename: 'a', path: 'a' }]
    });
    expect(progress).toEqual([
      [50, 200],
      [200, 200]
    ]);
  });

  it("rejects with the server's message, status and field", async () => {
    const xhr = new FakeXHR();
    const done = sendUpload(request, { createXHR: () => xhr });
    xhr.respond(
      409,
      {
        message: "'a.csv' already exists; pass overwrite=true to replace it",
        reason: 'Conflict',
        field: 'files'
      },
      'Conflict'
    );
    const error = (await done.catch(e => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect([error.status, error.reason, error.field]).toEqual([
      409,
      'Conflict',
      'files'
    ]);
    expect(error.message).toContain('already exists');
  });

  it('a proxy page, a network error and an abort', async () => {
    let xhr = new FakeXHR();
    let done = sendUpload(request, { createXHR: () => xhr });
    xhr.respond(502, '<html>bad gateway</html>', 'Bad Gateway');
    expect(((await done.catch(e => e)) as ApiError).message).toBe(
      '502 Bad Gateway'
    );

    xhr = new FakeXHR();
    done = sendUpload(request, { createXHR: () => xhr });
    xhr.fail();
    expect(((await done.catch(e => e)) as ApiError).status).toBe(0);

    xhr = new FakeXHR();
    const controller = new AbortController();
    done = sendUpload(request, {
      createXHR: () => xhr,
      signal: controller.signal
    });
    controller.abort();
    expect(((await done.catch(e => e)) as Error).name).toBe('AbortError');
    expect(xhr.aborted).toBe(true);
  });
});

describe('downloads', () => {
  it('take the name of Content-Disposition (RFC 5987 first), else the fallback', () => {
    expect(filenameOf('attachment; filename="a b.zip"', 'x')).toBe('a b.zip');
    expect(
      filenameOf(
        'attachment; filename="caf_.txt"; filename*=UTF-8\'\'caf%C3%A9.txt',
        'x'
      )
    ).toBe('café.txt');
    expect(filenameOf('inline; filename=data.csv', 'x')).toBe('data.csv');
    expect(filenameOf(null, 'fallback.bin')).toBe('fallback.bin');
    expect(filenameOf('attachment', 'fallback.bin')).toBe('fallback.bin');
  });

  it('hand the blob to an <a download> click', async () => {
    const clicked: Array<[string, string]> = [];
    const original = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicked.push([this.download, this.href]);
    };
    const urls = URL as unknown as {
      createObjectURL: (b: Blob) => string;
      revokeObjectURL: (u: string) => void;
    };
    const created: Blob[] = [];
    const [create, revoke] = [urls.createObjectURL, urls.revokeObjectURL];
    urls.createObjectURL = (blob: Blob) => {
      created.push(blob);
      return 'blob:fake/1';
    };
    urls.revokeObjectURL = () => undefined;
    try {
      const name = await saveResponse(
        new Response('a,b\n', {
          headers: { 'Content-Disposition': 'attachment; filename="d.csv"' }
        }),
        'fallback'
      );
      expect(name).toBe('d.csv');
      expect(clicked).toEqual([['d.csv', 'blob:fake/1']]);
      expect(await created[0].text()).toBe('a,b\n');
      expect(document.querySelector('a[download]')).toBeNull();
    } finally {
      HTMLAnchorElement.prototype.click = original;
      urls.createObjectURL = create;
      urls.revokeObjectURL = revoke;
    }
  });
});
