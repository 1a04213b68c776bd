//! Bearer tokens: HS256 with a shared secret, RS256, ES256 and EdDSA with the identity
//! provider's public keys (a file, or its JWKS URL); verification with clear reasons, claims
//! read at configurable paths, and minting for development.
use super::Role;
use super::jwks::{self, Refetch, RemoteKeys};
use super::keys::{self, Key, KeyKind};
use crate::error::Error;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The claims cnscd reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Where in the token's claims the service finds roles, units, teams and the client id: dotted
/// paths (`realm_access.roles`, `azp`); a claim whose name itself holds dots is found too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPaths {
    pub roles: String,
    pub units: String,
    pub teams: String,
    pub client: String,
}

impl Default for ClaimPaths {
    fn default() -> Self {
        Self {
            roles: "roles".into(),
            units: "units".into(),
            teams: "teams".into(),
            client: "client_id".into(),
        }
    }
}

/// How a [`TokenVerifier`] is made: any of a shared secret, public keys and a JWKS URL.
#[derive(Default)]
pub struct VerifierBuilder {
    secret: Option<String>,
    public_keys: Vec<Key>,
    jwks_url: Option<String>,
    jwks_refetch_interval: Option<Duration>,
    issuer: Option<String>,
    audience: Option<String>,
    claims: ClaimPaths,
}

impl VerifierBuilder {
    /// Accepts HS256 tokens signed with this secret (at least 16 bytes).
    pub fn hs256(mut self, secret: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 16,
            "CNSCD_JWT_SECRET must be at least 16 bytes long"
        );
        self.secret = Some(secret.to_owned());
        Ok(self)
    }

    /// Accepts tokens signed by the keys of a PEM file or JWKS document (its text).
    pub fn public_keys(mut self, text: &str, source: &str) -> anyhow::Result<Self> {
        self.public_keys.extend(keys::parse_document(text, source)?);
        Ok(self)
    }

    /// Accepts tokens signed by the keys of the file at `path` (PEM or JWKS).
    pub fn public_keys_file(self, path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("Failed to read CNSCD_JWT_PUBLIC_KEYS `{path}`: {e}"))?;
        self.public_keys(&text, &format!("CNSCD_JWT_PUBLIC_KEYS `{path}`"))
    }

    /// Accepts tokens signed by the keys published at this JWKS URL.
    pub fn jwks_url(mut self, url: &str) -> Self {
        self.jwks_url = Some(url.to_owned());
        self
    }

    /// Shortest time between refetches of the JWKS on an unknown `kid` (one minute unless
    /// set; tests shorten it).
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = Some(interval);
        self
    }

    /// Tokens must carry this `iss`.
    pub fn issuer(mut self, issuer: Option<&str>) -> Self {
        self.issuer = issuer.map(str::to_owned);
        self
    }

    /// Tokens must carry this `aud`.
    pub fn audience(mut self, audience: Option<&str>) -> Self {
        self.audience = audience.map(str::to_owned);
        self
    }

    pub fn claim_paths(mut self, claims: ClaimPaths) -> Self {
        self.claims = claims;
        self
    }

    /// The verifier; with a JWKS URL, fetches its keys first (see [`RemoteKeys::start`]).
    pub async fn build(self) -> anyhow::Result<TokenVerifier> {
        anyhow::ensure!(
            self.secret.is_some() || !self.public_keys.is_empty() || self.jwks_url.is_some(),
            "no way to verify tokens: set CNSCD_JWT_SECRET, CNSCD_JWT_PUBLIC_KEYS or CNSCD_JWKS_URL"
        );
        for (name, path) in [
            ("CNSCD_JWT_ROLES_CLAIM", &self.claims.roles),
            ("CNSCD_JWT_UNITS_CLAIM", &self.claims.units),
            ("CNSCD_JWT_TEAMS_CLAIM", &self.claims.teams),
            ("CNSCD_JWT_CLIENT_CLAIM", &self.claims.client),
        ] {
            anyhow::ensure!(
                !path.is_empty() && path.split('.').all(|p| !p.is_empty()),
                "{name} `{path}` is not a claim path (names joined by dots, e.g. realm_access.roles)"
            );
        }
        let remote = match &self.jwks_url {
            Some(url) => Some(
                RemoteKeys::start(
                    url,
                    self.jwks_refetch_interval
                        .unwrap_or(jwks::DEFAULT_REFETCH_INTERVAL),
                )
                .await?,
            ),
            None => None,
        };
        self.finish(remote)
    }

    fn finish(self, remote: Option<Arc<RemoteKeys>>) -> anyhow::Result<TokenVerifier> {
        let secret = match &self.secret {
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())?),
            None => None,
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.validate_nbf = true;
        // A configured issuer or audience is only enforced when the claim must be present:
        // jsonwebtoken checks `iss`/`aud` against the configured values only when the token
        // carries them.
        let mut required = vec!["exp", "sub"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if self.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(TokenVerifier(Arc::new(Inner {
            secret,
            public_keys: self.public_keys,
            remote,
            validation,
            claims: self.claims,
        })))
    }
}

/// Verifies bearer tokens against the configured keys, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier(Arc<Inner>);

struct Inner {
    secret: Option<DecodingKey>,
    /// From `CNSCD_JWT_PUBLIC_KEYS`.
    public_keys: Vec<Key>,
    /// From `CNSCD_JWKS_URL`.
    remote: Option<Arc<RemoteKeys>>,
    /// Claims checks; its `algorithms` is set per token.
    validation: Validation,
    claims: ClaimPaths,
}

/// The header fields the key is chosen by.
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

impl TokenVerifier {
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// A verifier of HS256 tokens only.
    pub fn hs256(
        secret: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::builder()
            .hs256(secret)?
            .issuer(issuer)
            .audience(audience)
            .finish(None)
    }

    /// The algorithms accepted, for messages.
    fn accepted(&self) -> String {
        let mut names = Vec::new();
        if self.0.secret.is_some() {
            names.push("HS256");
        }
        if !self.0.public_keys.is_empty() || self.0.remote.is_some() {
            names.extend([
                "RS256", "ES256", "EdDSA", "RS384", "RS512", "PS256", "PS384", "PS512", "ES384",
            ]);
        }
        names.join(", ")
    }

    /// Checks size, algorithm, key, signature, time, issuer and audience claims and that the
    /// token carries a role this service knows; says plainly which check failed.
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        // Refused before anything is decoded: a huge header costs base64 and JSON work.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthenticated(format!(
                "invalid token: the bearer token is {} bytes long; at most {MAX_TOKEN_BYTES} \
                 bytes are accepted",
                token.len()
            )));
        }
        let header = read_header(token)?;
        let alg = match Algorithm::from_str(&header.alg) {
            Ok(a) if a == Algorithm::HS256 && self.0.secret.is_some() => a,
            Ok(a) if keys::ACCEPTED.contains(&a) && self.has_public_keys() => a,
            Ok(Algorithm::HS256) => {
                return Err(unauthenticated(format!(
                    "the token's algorithm `HS256` is not accepted: no shared secret is \
                     configured (accepted: {})",
                    self.accepted()
                )));
            }
            _ => {
                return Err(unauthenticated(format!(
                    "the token's algorithm `{}` is not accepted ({} expected)",
                    keys::shorten(&header.alg),
                    self.accepted()
                )));
            }
        };
        let value = if alg == Algorithm::HS256 {
            let Some(secret) = &self.0.secret else {
                return Err(unauthenticated("no shared secret is configured".into()));
            };
            self.decode(token, secret, alg)?
        } else {
            self.decode_with_public_keys(token, alg, header.kid.as_deref())
                .await?
        };
        let claims = self.claims(value)?;
        check_roles(&claims)?;
        Ok(claims)
    }

    fn has_public_keys(&self) -> bool {
        !self.0.public_keys.is_empty() || self.0.remote.is_some()
    }

    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Value, Error> {
        let mut validation = self.0.validation.clone();
        validation.algorithms = vec![alg];
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Error::Unauthenticated(describe(e.kind())))
    }

    /// Chooses the key by `kid` (refetching the provider's keys once when it is unknown),
    /// checks it fits the algorithm, and verifies.
    async fn decode_with_public_keys(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Value, Error> {
        let mut fetched = self.fetched_keys();
        let mut refetch = None;
        // A kid no key has: the provider may have rotated it in (even when PEM keys without a
        // kid could be tried).
        if let (Some(kid), Some(remote)) = (kid, &self.0.remote)
            && !self
                .keys(&fetched)
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid))
        {
            refetch = Some(remote.refetch_for_unknown_kid().await);
            fetched = self.fetched_keys();
        }
        let keys = self.keys(&fetched);
        let candidates = candidates(&keys, kid);
        if candidates.is_empty() {
            let known: Vec<String> = keys.iter().map(|k| k.name()).take(10).collect();
            let why = match (&refetch, &self.0.remote) {
                (Some(Refetch::TooSoon), Some(remote)) => format!(
                    "; the identity provider's keys were refetched less than {} ago",
                    humantime::format_duration(remote.interval())
                ),
                // Why is in the log (`refetch_for_unknown_kid`): the provider's address and
                // answer are no business of an unauthenticated caller.
                (Some(Refetch::Failed(_)), _) => {
                    "; the identity provider's keys could not be fetched just now".to_owned()
                }
                _ => String::new(),
            };
            let which = match kid {
                Some(kid) => format!(
                    "the token's key id (kid) `{}` is unknown",
                    keys::shorten(kid)
                ),
                None => {
                    "the token names no key id (kid) and no key without one is configured".into()
                }
            };
            return Err(unauthenticated(format!(
                "{which} (known: {}){why}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let fitting: Vec<&Key> = candidates
            .iter()
            .copied()
            .filter(|k| k.accepts(alg))
            .collect();
        if fitting.is_empty() {
            let key = candidates[0];
            let reason = match key.alg {
                Some(pinned) if key.fits(alg) => format!(
                    "the key {} is for `{pinned:?}` only, not for the token's algorithm `{alg:?}`",
                    key.name()
                ),
                _ => format!(
                    "the key {} is of the wrong type for the token's algorithm `{alg:?}`: it is \
                     {}, and `{alg:?}` needs {}",
                    key.name(),
                    key.kind.label(),
                    KeyKind::needed_by(alg)
                ),
            };
            return Err(unauthenticated(reason));
        }
        let mut first_error = None;
        for key in fitting {
            match self.decode(token, &key.decoding, alg) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| unauthenticated("the token cannot be verified".into())))
    }

    /// The keys fetched from the provider now (none without one).
    fn fetched_keys(&self) -> Arc<Vec<Key>> {
        self.0.remote.as_ref().map(|r| r.keys()).unwrap_or_default()
    }

    /// The configured public keys and `fetched`.
    fn keys<'a>(&'a self, fetched: &'a [Key]) -> Vec<&'a Key> {
        self.0.public_keys.iter().chain(fetched).collect()
    }

    /// The claims cnscd reads, found at the configured paths.
    fn claims(&self, value: Value) -> Result<Claims, Error> {
        let paths = &self.0.claims;
        let sub = match value.get("sub") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(unauthenticated("the `sub` claim is not a string".into())),
        };
        let client_id = match find(&value, &paths.client) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(unauthenticated(format!(
                    "the `{}` claim (the client id) is not a string",
                    paths.client
                )));
            }
        };
        Ok(Claims {
            exp: value.get("exp").and_then(Value::as_i64).unwrap_or_default(),
            iat: value.get("iat").and_then(Value::as_i64),
            nbf: value.get("nbf").and_then(Value::as_i64),
            iss: value.get("iss").and_then(Value::as_str).map(str::to_owned),
            aud: value.get("aud").cloned(),
            roles: strings(&value, &paths.roles, "roles")?,
            units: strings(&value, &paths.units, "units")?,
            teams: strings(&value, &paths.teams, "teams")?,
            client_id,
            sub,
        })
    }
}

/// Keys that may have signed a token with this `kid`: those with that kid; without such a key
/// (or without a kid), the keys that have none (PEM keys); without a kid, every key.
fn candidates<'a>(keys: &[&'a Key], kid: Option<&str>) -> Vec<&'a Key> {
    match kid {
        Some(kid) => {
            let exact: Vec<&Key> = keys
                .iter()
                .copied()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if exact.is_empty() {
                keys.iter().copied().filter(|k| k.kid.is_none()).collect()
            } else {
                exact
            }
        }
        None => keys.to_vec(),
    }
}

/// The claim at a dotted path: the name as a whole first (`https://example.org/roles`), then
/// step by step (`realm_access.roles`).
fn find<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, step| v.get(step))
}

/// A list of strings (or one string) at `path`; absent is empty.
fn strings(claims: &Value, path: &str, what: &str) -> Result<Vec<String>, Error> {
    let malformed = || {
        unauthenticated(format!(
            "the `{path}` claim ({what}) is neither a list of strings nor a string"
        ))
    };
    match find(claims, path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(malformed))
            .collect(),
        Some(_) => Err(malformed()),
    }
}

fn unauthenticated(reason: String) -> Error {
    Error::Unauthenticated(format!("invalid token: {reason}"))
}

/// The token's `alg` and `kid`, read without the library: an algorithm it does not know
/// (`none`) would otherwise be reported as a malformed token.
fn read_header(token: &str) -> Result<TokenHeader, Error> {
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or_else(|| unauthenticated("the token is malformed".into()))?;
    let Some(alg) = header.get("alg").and_then(Value::as_str) else {
        return Err(unauthenticated("the token's header has no `alg`".into()));
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(unauthenticated("the token's `kid` is not a string".into())),
    };
    Ok(TokenHeader {
        alg: alg.to_owned(),
        kid,
    })
}

/// Largest bearer token accepted (8 KiB); larger Authorization headers are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A token must carry at least one role the service knows: a token without one would be an
/// authenticated caller that may do nothing, which hides a misconfigured identity provider.
fn check_roles(claims: &Claims) -> Result<(), Error> {
    if claims.roles.iter().any(|r| Role::parse(r).is_some()) {
        return Ok(());
    }
    let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let got = if claims.roles.is_empty() {
        "none".to_owned()
    } else {
        claims
            .roles
            .iter()
            .take(10)
            .map(|r| format!("`{}`", r.chars().take(40).collect::<String>()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::Unauthenticated(format!(
        "invalid token: the token carries no role this service knows ({}); its roles: {got}",
        known.join(", ")
    )))
}

fn describe(kind: &ErrorKind) -> String {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "the token's signature does not match",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm does not fit the key"
        }
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
        ErrorKind::InvalidAudience => "the token's audience is not accepted",
        ErrorKind::MissingRequiredClaim(c) => {
            return format!("invalid token: the `{c}` claim is missing");
        }
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "the token is malformed"
        }
        ErrorKind::InvalidClaimFormat(c) => {
            return format!("invalid token: the `{c}` claim is malformed");
        }
        ErrorKind::Json(_) => "the token's claims are malformed",
        _ => "the token cannot be verified",
    };
    format!("invalid token: {reason}")
}

/// Signs claims with an HS256 secret (the `token` command and tests).
pub fn mint(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    let key = EncodingKey::from_secret(secret.as_bytes())?;
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &key,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_found_at_dotted_paths_and_whole_names() {
        let claims = json!({
            "realm_access": { "roles": ["VIEWER", "offline_access"] },
            "https://example.org/roles": ["ADMIN"],
            "units": "169",
        });
        assert_eq!(
            strings(&claims, "realm_access.roles", "roles").ok(),
            Some(vec!["VIEWER".to_owned(), "offline_access".to_owned()])
        );
        assert_eq!(
            strings(&claims, "https://example.org/roles", "roles").ok(),
            Some(vec!["ADMIN".to_owned()])
        );
        assert_eq!(
            strings(&claims, "units", "units").ok(),
            Some(vec!["169".to_owned()])
        );
        assert_eq!(
            strings(&claims, "resource_access.cnscd.roles", "roles").ok(),
            Some(vec![])
        );
        let err = strings(&claims, "realm_access", "roles").err();
        assert!(err.is_some_and(|e| e.message().contains("`realm_access` claim")));
    }
}
