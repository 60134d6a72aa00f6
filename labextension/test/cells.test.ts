import { describe, expect, it } from 'vitest';

import { splitCells } from '../src/cells';

describe('splitCells', () => {
  it('keeps a plain block as one code cell', () => {
    expect(
      splitCells('import pandas as pd\ndf = pd.read_csv("a.csv")\n')
    ).toEqual([
      {
        cell_type: 'code',
        source: 'import pandas as pd\ndf = pd.read_csv("a.csv")'
      }
    ]);
  });

  it('splits at # %% markers, markdown parts uncommented', () => {
    const code = [
      'import numpy as np',
      '# %% [markdown]',
      '# ## Fit',
      '# The model, fitted.',
      '# %% fit',
      'model.fit(x, y)',
      '',
      '# %%',
      ''
    ].join('\r\n');
    expect(splitCells(code)).toEqual([
      { cell_type: 'code', source: 'import numpy as np' },
      { cell_type: 'markdown', source: '## Fit\nThe model, fitted.' },
      { cell_type: 'code', source: 'model.fit(x, y)' }
    ]);
  });

  it('gives nothing for an empty block', () => {
    expect(splitCells('\n  \n')).toEqual([]);
  });
});
