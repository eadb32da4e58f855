// Inside the Latchkey repository this example links @latchkey/client from ../../clients/js, which
// must be compiled before Next.js bundles it. Copied elsewhere, the app uses the installed package
// (already built by `npm pack`), so there is nothing to do.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const client = resolve(dirname(fileURLToPath(import.meta.url)), '../../../clients/js');
if (existsSync(resolve(client, 'tsconfig.json'))) {
  execFileSync('npx', ['tsc', '-p', client], { stdio: 'inherit' });
}
