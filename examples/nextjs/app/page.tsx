// Home: sign in (demo sign-in, or Google/GitHub when configured), or go on to settings.
import Link from 'next/link';
import { auth, demoSignIn, signIn, signOut } from '@/auth';

export const dynamic = 'force-dynamic';

const oauth = [
  { id: 'google', name: 'Google', on: Boolean(process.env.AUTH_GOOGLE_ID) },
  { id: 'github', name: 'GitHub', on: Boolean(process.env.AUTH_GITHUB_ID) },
].filter((p) => p.on);

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
      {error && <p className="error" role="alert">Sign-in failed: {error}</p>}
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
