// Mints Auth.js session tokens exactly as a web app's Auth.js does, for Latchkey's interop test.
//
// Input (environment): MINT_SECRET (the web app's secret), MINT_OTHER_SECRET (another one),
// MINT_EMAIL (the user's email). Output (stdout): one JSON object of tokens:
//   { "v4": { "valid", "expired", "other_secret" },
//     "v5": { "valid", "valid_secure", "expired", "other_secret" } }
// "expired" tokens expired an hour ago; "valid_secure" uses the HTTPS cookie name as its salt.
import { encode as encodeV5 } from "@auth/core/jwt";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { encode: encodeV4 } = require("next-auth/jwt");

const secret = process.env.MINT_SECRET;
const other = process.env.MINT_OTHER_SECRET;
const email = process.env.MINT_EMAIL;
if (!secret || !other || !email) {
  console.error("set MINT_SECRET, MINT_OTHER_SECRET and MINT_EMAIL");
  process.exit(2);
}

// What Auth.js puts in a session token by default: name, email, picture, sub (the app's user id).
const token = { name: "Ada Lovelace", email, picture: null, sub: "web-app-user-42" };
const HOUR = 60 * 60;
const v5 = (secret, salt, maxAge) => encodeV5({ token, secret, salt, maxAge });
const v4 = (secret, maxAge) => encodeV4({ token, secret, maxAge });

const plain = "authjs.session-token";
const secure = "__Secure-authjs.session-token";
const out = {
  v4: {
    valid: await v4(secret, HOUR),
    expired: await v4(secret, -HOUR),
    other_secret: await v4(other, HOUR),
  },
  v5: {
    valid: await v5(secret, plain, HOUR),
    valid_secure: await v5(secret, secure, HOUR),
    expired: await v5(secret, plain, -HOUR),
    other_secret: await v5(other, plain, HOUR),
  },
};
process.stdout.write(JSON.stringify(out));
