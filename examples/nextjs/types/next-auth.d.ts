// The Latchkey user id travels from the sign-in callback through the JWT into the session.
import 'next-auth';
import 'next-auth/jwt';

declare module 'next-auth' {
  interface User {
    latchkeyUserId?: string;
  }
  interface Session {
    latchkeyUserId?: string;
  }
}

declare module 'next-auth/jwt' {
  interface JWT {
    latchkeyUserId?: string;
  }
}
