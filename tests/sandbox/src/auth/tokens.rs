//! ServiceAccount tokens: JWTs signed with the sandbox's ES256 key, with the claims
//! kube-apiserver's TokenRequest puts in them (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`,
//! and `kubernetes.io` naming the ServiceAccount and any object the token is bound to).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};

use crate::SandboxError;

/// The issuer and the API server's audience (kube's default `--service-account-issuer` style).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The claims of one token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    pub audiences: Vec<String>,
    /// Seconds since the epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    pub id: String,
    /// (kind, name, uid) of the Pod or Secret the token is bound to.
    pub bound: Option<(String, String, String)>,
}

impl Claims {
    fn to_json(&self) -> Value {
        let mut k8s = json!({
            "namespace": self.namespace,
            "serviceaccount": {"name": self.service_account, "uid": self.service_account_uid},
        });
        if let Some((kind, name, uid)) = &self.bound {
            k8s[kind.to_ascii_lowercase()] = json!({"name": name, "uid": uid});
        }
        json!({
            "aud": self.audiences, "exp": self.expires_at, "iat": self.issued_at,
            "iss": ISSUER, "jti": self.id, "nbf": self.issued_at,
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.service_account),
            "kubernetes.io": k8s,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let k8s = &v["kubernetes.io"];
        let s = |x: &Value| x.as_str().map(str::to_owned);
        let audiences = match &v["aud"] {
            Value::String(a) => vec![a.clone()],
            other => other
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
        };
        let bound = ["pod", "secret"].iter().find_map(|kind| {
            let b = &k8s[*kind];
            Some((
                if *kind == "pod" { "Pod" } else { "Secret" }.to_owned(),
                s(&b["name"])?,
                s(&b["uid"])?,
            ))
        });
        let claims = Claims {
            namespace: s(&k8s["namespace"])?,
            service_account: s(&k8s["serviceaccount"]["name"])?,
            service_account_uid: s(&k8s["serviceaccount"]["uid"])?,
            audiences,
            issued_at: v["nbf"].as_i64()?,
            expires_at: v["exp"].as_i64()?,
            id: s(&v["jti"]).unwrap_or_default(),
            bound,
        };
        let sub = format!(
            "system:serviceaccount:{}:{}",
            claims.namespace, claims.service_account
        );
        (v["iss"] == ISSUER && v["sub"] == sub.as_str()).then_some(claims)
    }
}

/// Signs and verifies the sandbox's ServiceAccount tokens.
pub struct TokenIssuer {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    rng: SystemRandom,
    kid: String,
}

impl TokenIssuer {
    pub fn generate() -> Result<Self, SandboxError> {
        let rng = SystemRandom::new();
        let err = |e: ring::error::Unspecified| SandboxError::Tls(format!("token signing key: {e}"));
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(err)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| SandboxError::Tls(format!("token signing key: {e}")))?;
        let public = key.public_key().as_ref().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(TokenIssuer {
            key,
            public,
            rng,
            kid,
        })
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_json().to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| format!("signing token: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// The claims of a token this issuer signed; None for anything else (times are the
    /// caller's to check).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .ok()?;
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        Claims::from_json(&payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            namespace: "ops".into(),
            service_account: "ctl".into(),
            service_account_uid: "u-1".into(),
            audiences: vec![ISSUER.into()],
            issued_at: 1_000,
            expires_at: 4_600,
            id: "j".into(),
            bound: Some(("Pod".into(), "p".into(), "pu".into())),
        }
    }

    #[test]
    fn round_trip_and_tampering() {
        let issuer = TokenIssuer::generate().unwrap();
        let token = issuer.sign(&claims()).unwrap();
        assert_eq!(issuer.verify(&token), Some(claims()));
        // A token whose payload was changed no longer verifies.
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.service_account = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(forged.to_json().to_string());
        assert_eq!(
            issuer.verify(&format!("{}.{forged_payload}.{}", parts[0], parts[2])),
            None
        );
        // Another key's token is not ours.
        let other = TokenIssuer::generate().unwrap();
        assert_eq!(other.verify(&token), None);
        assert_eq!(issuer.verify("not-a-jwt"), None);
    }
}
