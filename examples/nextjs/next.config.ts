import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NextConfig } from 'next';

// This example takes @latchkey/client from the repository (file:../../clients/js), which lies
// outside this folder: let the bundler and file tracing see the repository root.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const config: NextConfig = {
  // The Latchkey Settings page is served under /latchkey/ and its URLs are relative: keep the
  // trailing slash (the proxy itself redirects /latchkey to /latchkey/).
  skipTrailingSlashRedirect: true,
  turbopack: { root },
  outputFileTracingRoot: root,
  // `next dev` writes nothing into the project besides .next/.
  agentRules: false,
  experimental: { agentUpgrade: false },
};

export default config;
