// node-oidc-provider 9.x configured like authserver for the token benchmark:
// client_credentials only, client_secret_basic, 600 s token lifetime, the same
// 100 clients and scopes. Differences that cannot be equalised: it keeps client
// secrets in plaintext (compared directly, no hashing), stores clients and
// tokens in process memory, and issues opaque tokens by default; it has no
// source-network locks, expiry or lastUsedAt to maintain.
// Usage: node peer.mjs PORT CLIENTS_JSON_FILE
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, clientsFile] = process.argv.slice(2);
const clients = JSON.parse(readFileSync(clientsFile, "utf8")).map(([client_id, client_secret]) => ({
  client_id,
  client_secret,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: "client_secret_basic",
  scope: "read write",
}));
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  scopes: ["read", "write"],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: 600 },
});
provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
