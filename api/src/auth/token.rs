//! HS256 bearer tokens: verification with clear reasons, and minting for development.
use super::Role;
use crate::error::Error;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

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

/// Verifies bearer tokens against the configured key, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(
        secret: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 16,
            "CNSCD_JWT_SECRET must be at least 16 bytes long"
        );
        let key = DecodingKey::from_secret(secret.as_bytes())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.validate_nbf = true;
        // A configured issuer or audience is only enforced when the claim must be present:
        // jsonwebtoken checks `iss`/`aud` against the configured values only when the token
        // carries them.
        let mut required = vec!["exp", "sub"];
        if issuer.is_some() {
            required.push("iss");
        }
        if audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key, validation })
    }

    /// Checks size, signature, algorithm, time, issuer and audience claims and that the token
    /// carries a role this service knows; says plainly what is wrong.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        // Refused before anything is decoded: a huge header costs base64 and JSON work.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthenticated(format!(
                "invalid token: the bearer token is {} bytes long; at most {MAX_TOKEN_BYTES} \
                 bytes are accepted",
                token.len()
            )));
        }
        // Read the header ourselves first: an algorithm the library does not even know
        // (`none`) would otherwise be reported as malformed claims.
        let alg = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
            .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
        match alg.as_deref() {
            None => {
                return Err(Error::Unauthenticated(
                    "invalid token: the token is malformed".into(),
                ));
            }
            Some("HS256") => {}
            Some(other) => {
                return Err(Error::Unauthenticated(format!(
                    "invalid token: the token's algorithm `{other}` is not accepted (HS256 expected)"
                )));
            }
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| Error::Unauthenticated(describe(e.kind())))?;
        check_roles(&claims)?;
        Ok(claims)
    }
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
            "the token's algorithm is not accepted (HS256 expected)"
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
