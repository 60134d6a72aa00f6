/**
 * src/schema.ts: the TypeScript types of the REST contract, generated from
 * agcluster_jupyter/openapi.yaml with openapi-typescript and formatted with the
 * project's Prettier config.
 *
 *   node scripts/rest.mjs           write src/schema.ts       (npm run gen:rest)
 *   node scripts/rest.mjs --check   fail when it is not what a fresh generation gives
 *                                   (npm run check:rest)
 */

import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import openapiTS, { astToString } from 'openapi-typescript';
import * as prettier from 'prettier';

const SPEC = new URL('../../agcluster_jupyter/openapi.yaml', import.meta.url);
const TARGET = fileURLToPath(new URL('../src/schema.ts', import.meta.url));

const HEADER = `/**
 * The REST contract's types, generated from agcluster_jupyter/openapi.yaml by
 * openapi-typescript: do not edit.  \`npm run gen:rest\` writes it again after the spec
 * changes; \`npm run check:rest\` (run by the tests) fails while it is out of date.
 */

`;

async function generate() {
  const ast = await openapiTS(SPEC);
  const options = (await prettier.resolveConfig(TARGET)) ?? {};
  return prettier.format(HEADER + astToString(ast), {
    ...options,
    filepath: TARGET
  });
}

const fresh = await generate();
if (process.argv.includes('--check')) {
  const current = await readFile(TARGET, 'utf8').catch(() => '');
  if (current !== fresh) {
    console.error(
      'src/schema.ts is not what agcluster_jupyter/openapi.yaml generates: ' +
        'run `npm run gen:rest` and commit the result'
    );
    process.exit(1);
  }
  console.log('src/schema.ts matches agcluster_jupyter/openapi.yaml');
} else {
  await writeFile(TARGET, fresh);
  console.log('wrote src/schema.ts');
}
