//! Public keys that verify asymmetric tokens (RS256, ES256, EdDSA): read from PEM blocks or a
//! JWKS document, each with its key id (`kid`, JWKS only) and the algorithms it may verify.
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::str::FromStr;

/// Asymmetric algorithms the service verifies.
pub const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What kind of key it is, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    /// An EC key from a PEM block (its curve is checked by the signature itself).
    Ec,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Rsa => "an RSA key",
            Self::Ec => "an EC key",
            Self::P256 => "an EC P-256 key",
            Self::P384 => "an EC P-384 key",
            Self::Ed25519 => "an Ed25519 key",
        }
    }

    fn family(self) -> AlgorithmFamily {
        match self {
            Self::Rsa => AlgorithmFamily::Rsa,
            Self::Ec | Self::P256 | Self::P384 => AlgorithmFamily::Ec,
            Self::Ed25519 => AlgorithmFamily::Ed,
        }
    }

    /// The kind of key an algorithm needs, for messages.
    pub fn needed_by(alg: Algorithm) -> &'static str {
        match alg {
            Algorithm::ES256 => "an EC P-256 key",
            Algorithm::ES384 => "an EC P-384 key",
            Algorithm::EdDSA => "an Ed25519 key",
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "a shared secret",
            _ => "an RSA key",
        }
    }
}

/// One public key.
#[derive(Clone)]
pub struct Key {
    /// The JWKS `kid`; PEM keys have none.
    pub kid: Option<String>,
    /// The JWKS `alg`, when the document pins the key to one algorithm.
    pub alg: Option<Algorithm>,
    pub kind: KeyKind,
    pub decoding: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Whether the key is of the type `alg` needs (RSA, the EC curve, Ed25519).
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kind.family() == alg.family()
            && match self.kind {
                KeyKind::P256 => alg == Algorithm::ES256,
                KeyKind::P384 => alg == Algorithm::ES384,
                _ => true,
            }
    }

    /// How the key is named in messages.
    pub fn name(&self) -> String {
        match &self.kid {
            Some(kid) => format!("`{}`", shorten(kid)),
            None => "from the PEM file".to_owned(),
        }
    }
}

/// At most 64 characters of a caller-controlled string, for messages.
pub fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Reads a file of PEM public keys or a JWKS document (`{"keys": [...]}`).
pub fn parse_document(text: &str, source: &str) -> anyhow::Result<Vec<Key>> {
    let keys = if text.trim_start().starts_with('{') {
        parse_jwks(text, source)?
    } else {
        parse_pem(text, source)?
    };
    anyhow::ensure!(
        !keys.is_empty(),
        "{source} holds no public key this service can use (RSA, EC P-256/P-384 or Ed25519)"
    );
    Ok(keys)
}

/// Every `PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE` block of a PEM file.
fn parse_pem(text: &str, source: &str) -> anyhow::Result<Vec<Key>> {
    let blocks = pem::parse_many(text)
        .map_err(|e| anyhow::anyhow!("{source} is neither a JWKS document nor PEM: {e}"))?;
    anyhow::ensure!(
        !blocks.is_empty(),
        "{source} holds no PEM block (-----BEGIN PUBLIC KEY-----) and is not a JWKS document"
    );
    let mut keys = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let tag = block.tag();
        anyhow::ensure!(
            !tag.contains("PRIVATE"),
            "{source}: block {} is a private key ({tag}); give the public key only",
            i + 1
        );
        anyhow::ensure!(
            matches!(tag, "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE"),
            "{source}: block {} is a `{tag}`, not a public key or certificate",
            i + 1
        );
        let encoded = pem::encode(block);
        let bytes = encoded.as_bytes();
        let (kind, decoding) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
            (KeyKind::Rsa, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
            (KeyKind::Ec, k)
        } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
            (KeyKind::Ed25519, k)
        } else {
            anyhow::bail!(
                "{source}: block {} ({tag}) is not an RSA, EC or Ed25519 public key",
                i + 1
            );
        };
        keys.push(Key {
            kid: None,
            alg: None,
            kind,
            decoding,
        });
    }
    Ok(keys)
}

/// The signing keys of a JWKS document. Keys this service cannot or must not use are left out
/// with a warning (encryption keys, symmetric `oct` keys, unknown types), so one exotic key at
/// the provider does not hide the others.
pub fn parse_jwks(text: &str, source: &str) -> anyhow::Result<Vec<Key>> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{source} is not a JSON document: {e}"))?;
    let Some(entries) = doc.get("keys").and_then(|k| k.as_array()) else {
        anyhow::bail!("{source} is not a JWKS document: it has no `keys` array");
    };
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        match parse_jwk(entry) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(reason) => {
                let kid = entry.get("kid").and_then(|k| k.as_str()).unwrap_or("");
                tracing::warn!(source, index = i, kid = %shorten(kid), reason, "JWKS key left out");
            }
        }
    }
    Ok(keys)
}

/// One JWKS entry: `Ok(None)` for keys that are not for signatures.
fn parse_jwk(entry: &serde_json::Value) -> Result<Option<Key>, String> {
    if entry.get("use").and_then(|u| u.as_str()) == Some("enc") {
        return Ok(None);
    }
    if entry.get("kty").and_then(|k| k.as_str()) == Some("oct") {
        return Err(
            "symmetric (oct) keys are never taken from a JWKS; HS256 uses \
                    CNSCD_JWT_SECRET"
                .into(),
        );
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => {
            // KeyAlgorithm names the same strings as Algorithm for signatures; the rest
            // (RSA-OAEP, ...) are for encryption.
            let name = serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match Algorithm::from_str(&name) {
                Ok(a) if ACCEPTED.contains(&a) => Some(a),
                _ => {
                    return Err(format!(
                        "algorithm `{name}` is not one this service verifies"
                    ));
                }
            }
        }
    };
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            ref other => return Err(format!("curve {other:?} is not supported")),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            KeyKind::Ed25519
        }
        _ => return Err("key type is not supported".into()),
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        kind,
        decoding,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_leaves_out_keys_it_cannot_use() {
        let doc = r#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AQAB", "y": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "kid": "p256", "crv": "P-256", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let keys = parse_document(doc, "test").unwrap_or_default();
        let kids: Vec<_> = keys.iter().filter_map(|k| k.kid.clone()).collect();
        assert_eq!(kids, ["ed", "p256"]);
        assert!(keys[1].accepts(Algorithm::ES256));
        assert!(!keys[1].accepts(Algorithm::ES384));
        assert!(!keys[1].accepts(Algorithm::RS256));
        assert!(keys[0].accepts(Algorithm::EdDSA));
    }

    #[test]
    fn private_keys_and_empty_files_are_refused() {
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = parse_document(private, "keys.pem")
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("private key"));
        let err = parse_document("", "keys.pem").err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("no PEM block"));
        let err = parse_document(r#"{"keys": []}"#, "jwks.json")
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("no public key"));
    }
}
