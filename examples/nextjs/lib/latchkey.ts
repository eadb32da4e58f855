// The app's one Latchkey client (server side only: it holds the sync secret). It reads
// LATCHKEY_URL and LATCHKEY_SYNC_SECRET from the environment at the first call.
import { latchkey, type TokenSubject } from '@latchkey/client';
import type { Session } from 'next-auth';

export const latchkeyClient = latchkey();

/** Whose Latchkey token the signed-in session may have: its Latchkey user id, else its email. */
export function subjectOf(session: Session | null): TokenSubject | null {
  if (session?.latchkeyUserId) return { userId: session.latchkeyUserId };
  if (session?.user?.email) return { email: session.user.email };
  return null;
}
