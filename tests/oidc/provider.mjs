// The OpenID Connect provider of the tests: node-oidc-provider 9 on a free loopback port.
//
//   node provider.mjs            configuration in $PROVIDER_CONFIG (JSON):
//   {"accounts": {"alice": {"email": "alice@example.com", "email_verified": true, "name": "Alice"}},
//    "registration_token": "…"}
//
// Prints one JSON line when it listens: {"issuer": "http://127.0.0.1:PORT"}.
//
// - People sign in on node-oidc-provider's development pages (devInteractions): a
//   form with "login" (an account name above) and "password" (anything), then the
//   consent page ("Authorize", button "Continue").
// - Clients are registered by each test (RFC 7591, with registration_token), with
//   the redirect URI of the server that test starts.
// - email, email_verified and name are in the ID token (conformIdTokenClaims off),
//   except for accounts with "userinfo_only": true, whose ID token has none of
//   them: the relying party must ask the userinfo endpoint.
// - PKCE (S256) is required; RP-initiated logout is on (end_session_endpoint).
// - Test hook: POST /test/next-nonce {"nonce": "…"} makes the next authorization
//   request carry that nonce instead of the relying party's, so the ID token comes
//   back with a nonce the relying party did not send.
// - Its pages import a web font from another site; that line is taken out so a
//   browser driven by the tests never leaves loopback.
import * as crypto from "node:crypto";
import * as http from "node:http";

import Provider from "oidc-provider";

const config = JSON.parse(process.env.PROVIDER_CONFIG ?? "{}");
const accounts = config.accounts ?? {};
const ID_TOKEN_CLAIMS = new Set(["email", "email_verified", "name"]);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const signingKey = crypto
  .generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ format: "jwk" });

const provider = new Provider(issuer, {
  jwks: { keys: [{ ...signingKey, kid: "test-rs256", use: "sig", alg: "RS256" }] },
  cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true, initialAccessToken: config.registration_token },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims(use) {
        const claims = { sub: id };
        for (const [key, value] of Object.entries(account)) {
          if (key === "userinfo_only") continue;
          if (use === "id_token" && account.userinfo_only && ID_TOKEN_CLAIMS.has(key)) continue;
          claims[key] = value;
        }
        return claims;
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = "html";
    ctx.body = `<!DOCTYPE html><title>Provider error</title><h1>Provider error</h1><pre id="error">${JSON.stringify(
      out,
    ).replace(/</g, "&lt;")}</pre>`;
  },
});

let nextNonce = null;
provider.use(async (ctx, next) => {
  if (ctx.path === "/test/next-nonce" && ctx.method === "POST") {
    let body = "";
    for await (const chunk of ctx.req) body += chunk;
    nextNonce = JSON.parse(body).nonce;
    ctx.status = 204;
    return;
  }
  if (ctx.path === "/auth" && nextNonce !== null) {
    ctx.query = { ...ctx.query, nonce: nextNonce };
    nextNonce = null;
  }
  await next();
  if (typeof ctx.body === "string" && ctx.body.includes("fonts.googleapis.com")) {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g, "");
  }
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));
server.on("request", provider.callback());
console.log(JSON.stringify({ issuer }));

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
