//! Tokens exactly as Nacos's default plugin issues and checks them (its JwtTokenManager): a
//! leniently decoded Base64 secret of at least 32 bytes, the HMAC algorithm chosen by key
//! length, one of three literal headers (no `typ`), payload `{"sub","exp"}`, base64url without
//! padding.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use nacos_core::AuthError;
use sha2::{Sha256, Sha384, Sha512};

/// The header literals Nacos accepts, one per algorithm.
pub const HS256_HEADER: &str = "eyJhbGciOiJIUzI1NiJ9";
pub const HS384_HEADER: &str = "eyJhbGciOiJIUzM4NCJ9";
pub const HS512_HEADER: &str = "eyJhbGciOiJIUzUxMiJ9";

/// The public sample secrets from the Nacos docs. A server with auth on refuses them.
pub const SAMPLE_SECRETS: &[&str] = &[
    "SecretKey012345678901234567890123456789012345678901234567890123456789",
    "VGhpc0lzTXlDdXN0b21TZWNyZXRLZXkwMTIzNDU2Nzg=",
];

/// Minimum decoded key length.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl Algorithm {
    /// Nacos's choice by decoded key length.
    pub fn for_key_len(len: usize) -> Self {
        if len < 48 {
            Algorithm::Hs256
        } else if len < 64 {
            Algorithm::Hs384
        } else {
            Algorithm::Hs512
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Hs256 => HS256_HEADER,
            Algorithm::Hs384 => HS384_HEADER,
            Algorithm::Hs512 => HS512_HEADER,
        }
    }

    fn from_header(header: &str) -> Option<Self> {
        match header {
            HS256_HEADER => Some(Algorithm::Hs256),
            HS384_HEADER => Some(Algorithm::Hs384),
            HS512_HEADER => Some(Algorithm::Hs512),
            _ => None,
        }
    }
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Base64 decoding as lenient as Nacos's: characters outside the alphabet are skipped (so
/// whitespace and padding at either end do not matter), and a length that is not a multiple
/// of 4 is accepted; the trailing bits that do not fill a byte are dropped.
pub fn lenient_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for value in text.bytes().filter_map(b64_value) {
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Whether decoded key bytes are those of a [`SAMPLE_SECRETS`] entry, however the Base64 was
/// spelled (padding, URL-safe alphabet, whitespace all decode to the same bytes).
pub fn is_sample_key(key: &[u8]) -> bool {
    SAMPLE_SECRETS
        .iter()
        .any(|sample| crate::ct_eq(&lenient_base64(sample), key))
}

/// Why a secret is refused, naming the property to set.
pub fn check_secret(secret: &str, property: &str) -> Result<Vec<u8>, String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(format!(
            "auth is enabled but {property} is not set; set it to a Base64 key of at least \
             {MIN_KEY_BYTES} bytes (e.g. `openssl rand -base64 32`), the same on every node"
        ));
    }
    let key = lenient_base64(secret);
    if is_sample_key(&key) {
        return Err(format!(
            "{property} is the public sample key from the Nacos docs, which anyone can use to \
             forge tokens; set {property} to your own Base64 key of at least {MIN_KEY_BYTES} bytes"
        ));
    }
    if key.len() < MIN_KEY_BYTES {
        return Err(format!(
            "{property} decodes to {} bytes; set it to a Base64 key of at least {MIN_KEY_BYTES} \
             bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// A signing key. `Debug` never prints it.
#[derive(Clone)]
pub struct JwtKey {
    key: Vec<u8>,
    algorithm: Algorithm,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

impl JwtKey {
    /// A key from decoded bytes (any length; [`check_secret`] is the start-up gate).
    pub fn new(key: Vec<u8>) -> Self {
        let algorithm = Algorithm::for_key_len(key.len());
        Self { key, algorithm }
    }

    /// A key from the Base64 property value, decoded leniently.
    pub fn from_base64(secret: &str) -> Self {
        Self::new(lenient_base64(secret))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn mac(&self, algorithm: Algorithm, data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        match algorithm {
            Algorithm::Hs256 => Hmac::<Sha256>::new_from_slice(&self.key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
            Algorithm::Hs384 => Hmac::<Sha384>::new_from_slice(&self.key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
            Algorithm::Hs512 => Hmac::<Sha512>::new_from_slice(&self.key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
        }
    }

    /// A token for `subject` expiring at `exp` (epoch seconds).
    pub fn sign(&self, subject: &str, exp: i64) -> String {
        // Nacos's field order: sub, then exp.
        let claims = format!(
            "{{\"sub\":{},\"exp\":{exp}}}",
            serde_json::Value::String(subject.to_string())
        );
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let signing_input = format!("{}.{payload}", self.algorithm.header());
        let signature = URL_SAFE_NO_PAD.encode(self.mac(self.algorithm, signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    /// The subject and expiry of a well-formed, correctly signed token. Expiry is not checked
    /// here (see [`JwtKey::verify`]).
    pub fn decode(&self, token: &str) -> Result<(String, i64), AuthError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(AuthError::TokenInvalid);
        };
        let algorithm = Algorithm::from_header(header).ok_or(AuthError::UnsupportedAlgorithm)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .map_err(|_| AuthError::InvalidSignature)?;
        let expected = self.mac(algorithm, format!("{header}.{payload}").as_bytes());
        if !crate::ct_eq(&expected, &signature) {
            return Err(AuthError::InvalidSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| AuthError::TokenInvalid)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| AuthError::TokenInvalid)?;
        Ok((claims.sub, claims.exp))
    }

    /// The subject of a valid token: well formed, signed with this key, `exp >= now`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<String, AuthError> {
        let (sub, exp) = self.decode(token)?;
        if exp < now_secs {
            return Err(AuthError::TokenExpired);
        }
        Ok(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_decoding_and_algorithm_by_length() {
        assert_eq!(lenient_base64(SAMPLE_SECRETS[0]).len(), 69 * 6 / 8);
        assert_eq!(
            JwtKey::from_base64(SAMPLE_SECRETS[0]).algorithm(),
            Algorithm::Hs384
        );
        assert_eq!(
            lenient_base64(SAMPLE_SECRETS[1]),
            b"ThisIsMyCustomSecretKey012345678".to_vec()
        );
        assert_eq!(
            lenient_base64(" TWFu\n"),
            b"Man".to_vec(),
            "non-alphabet characters at the ends are ignored"
        );
        assert_eq!(Algorithm::for_key_len(64), Algorithm::Hs512);
    }

    #[test]
    fn secrets_are_checked() {
        let prop = "nacos.core.auth.plugin.nacos.token.secret.key";
        for sample in SAMPLE_SECRETS {
            let err = check_secret(sample, prop).expect_err("sample refused");
            assert!(err.contains(prop), "{err}");
        }
        // Every spelling of a sample key decodes to its bytes and is refused.
        let spellings = [
            SAMPLE_SECRETS[1].trim_end_matches('='),
            " VGhpc0lzTXlDdXN0b21TZWNy\nZXRLZXkwMTIzNDU2Nzg= ",
            "VGhpc0lzTXlDdXN0b21TZWNyZXRLZXkwMTIzNDU2Nzg==",
            "SecretKey012345678901234567890123456789012345678901234567890123456789==",
        ];
        for spelling in spellings {
            let err = check_secret(spelling, prop).expect_err(spelling);
            assert!(err.contains("public sample key"), "{err}");
        }
        // The URL-safe alphabet spells the same bytes as the standard one.
        let url_safe = URL_SAFE_NO_PAD.encode(lenient_base64(SAMPLE_SECRETS[0]));
        assert!(check_secret(&url_safe, prop).is_err());
        assert!(check_secret("", prop).is_err());
        assert!(check_secret("c2hvcnQ=", prop).is_err());
        assert!(check_secret("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5YWI=", prop).is_ok());
    }

    #[test]
    fn sign_and_verify_like_nacos() {
        let key = JwtKey::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let token = key.sign("nacos", 2_000_000_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts[0], HS256_HEADER);
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("payload b64");
        assert_eq!(payload, br#"{"sub":"nacos","exp":2000000000}"#.to_vec());
        assert_eq!(key.verify(&token, 1_000).expect("valid"), "nacos");
        assert_eq!(
            key.verify(&token, 2_000_000_001),
            Err(AuthError::TokenExpired)
        );
        assert_eq!(key.verify("a.b", 0), Err(AuthError::TokenInvalid));
        let typ = token.replacen(HS256_HEADER, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", 1);
        assert_eq!(key.verify(&typ, 0), Err(AuthError::UnsupportedAlgorithm));
        let other = JwtKey::new(b"another-key-another-key-another-key".to_vec());
        assert_eq!(other.verify(&token, 0), Err(AuthError::InvalidSignature));
    }
}
