// Auth.js v5. Sign-in syncs the user to Latchkey (the callback below) and keeps their Latchkey
// user id in the session, so the app can get Latchkey tokens for them without any glue.
import { isLatchkeyError } from '@latchkey/client';
import NextAuth from 'next-auth';
import type { Provider } from 'next-auth/providers';
import Credentials from 'next-auth/providers/credentials';
import GitHub from 'next-auth/providers/github';
import Google from 'next-auth/providers/google';
import { latchkeyClient } from './lib/latchkey';

const providers: Provider[] = [];
// Google and GitHub are wired: they switch on when their credentials are set
// (AUTH_GOOGLE_ID/AUTH_GOOGLE_SECRET, AUTH_GITHUB_ID/AUTH_GITHUB_SECRET).
if (process.env.AUTH_GOOGLE_ID) providers.push(Google);
if (process.env.AUTH_GITHUB_ID) providers.push(GitHub);

// Demo sign-in for tests and a first try: any email, no password. On when no real provider is
// configured, or when DEMO_SIGNIN=true; DEMO_SIGNIN=false turns it off.
export const demoSignIn = process.env.DEMO_SIGNIN ? process.env.DEMO_SIGNIN === 'true' : providers.length === 0;
if (demoSignIn) {
  providers.push(
    Credentials({
      id: 'demo',
      name: 'Demo sign-in',
      credentials: { email: { label: 'Email', type: 'email' }, name: { label: 'Name', type: 'text' } },
      authorize(credentials) {
        const email = String(credentials?.email ?? '').trim().toLowerCase();
        if (!/^[^@\s]+@[^@\s]+$/.test(email)) return null;
        return { id: email, email, name: String(credentials?.name ?? '').trim() || email };
      },
    }),
  );
}

export const { handlers, auth, signIn, signOut } = NextAuth({
  providers,
  // `next start` on your own host: trust its Host header (set AUTH_URL behind a proxy instead).
  trustHost: true,
  session: { strategy: 'jwt' },
  pages: { signIn: '/' },
  callbacks: {
    // The sign-in callback: Auth.js hands over user, account and profile as they come.
    async signIn({ user, account, profile }) {
      try {
        const synced = await latchkeyClient.syncUser({ user, account, profile });
        user.latchkeyUserId = synced.user.id; // read by the jwt callback below
        return true;
      } catch (error) {
        if (!isLatchkeyError(error)) throw error;
        console.error('latchkey sync failed', { code: error.code, requestId: error.requestId, detail: error.detail });
        return `/?error=${encodeURIComponent(error.code)}`;
      }
    },
    jwt({ token, user }) {
      if (user?.latchkeyUserId) token.latchkeyUserId = user.latchkeyUserId;
      return token;
    },
    session({ session, token }) {
      if (typeof token.latchkeyUserId === 'string') session.latchkeyUserId = token.latchkeyUserId;
      return session;
    },
  },
});
