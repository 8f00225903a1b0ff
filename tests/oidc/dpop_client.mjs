// panva's openid-client as a real DPoP client (RFC 9449) of authserver:
//   node dpop_client.mjs ISSUER CLIENT_ID CLIENT_SECRET
// Discovery, a client_credentials grant bound to a fresh ES256 key, then a call of the
// management API with the bound token and a proof. Prints one JSON line of what it saw.
import * as client from "openid-client";

const [issuer, clientId, clientSecret] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests], // loopback http in the tests
  algorithm: "oauth2", // RFC 8414 metadata (/.well-known/oauth-authorization-server)
});
const keyPair = await client.randomDPoPKeyPair("ES256");
const DPoP = client.getDPoPHandle(config, keyPair);
const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
const api = new URL("/api/v1/iam/personal_clients", issuer);
const response = await client.fetchProtectedResource(config, tokens.access_token, api, "GET", undefined, undefined, { DPoP });
const listed = await response.json();
console.log(JSON.stringify({
  token_type: tokens.token_type,
  status: response.status,
  listed: Array.isArray(listed.list) ? listed.list.length : null,
}));
