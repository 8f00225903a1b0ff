// node-oidc-provider 9.x configured like authserver for the benchmark:
// client_credentials only, client_secret_basic, 600 s token lifetime, the same
// number of clients and scopes, introspection enabled, an ES256 signing key.
// With "jwt" as third argument, access tokens are ES256-signed JWTs (RFC 9068,
// through its resource indicators feature) like authserver's; otherwise they
// are its default opaque tokens. Differences that cannot be equalised: it keeps
// client secrets in plaintext (compared directly, no hashing), stores clients
// and opaque tokens in process memory, and has no source-network locks, expiry,
// lastUsedAt or audit trail to maintain.
// Usage: node peer.mjs PORT CLIENTS_JSON_FILE [jwt]
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, clientsFile, format] = process.argv.slice(2);
const clients = JSON.parse(readFileSync(clientsFile, "utf8")).map(([client_id, client_secret]) => ({
  client_id,
  client_secret,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: "client_secret_basic",
  id_token_signed_response_alg: "ES256",
  scope: "read write",
}));
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const features = {
  clientCredentials: { enabled: true },
  introspection: { enabled: true },
  devInteractions: { enabled: false },
};
if (format === "jwt") {
  features.resourceIndicators = {
    enabled: true,
    defaultResource: () => "urn:authserver:bench",
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({
      scope: "read write",
      accessTokenFormat: "jwt",
      accessTokenTTL: 600,
      jwt: { sign: { alg: "ES256" } },
    }),
  };
}
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  scopes: ["read", "write"],
  jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), use: "sig", alg: "ES256", kid: "bench" }] },
  features,
  ttl: { ClientCredentials: 600 },
});
provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
