// @vitest-environment jsdom
/**
 * A kernel run's code in its approval card is a fenced block no line of the code can
 * close early (the agent chooses the code, backticks included).
 */

import { describe, expect, it } from 'vitest';

import { fencedPython } from '../src/tools';

describe('fencedPython', () => {
  it('fences with more backticks than the code holds in a row', () => {
    expect(fencedPython('x = 1')).toBe('```python\nx = 1\n```');
    const sneaky = 's = """\n```\n<b>not code</b>\n````\n"""';
    const fenced = fencedPython(sneaky);
    const fence = fenced.slice(0, fenced.indexOf('python'));
    expect(fence).toBe('`````');
    expect(fenced.endsWith(`\n${fence}`)).toBe(true);
    // the code itself is inside, unchanged
    expect(
      fenced.slice(fence.length + 'python\n'.length, -fence.length - 1)
    ).toBe(sneaky);
  });
});
