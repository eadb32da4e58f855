// Starts a real `latchkey dev` (the workspace's debug build, or $LATCHKEY_BIN) in a temporary
// directory on free ports, with known secrets, and stops it when the test is done.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (clients/js/test/support → ../../../..). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The `latchkey` binary the tests run. */
export function latchkeyBinary() {
  if (process.env.LATCHKEY_BIN) return process.env.LATCHKEY_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, 'target');
  const path = join(target, 'debug', 'latchkey');
  if (!existsSync(path)) {
    throw new Error(`${path} does not exist: run \`cargo build\` first (or set LATCHKEY_BIN)`);
  }
  return path;
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const secret = () => randomBytes(32).toString('base64');

/** The PostgreSQL server the Rust tests use too (a fresh database per `latchkey dev`). */
const POSTGRES = process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function psql(sql) {
  return spawnSync('psql', [POSTGRES, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8', timeout: 30_000 });
}

/**
 * The backends to run on: SQLite always; PostgreSQL when it answers (skipped with a note
 * otherwise, except under CI=true where it must).
 */
export function backends() {
  const probe = psql('select 1');
  if (probe.status === 0) return ['sqlite', 'postgres'];
  const why = probe.error ? probe.error.message : probe.stderr.trim();
  if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${POSTGRES} is required under CI=true: ${why}`);
  console.log(`# PostgreSQL at ${POSTGRES} not reachable (${why}): PostgreSQL runs skipped`);
  return ['sqlite'];
}

/** A fresh database on the test server; named like the Rust tests' so CI sweeps leftovers. */
function createDatabase() {
  const name = `lk_test_js_${randomBytes(6).toString('hex')}`;
  const created = psql(`create database "${name}"`);
  if (created.status !== 0) throw new Error(`creating ${name}: ${created.stderr}`);
  const url = new URL(POSTGRES);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => psql(`drop database if exists "${name}" with (force)`) };
}

/**
 * Runs `latchkey dev` on `backend` (`sqlite` or `postgres`) with `env` on top of known secrets;
 * resolves once the gateway answers. Returns { url, syncSecret, env, dir, stop, output }.
 */
export async function startDev(env = {}, backend = 'sqlite') {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-js-'));
  const syncSecret = secret();
  const database = backend === 'postgres' ? createDatabase() : null;
  const devEnv = {
    LATCHKEY_DEV_DIR: join(dir, '.latchkey'),
    LATCHKEY_SYNC_SECRET: syncSecret,
    LATCHKEY_SEAL_KEY: secret(),
    LATCHKEY_ENCRYPTION_KEYS: `k1:${secret()}`,
    LATCHKEY_DATABASE_URL: database ? database.url : `sqlite://${join(dir, 'latchkey.db')}?mode=rwc`,
    LATCHKEY_AUTH_LISTEN: `127.0.0.1:${await freePort()}`,
    LATCHKEY_SETTINGS_LISTEN: `127.0.0.1:${await freePort()}`,
    LATCHKEY_GATEWAY_LISTEN: '127.0.0.1:0',
    LATCHKEY_SIGNING_KEY_REFRESH_SECS: '1',
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
    ...env,
  };
  const child = spawn(latchkeyBinary(), ['dev'], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...devEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`latchkey dev did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk;
      const match = /Open the Settings page: (http:\/\/[^/\s]+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        ok(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`latchkey dev exited with ${code}:\n${output}`));
    });
  });
  await waitReady(url);
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
    database?.drop();
  };
  return { url, syncSecret, env: devEnv, dir, stop, output: () => output };
}

async function waitReady(url) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url}/readyz never answered 200`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Runs the `latchkey` CLI with the dev instance's environment (e.g. `keys rotate-signing`). */
export function runCli(dev, args, extraEnv = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(latchkeyBinary(), args, {
      cwd: dev.dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: 'warn', ...dev.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => (code === 0 ? ok(output) : fail(new Error(`latchkey ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}
