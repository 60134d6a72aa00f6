/**
 * Open notebooks and the agents' edits: unsaved changes are reported (and withdrawn),
 * an edited notebook without unsaved changes is reloaded, one with unsaved changes is
 * left alone, and the first poll only learns where the feed is.
 */

import { Signal } from '@lumino/signaling';
import { afterEach, describe, expect, it } from 'vitest';

import { LiveNotebooks, OpenContext, treePath } from '../src/livenotebooks';

class FakeContext implements OpenContext {
  constructor(readonly path: string) {}
  isDisposed = false;
  reverts = 0;
  readonly disposed = new Signal<unknown, void>(this);
  readonly stateChanged = new Signal<unknown, { name: string }>(this);
  readonly contentChanged = new Signal<unknown, void>(this);
  sources = ['x = 1'];
  collaborative = false;
  private _dirty = false;
  readonly model = {
    owner: this,
    get dirty(): boolean {
      return this.owner._dirty;
    },
    get collaborative(): boolean {
      return this.owner.collaborative;
    },
    get stateChanged(): Signal<unknown, { name: string }> {
      return this.owner.stateChanged;
    },
    get contentChanged(): Signal<unknown, void> {
      return this.owner.contentChanged;
    },
    get cells() {
      const sources = this.owner.sources;
      return {
        length: sources.length,
        get: (i: number) => ({
          id: `c${i}`,
          type: 'code',
          sharedModel: { getSource: () => sources[i] }
        })
      };
    }
  };
  setDirty(dirty: boolean): void {
    this._dirty = dirty;
    this.stateChanged.emit({ name: 'dirty' });
  }
  /** the user types: the model changes and is dirty */
  type(text: string): void {
    this.sources = [...this.sources.slice(0, -1), this.sources.at(-1) + text];
    this._dirty = true;
    this.contentChanged.emit();
    this.stateChanged.emit({ name: 'dirty' });
  }
  async revert(): Promise<void> {
    this.reverts += 1;
  }
  close(): void {
    this.isDisposed = true;
    this.disposed.emit();
  }
}

interface Call {
  path: string;
  method: string;
  body: unknown;
  query?: { [key: string]: string };
}

/** The server's side: records calls, answers polls from a queue of edit batches. */
class FakeApi {
  calls: Call[] = [];
  batches: { path: string }[][] = [];
  last = 7;
  private _waiting: (() => void) | null = null;
  push(paths: string[]): void {
    this.batches.push(paths.map(path => ({ path })));
    this._waiting?.();
  }
  async json<T>(
    path: string,
    method = 'GET',
    body?: unknown,
    query?: { [key: string]: string }
  ): Promise<T> {
    this.calls.push({ path, method, body, query });
    if (path === 'notebooks/edits') {
      if (query?.timeout !== '0') {
        while (this.batches.length === 0) {
          await new Promise<void>(resolve => (this._waiting = resolve));
        }
        const edits = this.batches.shift()!.map((e, i) => ({
          n: this.last + i + 1,
          path: e.path,
          version: 'v',
          session_id: 's'
        }));
        this.last += edits.length;
        return { edits, last: this.last } as T;
      }
      return { edits: [], last: this.last } as T;
    }
    return {} as T;
  }
}

const tick = (ms = 20): Promise<void> => new Promise(r => setTimeout(r, ms));

describe('LiveNotebooks', () => {
  let live: LiveNotebooks | null = null;
  afterEach(() => live?.dispose());

  it('names paths as the server does', () => {
    expect(treePath('RTC:project/a.ipynb')).toBe('project/a.ipynb');
    expect(treePath('/a.ipynb')).toBe('a.ipynb');
    expect(treePath('dir:x/b.ipynb')).toBe('x/b.ipynb');
  });

  it('reports unsaved changes, reloads clean notebooks only', async () => {
    const api = new FakeApi();
    const clean = new FakeContext('project/clean.ipynb');
    const typing = new FakeContext('project/typing.ipynb');
    const text = new FakeContext('notes.txt');
    const widgets = [
      { context: clean },
      { context: typing },
      { context: text },
      {}
    ];
    live = new LiveNotebooks(api, () => widgets);
    live.start();
    expect([...live.open.keys()].sort()).toEqual([
      'project/clean.ipynb',
      'project/typing.ipynb'
    ]);
    // the kernel filled in metadata: changed, but no typing: nothing to report
    clean.setDirty(true);
    await tick();
    expect(api.calls.filter(c => c.path === 'notebooks/open')).toHaveLength(0);
    typing.type(' # mine');
    await tick(300);
    const reports = api.calls.filter(c => c.path === 'notebooks/open');
    expect(reports).toHaveLength(1);
    expect(reports[0].method).toBe('PUT');
    expect(reports[0].body).toMatchObject({
      path: 'project/typing.ipynb',
      dirty: true
    });
    // the first poll only learns the feed's position (older edits are on disk)
    const polls = api.calls.filter(c => c.path === 'notebooks/edits');
    expect(polls[0].query).toEqual({ after: '0', timeout: '0' });
    expect(polls[1].query).toEqual({ after: '7', timeout: '25' });

    api.push([
      'project/clean.ipynb',
      'project/typing.ipynb',
      'elsewhere.ipynb'
    ]);
    await tick();
    expect(clean.reverts).toBe(1); // metadata-only changes do not hold a reload off
    expect(typing.reverts).toBe(0); // the user's typing stays
    // closed with unsaved changes: the report is withdrawn
    typing.close();
    await tick();
    const last = api.calls.filter(c => c.path === 'notebooks/open').pop();
    expect(last?.body).toMatchObject({
      path: 'project/typing.ipynb',
      dirty: false
    });
    expect([...live.open.keys()]).toEqual(['project/clean.ipynb']);
  });

  it('leaves a shared (collaborative) notebook to its room', async () => {
    const api = new FakeApi();
    const shared = new FakeContext('project/shared.ipynb');
    shared.collaborative = true;
    live = new LiveNotebooks(api, () => [{ context: shared }]);
    live.start();
    expect([...live.open.keys()]).toEqual([]);
    shared.type(' # typed in the room');
    await tick(300);
    expect(api.calls.filter(c => c.path === 'notebooks/open')).toHaveLength(0);
    api.push(['project/shared.ipynb']);
    await tick();
    // the server edited the room itself: a reload from disk would only flicker
    expect(shared.reverts).toBe(0);
  });
});
