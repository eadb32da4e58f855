// Latchkey Settings page: refresh tokens. Loaded before app.js (both `defer`), so it reads the
// address before app.js does. A page opened with `#refresh_token=lkr_…` (beside `#token=…`)
// keeps the refresh token in sessionStorage (this tab only), removes it from the address bar at
// once, and renews the access token through `POST api/auth/refresh` — app.js asks
// `LatchkeyRefresh.renew()` within a minute of expiry and on TOKEN_EXPIRED. Each answer's
// rotated refresh token replaces the one sent; one exchange at a time, so the page never
// presents a retired token (that would revoke the whole family).
'use strict';

const LatchkeyRefresh = (() => {
  const REFRESH_KEY = 'latchkey.refresh';
  const ACCESS_KEY = 'latchkey.token';

  // Moves `refresh_token` from the fragment into sessionStorage; the rest of the fragment
  // (token, renew) is left for app.js.
  function takeFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const value = params.get('refresh_token');
    if (value === null) return;
    params.delete('refresh_token');
    if (value) sessionStorage.setItem(REFRESH_KEY, value);
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }

  function held() { return Boolean(sessionStorage.getItem(REFRESH_KEY)); }

  function forget() { sessionStorage.removeItem(REFRESH_KEY); }

  // One exchange at a time; true when the page holds a fresh access token. A refusal
  // (REFRESH_TOKEN_*: expired, reused, revoked) drops the refresh token: signing in again is
  // the only way on. A network failure keeps it for the next try.
  let exchanging = null;
  function renew() {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    if (!refreshToken) return Promise.resolve(false);
    if (!exchanging) {
      exchanging = fetch('api/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      })
        .then(async (response) => {
          const data = await response.json().catch(() => null);
          if (!response.ok || !data || typeof data.access_token !== 'string' || typeof data.refresh_token !== 'string') {
            if (response.status === 401 || response.status === 403) forget();
            return false;
          }
          sessionStorage.setItem(REFRESH_KEY, data.refresh_token);
          sessionStorage.setItem(ACCESS_KEY, data.access_token);
          return true;
        })
        .catch(() => false)
        .finally(() => { exchanging = null; });
    }
    return exchanging;
  }

  takeFromFragment();
  return { held, renew, forget };
})();
