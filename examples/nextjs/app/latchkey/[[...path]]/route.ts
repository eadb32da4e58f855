// /latchkey/…: the Latchkey Settings page and the API calls it makes, served under this app's
// origin (proxied to LATCHKEY_URL), so its token renewal through /api/latchkey/token is
// same-origin. Only the page's own routes pass; the app's cookies never do.
import { settingsPageProxy } from '@latchkey/client/next';

export const dynamic = 'force-dynamic';

const proxy = settingsPageProxy();
export const GET = proxy;
export const POST = proxy;
export const PUT = proxy;
export const PATCH = proxy;
export const DELETE = proxy;
