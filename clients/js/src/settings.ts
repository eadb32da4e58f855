/**
 * One user's settings through the gateway's `/api/settings` routes, acting as the user whose
 * token is given. Values are never read back: the list is masked (length and last characters).
 */

import { send, type Transport } from './http.js';

/** A stored setting as Latchkey shows it: masked, never plaintext. */
export interface MaskedSetting {
  name: string;
  /** The value masked, e.g. `****3abc` (no characters shown for values under 12). */
  masked: string;
  length: number;
  /** RFC 3339 time of the last write. */
  updatedAt: string;
}

/** A warning about one `.env` line that was still accepted (duplicates, `$NAME`, …). */
export interface ImportWarning {
  line: number;
  name?: string;
  message: string;
}

/** What an import did (or, with `dryRun`, would do). */
export interface ImportResult {
  /** False for a dry run: nothing was saved. */
  applied: boolean;
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
  warnings: ImportWarning[];
  /** The settings after the import (as they would be, for a dry run). */
  settings: MaskedSetting[];
}

/** How a `.env` import treats names already stored. */
export interface ImportOptions {
  /** `merge` (default) adds and updates, keeps the rest; `replace` makes the file the whole set. */
  mode?: 'merge' | 'replace';
  /** Preview only: answers what would change, saves nothing. */
  dryRun?: boolean;
}

/** The settings routes for one user's token. */
export interface SettingsClient {
  /** Every setting, masked. */
  list(): Promise<MaskedSetting[]>;
  /** Sets the given names (`null` deletes one), atomically; answers the new list. */
  patch(changes: Record<string, string | null>): Promise<MaskedSetting[]>;
  /** Makes `values` the whole set, atomically; answers the new list. */
  replace(values: Record<string, string>): Promise<MaskedSetting[]>;
  /** Imports a `.env` text; any bad line refuses the whole import with every bad line named. */
  importDotenv(dotenv: string, options?: ImportOptions): Promise<ImportResult>;
  /** Deletes one setting; `NOT_FOUND` when there is none by that name. */
  remove(name: string): Promise<void>;
}

interface WireSetting {
  name: string;
  masked: string;
  length: number;
  updated_at: string;
}

const masked = (list: unknown): MaskedSetting[] =>
  ((list as { settings?: WireSetting[] } | null)?.settings ?? []).map(fromWire);

function fromWire(s: WireSetting): MaskedSetting {
  return { name: s.name, masked: s.masked, length: s.length, updatedAt: s.updated_at };
}

function importResult(value: unknown): ImportResult {
  const v = value as Omit<ImportResult, 'settings' | 'warnings'> & {
    settings: WireSetting[];
    warnings: Array<{ line: number; name?: string | null; message: string }>;
  };
  return {
    applied: v.applied,
    added: v.added ?? [],
    changed: v.changed ?? [],
    removed: v.removed ?? [],
    unchanged: v.unchanged ?? [],
    warnings: (v.warnings ?? []).map((w) => (w.name ? { line: w.line, name: w.name, message: w.message } : { line: w.line, message: w.message })),
    settings: (v.settings ?? []).map(fromWire),
  };
}

/** The settings client acting with `token`. */
export function settingsClient(transport: Transport, token: string): SettingsClient {
  const headers = { authorization: `Bearer ${token}` };
  return {
    list: async () => masked(await send(transport, { method: 'GET', path: '/api/settings', headers })),
    patch: async (changes) =>
      masked(await send(transport, { method: 'PATCH', path: '/api/settings', headers, json: { settings: changes } })),
    replace: async (values) =>
      masked(await send(transport, { method: 'PUT', path: '/api/settings', headers, json: { settings: values } })),
    importDotenv: async (dotenv, options = {}) =>
      importResult(
        await send(transport, {
          method: 'POST',
          path: '/api/settings/import',
          headers,
          json: { dotenv, mode: options.mode ?? 'merge', dry_run: options.dryRun ?? false },
        }),
      ),
    remove: async (name) => {
      await send(transport, { method: 'DELETE', path: `/api/settings/${encodeURIComponent(name)}`, headers });
    },
  };
}
