// Home: sign in (demo sign-in, or Google/GitHub when configured), or go on to settings.
import Link from 'next/link';
import { auth, demoSignIn, signIn, signOut } from '@/auth';

export const dynamic = 'force-dynamic';

const oauth = [
  { id: 'google', name: 'Google', on: Boolean(process.env.AUTH_GOOGLE_ID) },
  { id: 'github', name: 'GitHub', on: Boolean(process.env.AUTH_GITHUB_ID) },
].filter((p) => p.on);

// What a failed sign-in means, by the code the sign-in callback passed on (Latchkey's catalogue
// code when syncUser was refused; Auth.js's own error name otherwise).
const SIGN_IN_ERRORS: Record<string, string> = {
  SYNC_SECRET_INVALID: "Latchkey refused this app's LATCHKEY_SYNC_SECRET: set the value Latchkey has (under latchkey dev: the LATCHKEY_SYNC_SECRET line of .latchkey/dev-secrets.env).",
  SYNC_SECRET_MISSING: 'LATCHKEY_SYNC_SECRET is not set in this app\'s environment.',
  UPSTREAM_UNAVAILABLE: 'Latchkey cannot be reached at LATCHKEY_URL: is it running (latchkey dev), and is the URL the one it printed?',
  DEADLINE_EXCEEDED: 'Latchkey did not answer in time; try again.',
  RATE_LIMITED: 'Too many sign-ins from here just now; wait a minute and try again.',
  INVALID_ARGUMENT: 'Latchkey refused this account\'s profile (see the app\'s log for the field).',
  CredentialsSignin: 'Enter a valid email address.',
};

export default async function Home({ searchParams }: { searchParams: Promise<{ error?: string }> }) {
  const session = await auth();
  const { error } = await searchParams;
  if (session?.user) {
    return (
      <main>
        <h1>Hello, {session.user.name}</h1>
        <div className="row">
          <Link className="button" href="/settings" id="to-settings">Your API keys</Link>
          <form
            action={async () => {
              'use server';
              await signOut({ redirectTo: '/' });
            }}
          >
            <button type="submit" className="quiet" id="sign-out">Sign out</button>
          </form>
        </div>
      </main>
    );
  }
  return (
    <main>
      <h1>Sign in</h1>
      {error && (
        <p className="error" role="alert" id="sign-in-error" data-code={error}>
          Sign-in failed ({error}). {SIGN_IN_ERRORS[error] ?? 'See the app\'s log.'}
        </p>
      )}
      {demoSignIn && (
        <form
          id="demo-sign-in"
          action={async (form: FormData) => {
            'use server';
            await signIn('demo', { email: form.get('email'), name: form.get('name'), redirectTo: '/settings' });
          }}
        >
          <label htmlFor="email">Email</label>
          <input id="email" name="email" type="email" required autoComplete="email" />
          <label htmlFor="name">Name</label>
          <input id="name" name="name" type="text" autoComplete="name" />
          <button type="submit">Sign in</button>
        </form>
      )}
      {oauth.map((p) => (
        <form
          key={p.id}
          action={async () => {
            'use server';
            await signIn(p.id, { redirectTo: '/settings' });
          }}
        >
          <button type="submit">Sign in with {p.name}</button>
        </form>
      ))}
    </main>
  );
}
