/** Tree rows, paths in the Jupyter tree, sizes and resources, the notebook export. */

import { describe, expect, it } from 'vitest';

import { FileNode } from '../src/api';
import { exportName, exportNotebook, freePath, slug } from '../src/exporter';
import { contentsPathOf, treeRows } from '../src/files';
import { bytes, cost, resourceParts } from '../src/format';
import { FakeServer, json } from './fakeserver';

function file(path: string, size = 1): FileNode {
  return {
    name: path.split('/').pop()!,
    path,
    type: 'file',
    size_bytes: size,
    modified: ''
  };
}

function dir(path: string, children: FileNode[]): FileNode {
  return {
    name: path.split('/').pop()!,
    path,
    type: 'directory',
    size_bytes: 0,
    modified: '',
    children
  };
}

const TREE = [
  file('zeta.py'),
  dir('src', [
    file('src/b.py'),
    dir('src/pkg', [file('src/pkg/x.py')]),
    file('src/A.py')
  ]),
  file('README.md'),
  dir('data', [])
];

describe('treeRows', () => {
  it('directories first, then files, by name; children indented under their folder', () => {
    const rows = treeRows(TREE, new Set());
    expect(rows.map(r => `${'  '.repeat(r.depth)}${r.node.path}`)).toEqual([
      'data',
      'src',
      '  src/pkg',
      '    src/pkg/x.py',
      '  src/A.py',
      '  src/b.py',
      'README.md',
      'zeta.py'
    ]);
  });

  it('a collapsed folder hides everything under it', () => {
    const rows = treeRows(TREE, new Set(['src/pkg']));
    expect(rows.map(r => r.node.path)).not.toContain('src/pkg/x.py');
    expect(rows.find(r => r.node.path === 'src/pkg')?.collapsed).toBe(true);
    expect(treeRows(TREE, new Set(['src'])).map(r => r.node.path)).toEqual([
      'data',
      'src',
      'README.md',
      'zeta.py'
    ]);
  });
});

describe('paths and numbers', () => {
  it('contents_path + "/" + the file path', () => {
    expect(contentsPathOf('agent-workspaces/s1', 'data/a.csv')).toBe(
      'agent-workspaces/s1/data/a.csv'
    );
    expect(contentsPathOf('ws/', '/a.txt')).toBe('ws/a.txt');
    // the workspace is the server root itself
    expect(contentsPathOf('', 'a.txt')).toBe('a.txt');
  });

  it('bytes, cost, CPU and memory', () => {
    expect([0, 512, 1536, 220 * 2 ** 20, 4 * 2 ** 30].map(bytes)).toEqual([
      '0 B',
      '512 B',
      '1.5 KB',
      '220 MB',
      '4.0 GB'
    ]);
    expect([cost(undefined), cost(0), cost(0.0042), cost(1.5)]).toEqual([
      '$0.00',
      '$0.00',
      '$0.0042',
      '$1.50'
    ]);
    expect(
      resourceParts({
        cpu_percent: 12.3,
        memory_bytes: 231124992,
        memory_limit_bytes: 4294967296
      })
    ).toEqual({ cpu: '12% CPU', memory: '220 MB / 4.0 GB' });
    expect(resourceParts({ cpu_percent: 0 })).toEqual({
      cpu: '0.0% CPU',
      memory: ''
    });
    expect(resourceParts({})).toEqual({ cpu: '', memory: '' });
  });
});

describe('export as a notebook', () => {
  const NOTEBOOK = { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 };

  it('names it after the session, in a free path of the chosen folder', async () => {
    expect(slug('My agent #2')).toBe('my-agent-2');
    expect(slug('...')).toBe('agent');
    expect(exportName('abcdef0123456789')).toBe('agent-abcdef01');
    const taken = new Set(['out/a-s1.ipynb', 'out/a-s1-1.ipynb']);
    const contents = {
      get: async (path: string) => {
        if (!taken.has(path)) {
          throw new Error('404');
        }
        return {};
      },
      save: async (path: string) => ({ path })
    };
    expect(await freePath(contents, '/out/', 'a-s1', '.ipynb')).toBe(
      'out/a-s1-2.ipynb'
    );
    expect(await freePath(contents, '', 'a-s1', '.ipynb')).toBe('a-s1.ipynb');
  });

  it('GET export?format=ipynb, then saved through the contents API', async () => {
    const fake = new FakeServer().on(
      'GET',
      /agents\/s1234567890\/export$/,
      () => json(NOTEBOOK)
    );
    const saved: Array<[string, unknown]> = [];
    const result = await exportNotebook(
      fake.api(),
      {
        get: async () => {
          throw new Error('404');
        },
        save: async (path, options) => {
          saved.push([path, options]);
          return { path };
        }
      },
      's1234567890',
      {
        directory: 'exports',
        info: { name: 'Data run', config_id: 'data-analysis' } as never
      }
    );
    expect(result).toEqual({
      path: 'exports/data-run-s1234567.ipynb',
      saved: 'contents'
    });
    expect(saved).toEqual([
      [
        'exports/data-run-s1234567.ipynb',
        { type: 'notebook', format: 'json', content: NOTEBOOK }
      ]
    ]);
    expect(new URL(fake.requests[0].url).searchParams.get('format')).toBe(
      'ipynb'
    );
  });
});
