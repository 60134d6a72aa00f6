/**
 * The panel model against a real Jupyter server with agcluster (scripted model): the
 * custom config's 400 with its field, launch with a name, the Files tab (tree, 409 →
 * overwrite upload, preview, open-in-Lab path, raw download, ZIP), the notebook export
 * and purge.  Set AGC_LIVE_URL and AGC_LIVE_TOKEN (as for live.test.ts); skipped without.
 */

import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { AgClusterAPI } from '../src/api';
import { Confirmation } from '../src/dialogs';
import { exportNotebook } from '../src/exporter';
import { AgentsModel } from '../src/model';
import { FetchXHR } from './xhr';

const url = process.env.AGC_LIVE_URL;
const token = process.env.AGC_LIVE_TOKEN ?? '';

describe.skipIf(!url)('the panel model against a live server', () => {
  it(
    'config errors, files, uploads with overwrite, export, purge',
    { timeout: 180_000 },
    async () => {
      const api = new AgClusterAPI(
        ServerConnection.makeSettings({ baseUrl: url, token })
      );
      const asked: Confirmation[] = [];
      const opened: string[] = [];
      const saved: Array<[string, number]> = [];
      // disposed in the finally below (the rule does not follow try/finally)
      // eslint-disable-next-line jupyter/require-disposable-ownership
      const model = new AgentsModel(api, {
        confirm: async q => {
          asked.push(q);
          return true;
        },
        openInLab: async path => {
          opened.push(path);
        },
        createXHR: () => new FetchXHR(),
        save: async (response, fallback) => {
          saved.push([fallback, (await response.arrayBuffer()).byteLength]);
          return fallback;
        }
      });

      try {
        await model.loadConfigTemplate('research-agent');
        const config = JSON.parse(model.configText) as {
          [key: string]: unknown;
        };
        expect(config.id).toBe('research-agent');
        model.setConfigText(
          JSON.stringify({ ...config, resource_limits: { memory: 'lots' } })
        );
        expect(await model.launchCustom()).toBeNull();
        expect(model.configError?.field).toBe('config.resource_limits.memory');
        expect(model.configError?.message).toContain("'lots' is not a size");

        model.setLaunchOptions({ name: 'vitest files' });
        model.setConfigText(JSON.stringify(config));
        const sid = await model.launchCustom();
        expect(sid).not.toBeNull();
        try {
          expect(model.selectedInfo?.name).toBe('vitest files');
          model.current!.setTab('files');
          const deadline = Date.now() + 10_000;
          while (model.current!.files.tree === null && Date.now() < deadline) {
            await new Promise(r => setTimeout(r, 20));
          }
          expect(model.current!.files.tree?.total_files).toBe(0);

          const csv = new File(['a,b\n1,2\n'], 'data.csv', {
            type: 'text/csv'
          });
          expect((await model.current!.files.upload([csv], 'in'))?.state).toBe(
            'done'
          );
          expect(asked).toEqual([]);
          // again: 409, asked, sent with overwrite=true
          const again = new File(['a,b\n3,4\n'], 'data.csv');
          expect(
            (await model.current!.files.upload([again], 'in'))?.state
          ).toBe('done');
          expect(asked.map(q => q.title)).toEqual(['Overwrite?']);
          expect(asked[0].body).toContain("'in/data.csv' already exists");
          expect(
            model.current!.files.tree?.tree.map(n => [n.path, n.type])
          ).toEqual([['in', 'directory']]);
          expect(
            model.current!.files.tree?.tree[0].children?.map(n => n.path)
          ).toEqual(['in/data.csv']);

          await model.current!.files.openFile('in/data.csv');
          const contentsPath = model.selectedInfo?.contents_path;
          if (typeof contentsPath === 'string') {
            expect(opened).toEqual([`${contentsPath}/in/data.csv`]);
          }
          model.hooks.openInLab = null;
          await model.current!.files.openFile('in/data.csv');
          expect(model.current!.files.preview).toMatchObject({
            path: 'in/data.csv',
            content: 'a,b\n3,4\n',
            language: 'csv'
          });

          await model.current!.files.downloadFile('in/data.csv');
          await model.current!.files.downloadWorkspace();
          expect(saved[0]).toEqual(['data.csv', 8]);
          expect(saved[1][0]).toBe(`${sid}-workspace.zip`);
          expect(saved[1][1]).toBeGreaterThan(100);

          const notebooks: unknown[] = [];
          const exported = await exportNotebook(
            api,
            {
              get: async () => {
                throw new Error('404');
              },
              save: async (path, options) => {
                notebooks.push(options.content);
                return { path };
              }
            },
            sid!,
            { info: model.selectedInfo }
          );
          expect(exported.path).toBe(`vitest-files-${sid!.slice(0, 8)}.ipynb`);
          expect(notebooks[0]).toMatchObject({ nbformat: 4 });
        } finally {
          asked.length = 0;
          const purged = await model.purge(sid!);
          expect(purged).toBe(true);
          expect(asked[0]?.title).toBe('Purge the session?');
        }
        const sessions = await api.sessions();
        expect(sessions.find(s => s.session_id === sid)).toBeUndefined();
      } finally {
        model.dispose();
      }
    }
  );
});
