// GET /api/latchkey/token: a fresh Latchkey token for the signed-in user. The Settings page
// renews through it (same origin, with the app's session cookie).
import { tokenRoute } from '@latchkey/client/next';
import { auth } from '@/auth';
import { latchkeyClient, subjectOf } from '@/lib/latchkey';

export const dynamic = 'force-dynamic';

export const GET = tokenRoute({ client: latchkeyClient, subject: async () => subjectOf(await auth()) });
