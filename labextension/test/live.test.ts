/**
 * The client against a real Jupyter server with agcluster (scripted model): set
 * AGC_LIVE_URL (the server's base URL) and AGC_LIVE_TOKEN.  pytest runs it that way
 * (tests/integration/test_labextension_live.py); plain `npm test` has no server to use.
 */

import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { AgClusterAPI, ApiError } from '../src/api';
import { AgentEvent } from '../src/events';
import { applyEvents, emptyView, markdown } from '../src/reducer';
import { EventFollower, streamTurn } from '../src/sse';

const url = process.env.AGC_LIVE_URL;
const token = process.env.AGC_LIVE_TOKEN ?? '';

describe.skipIf(!url)('against a live server', () => {
  const api = new AgClusterAPI(
    ServerConnection.makeSettings({ baseUrl: url, token })
  );

  it(
    'launches, streams a turn, follows the log and stops',
    { timeout: 180_000 },
    async () => {
      const health = await api.health();
      expect(health.status).toBeTypeOf('string');
      const configs = await api.configs();
      expect(configs.map(c => c.id)).toContain('code-assistant');

      const bad = await api
        .launch({ config_id: 'no-such-preset' })
        .catch(e => e);
      expect(bad).toBeInstanceOf(ApiError);
      expect([400, 404]).toContain(bad.status);
      expect(bad.message).toContain('no-such-preset');

      const launched = await api.launch({
        config_id: 'code-assistant',
        name: 'vitest live'
      });
      const sid = launched.session_id;
      try {
        const followed: AgentEvent[] = [];
        const follower = new EventFollower(api, sid, {
          onEvent: e => followed.push(e)
        });
        const following = follower.start();

        const streamed: AgentEvent[] = [];
        const result = await streamTurn(api, sid, 'Say hello', {
          onEvent: e => streamed.push(e)
        });
        expect(streamed.at(-1)?.type).toBe('done');
        expect(result.lastSeq).toBe(streamed.at(-1)?.seq);
        const seqs = streamed.map(e => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);

        // the follower sees the same log (from seq 1), once each
        const deadline = Date.now() + 30_000;
        while (follower.lastSeq < result.lastSeq && Date.now() < deadline) {
          await new Promise(r => setTimeout(r, 50));
        }
        follower.stop();
        await following;
        const all = followed.map(e => e.seq);
        expect(all).toEqual(
          Array.from({ length: all.length }, (_, i) => i + 1)
        );

        const live = applyEvents(emptyView(sid), streamed);
        const replayed = applyEvents(emptyView(sid), followed);
        expect(
          live.entries.filter(e => e.role === 'user').map(e => e.text)
        ).toEqual(['Say hello']);
        expect(
          live.entries.some(e => e.role === 'assistant' && e.text.trim())
        ).toBe(true);
        expect(markdown(replayed).endsWith(markdown(live))).toBe(true);
        expect(live.busy).toBe(false);

        const info = await api.session(sid);
        expect(info.last_seq).toBeGreaterThanOrEqual(result.lastSeq);
      } finally {
        await api.stop(sid);
      }
      const sessions = await api.sessions();
      expect(sessions.find(s => s.session_id === sid)?.state).toMatch(/stopp/);
    }
  );
});
