// /settings: the signed-in user's keys, masked, listed by the server through @latchkey/client,
// and the link to the Latchkey Settings page (served under /latchkey/) with a minted token.
import { isLatchkeyError, type AccessToken, type MaskedSetting } from '@latchkey/client';
import { settingsPageUrl } from '@latchkey/client/next';
import Link from 'next/link';
import { redirect } from 'next/navigation';
import { auth } from '@/auth';
import { latchkeyClient, subjectOf } from '@/lib/latchkey';

export const dynamic = 'force-dynamic';

export default async function SettingsPage() {
  const subject = subjectOf(await auth());
  if (!subject) redirect('/');
  let token: AccessToken | null = null;
  let settings: MaskedSetting[] = [];
  let problem: string | null = null;
  try {
    token = await latchkeyClient.tokenFor(subject);
    settings = await latchkeyClient.settings(token).list();
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    // One switch on the catalogue code turns any refusal into words for this page.
    switch (error.code) {
      case 'UPSTREAM_UNAVAILABLE':
      case 'DEADLINE_EXCEEDED':
        problem = 'Latchkey is not answering right now; try again in a moment.';
        break;
      case 'USER_NOT_SYNCED':
        problem = 'Your account is not in Latchkey yet: sign out and in again.';
        break;
      default:
        problem = `${error.code}: ${error.detail}`;
    }
  }
  return (
    <main>
      <h1>Your API keys</h1>
      {problem && <p className="error" role="alert" id="problem">{problem}</p>}
      {token && (
        <p>
          <a className="button" id="open-latchkey" href={settingsPageUrl({ token })}>
            Open the Latchkey settings page
          </a>
        </p>
      )}
      {settings.length === 0 ? (
        <p id="no-settings">No keys stored yet.</p>
      ) : (
        <table id="app-settings">
          <thead>
            <tr><th>Name</th><th>Value</th><th>Updated</th></tr>
          </thead>
          <tbody>
            {settings.map((s) => (
              <tr key={s.name} data-name={s.name}>
                <td><code>{s.name}</code></td>
                <td><code>{s.masked}</code></td>
                <td>{new Date(s.updatedAt).toLocaleString('en-GB', { timeZone: 'UTC' })} UTC</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p><Link href="/">Back</Link></p>
    </main>
  );
}
