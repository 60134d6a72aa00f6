// @vitest-environment jsdom
/**
 * A kernel run's code in its approval card is a fenced block no line of the code can
 * close early (the agent chooses the code, backticks included).
 */

import { describe, expect, it } from 'vitest';

import { ToolCallNode } from '../src/reducer';
import { fencedPython, kernelToGrant } from '../src/tools';

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

describe('kernelToGrant', () => {
  const call = (over: Record<string, unknown>): ToolCallNode =>
    ({
      tool_use_id: 't',
      name: 'mcp__jupyter__inspect_variable',
      input: { notebook: 'fit.ipynb', name: 'df' },
      status: 'error',
      output:
        "not granted: the kernel of 'fit.ipynb' restarted since the user granted it",
      notes: [],
      childNodes: [],
      ...over
    }) as unknown as ToolCallNode;

  it('offers a grant only for a kernel tool refused for want of one', () => {
    expect(kernelToGrant(call({}))).toBe('fit.ipynb');
    expect(kernelToGrant(call({ status: 'ok' }))).toBeNull();
    expect(
      kernelToGrant(call({ output: 'denied: the user did not allow it' }))
    ).toBeNull();
    expect(kernelToGrant(call({ name: 'Bash' }))).toBeNull();
    // the notebook is the call's input, which the agent wrote: only a string is offered
    expect(kernelToGrant(call({ input: { notebook: 7 } }))).toBeNull();
  });
});
