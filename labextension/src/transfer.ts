/**
 * Uploads with progress and downloads as files.
 *
 * `fetch` reports no upload progress, so an upload goes through `XMLHttpRequest`, with
 * the very headers `ServerConnection.makeRequest` would send (token, `_xsrf` cookie as
 * `X-XSRFToken`): they are taken from a request built by `makeRequest` itself and never
 * sent.  Downloads are fetched through the API client (same auth) and handed to the
 * browser as a blob + `<a download>`.
 */

import { ServerConnection } from '@jupyterlab/services';

import { AgClusterAPI, ApiError, UploadReply, abortError } from './api';

/** What an upload sends: where, with which headers, which body. */
export interface UploadRequest {
  url: string;
  headers: { [name: string]: string };
  body: FormData;
  /** send cookies cross-origin too (the settings' `credentials: 'include'`) */
  withCredentials: boolean;
}

/**
 * The headers `ServerConnection.makeRequest` adds to a request of these settings (the
 * `Authorization` token, `X-XSRFToken` from the `_xsrf` cookie, ...), found by letting it
 * build one and stopping it before it leaves.  `Content-Type` is left out: the browser
 * sets the multipart boundary of the body it sends.
 */
export async function authHeaders(
  settings: ServerConnection.ISettings,
  url: string
): Promise<{ [name: string]: string }> {
  let captured: Request | null = null;
  const capture = async (input: RequestInfo | URL): Promise<Response> => {
    captured = input instanceof Request ? input : null;
    return new Response(null, { status: 204 });
  };
  await ServerConnection.makeRequest(
    url,
    { method: 'POST', headers: { 'Content-Type': 'multipart/form-data' } },
    { ...settings, fetch: capture }
  );
  const headers: { [name: string]: string } = {};
  (captured as Request | null)?.headers.forEach((value, name) => {
    if (name.toLowerCase() !== 'content-type') {
      headers[name] = value;
    }
  });
  return headers;
}

/** The request uploading `files` (one part named `files` each) into `targetPath`. */
export async function buildUpload(
  api: AgClusterAPI,
  sessionId: string,
  files: readonly File[],
  options: { targetPath?: string; overwrite?: boolean } = {}
): Promise<UploadRequest> {
  const url = api.uploadUrl(
    sessionId,
    options.targetPath ?? '',
    options.overwrite ?? false
  );
  const body = new FormData();
  for (const file of files) {
    body.append('files', file, file.name);
  }
  return {
    url,
    headers: await authHeaders(api.settings, url),
    body,
    withCredentials: api.settings.init.credentials === 'include'
  };
}

/** The subset of XMLHttpRequest an upload uses (tests hand in a fake). */
export interface XHRLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: FormData): void;
  abort(): void;
  withCredentials: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly responseText: string;
  upload: {
    onprogress: ((event: ProgressEvent) => void) | null;
  };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}

export interface SendOptions {
  /** bytes of the request body sent so far, of `total` (0 when unknown) */
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
  createXHR?: () => XHRLike;
}

/** Send an upload; its reply, or an `ApiError` with the server's message and field. */
export function sendUpload(
  request: UploadRequest,
  options: SendOptions = {}
): Promise<UploadReply> {
  const xhr: XHRLike = options.createXHR
    ? options.createXHR()
    : (new XMLHttpRequest() as unknown as XHRLike);
  return new Promise<UploadReply>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = (): void => xhr.abort();
    options.signal?.addEventListener('abort', onAbort);
    const settle = (): void =>
      options.signal?.removeEventListener('abort', onAbort);
    xhr.open('POST', request.url);
    xhr.withCredentials = request.withCredentials;
    for (const [name, value] of Object.entries(request.headers)) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = event => {
      options.onProgress?.(
        event.loaded,
        event.lengthComputable ? event.total : 0
      );
    };
    xhr.onload = () => {
      settle();
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText || '{}') as UploadReply);
        } catch {
          resolve({ uploaded: [] });
        }
      } else {
        reject(errorOf(xhr.status, xhr.statusText, xhr.responseText));
      }
    };
    xhr.onerror = () => {
      settle();
      reject(
        new ApiError(
          'the upload did not reach the Jupyter server (network error)',
          0,
          'Network Error'
        )
      );
    };
    xhr.onabort = () => {
      settle();
      reject(abortError());
    };
    xhr.send(request.body);
  });
}

/** The `ApiError` of an error reply: the server's `{message, reason, field}` if JSON. */
export function errorOf(
  status: number,
  statusText: string,
  text: string
): ApiError {
  let message = '';
  let reason = statusText;
  let field = '';
  try {
    const body = JSON.parse(text) as {
      message?: unknown;
      reason?: unknown;
      field?: unknown;
    };
    message = typeof body.message === 'string' ? body.message : '';
    reason = typeof body.reason === 'string' ? body.reason : reason;
    field = typeof body.field === 'string' ? body.field : '';
  } catch {
    // a proxy's page: the status says enough
  }
  return new ApiError(
    message || `${status} ${reason || 'error'}`.trim(),
    status,
    reason,
    field
  );
}

/** The file name a `Content-Disposition` header gives (RFC 6266/5987), else `fallback`. */
export function filenameOf(
  disposition: string | null,
  fallback: string
): string {
  if (disposition) {
    const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(
      disposition
    );
    if (extended) {
      try {
        return decodeURIComponent(extended[2].trim());
      } catch {
        // a malformed escape: try the plain parameter
      }
    }
    const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(
      disposition
    );
    if (plain) {
      const name =
        plain[2] !== undefined
          ? plain[2].replace(/\\(.)/g, '$1')
          : plain[1].trim();
      if (name) {
        return name;
      }
    }
  }
  return fallback;
}

/** Hand a blob to the browser as a download named `filename`. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = filename;
  anchor.style.display = 'none';
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  // the click has started the download; the URL may go once it has been read
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/** Download a response's body as a file (its `Content-Disposition` name, else `fallback`). */
export async function saveResponse(
  response: Response,
  fallback: string
): Promise<string> {
  const name = filenameOf(
    response.headers.get('Content-Disposition'),
    fallback
  );
  saveBlob(await response.blob(), name);
  return name;
}
