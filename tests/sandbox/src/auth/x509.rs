//! Client certificates, as kube-apiserver's `--client-ca-file` authenticator: the server asks
//! for (but does not require) a certificate, and a chain to the sandbox's client CA names the
//! user (CN) and its groups (O). The CA is generated per sandbox and issues test certificates.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData, SigningKey,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName as TlsName, RootCertStore, SignatureScheme};

use crate::SandboxError;
use crate::machinery::UserInfo;

/// How long issued client certificates are valid.
const CLIENT_CERT_DAYS: i64 = 365;

/// A client certificate and its private key (PEM), for kubeconfigs and `kube::Client`s.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The sandbox's client CA.
pub struct ClientCa {
    cert_pem: String,
    key: KeyPair,
    /// The CA's subject as DER, the issuer of every certificate it signs.
    subject_der: Vec<u8>,
    verifier: Arc<dyn ClientCertVerifier>,
}

fn tls_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Tls(e.to_string())
}

impl ClientCa {
    pub fn generate() -> Result<Self, SandboxError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "volops-sandbox-client-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let now = time_now();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(CLIENT_CERT_DAYS);
        let cert = params.self_signed(&key).map_err(tls_err)?;
        let subject_der = x509_parser::parse_x509_certificate(cert.der())
            .map_err(tls_err)?
            .1
            .tbs_certificate
            .subject
            .as_raw()
            .to_vec();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).map_err(tls_err)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .map_err(tls_err)?;
        Ok(ClientCa {
            cert_pem: cert.pem(),
            key,
            subject_der,
            verifier,
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The TLS side: offer client authentication and check the handshake signature, but leave
    /// the chain to [`ClientCa::identity`] so a bad certificate is a 401, as in kube.
    pub fn tls_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(RequestClientCert {
            inner: self.verifier.clone(),
        })
    }

    /// The user a presented chain names: None for no certificate (or no CN, as kube ignores
    /// such a certificate), an error for a chain the CA did not sign or that expired.
    pub fn identity(&self, chain: &[CertificateDer<'static>]) -> Option<Result<UserInfo, String>> {
        let (leaf, intermediates) = chain.split_first()?;
        if let Err(e) = self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            return Some(Err(format!("verifying certificate failed: {e}")));
        }
        let cert = match x509_parser::parse_x509_certificate(leaf) {
            Ok((_, c)) => c,
            Err(e) => return Some(Err(format!("parsing certificate: {e}"))),
        };
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default();
        if user.is_empty() {
            return None;
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, leaf);
        let hex: String = fingerprint.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Some(Ok(UserInfo {
            username: user.to_owned(),
            uid: String::new(),
            groups,
            extra: Some(serde_json::json!({
                "authentication.kubernetes.io/credential-id": [format!("X509SHA256={hex}")]
            })),
        }))
    }

    /// A certificate for `user` in `groups`, signed by this CA.
    pub fn issue(&self, user: &str, groups: &[&str]) -> Result<ClientCertificate, SandboxError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        let now = time_now();
        let tbs = der::seq(&[
            der::tlv(0xa0, &der::tlv(0x02, &[2])),
            der::tlv(0x02, &serial()),
            der::ECDSA_SHA256.to_vec(),
            self.subject_der.clone(),
            der::seq(&[
                der::utc_time(now - time::Duration::minutes(5)),
                der::utc_time(now + time::Duration::days(CLIENT_CERT_DAYS)),
            ]),
            der::name(user, groups),
            key.subject_public_key_info(),
            der::tlv(0xa3, &der::seq(&[der::key_usage(), der::client_auth()])),
        ]);
        let signature = self.key.sign(&tbs).map_err(tls_err)?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        let cert = der::seq(&[tbs, der::ECDSA_SHA256.to_vec(), der::tlv(0x03, &bits)]);
        Ok(ClientCertificate {
            cert_pem: pem_of(&CertificateDer::from(cert)),
            key_pem: key.serialize_pem(),
        })
    }
}

fn pem_of(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A positive 16-byte serial number.
fn serial() -> Vec<u8> {
    let mut s: [u8; 16] = rand::random();
    s[0] = (s[0] & 0x7f) | 0x01;
    s.to_vec()
}

/// Offers client authentication without requiring it; chains are judged per connection by
/// [`ClientCa::identity`], handshake signatures here (the client holds the key).
#[derive(Debug)]
struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[TlsName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Just enough DER to write a client certificate whose subject has several O attributes (one
/// per group), which rcgen's distinguished names cannot hold.
mod der {
    /// AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
    pub const ECDSA_SHA256: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    const OID_O: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];
    const OID_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
    const OID_EXT_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
    const OID_CLIENT_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
        tlv(0x31, &seq(&[oid.to_vec(), tlv(0x0c, value.as_bytes())]))
    }

    /// `O=group...` then `CN=user`, as Go's pkix.Name orders them.
    pub fn name(user: &str, groups: &[&str]) -> Vec<u8> {
        let mut rdns: Vec<Vec<u8>> = groups.iter().map(|g| attribute(OID_O, g)).collect();
        rdns.push(attribute(OID_CN, user));
        seq(&rdns)
    }

    pub fn utc_time(t: time::OffsetDateTime) -> Vec<u8> {
        let s = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        tlv(0x17, s.as_bytes())
    }

    /// keyUsage (critical): digitalSignature.
    pub fn key_usage() -> Vec<u8> {
        seq(&[
            OID_KEY_USAGE.to_vec(),
            tlv(0x01, &[0xff]),
            tlv(0x04, &tlv(0x03, &[0x07, 0x80])),
        ])
    }

    /// extKeyUsage: clientAuth.
    pub fn client_auth() -> Vec<u8> {
        seq(&[
            OID_EXT_KEY_USAGE.to_vec(),
            tlv(0x04, &seq(&[OID_CLIENT_AUTH.to_vec()])),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn chain(c: &ClientCertificate) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn issued_certificates_name_user_and_groups() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = ClientCa::generate().unwrap();
        let cert = ca.issue("alice", &["tenants", "ops"]).unwrap();
        let user = ca.identity(&chain(&cert)).unwrap().unwrap();
        assert_eq!(user.username, "alice");
        assert_eq!(user.groups, vec!["tenants", "ops"]);
        let id = user.extra.unwrap()["authentication.kubernetes.io/credential-id"][0].clone();
        assert!(id.as_str().unwrap().starts_with("X509SHA256="));
        assert!(ca.identity(&[]).is_none());
        // Another CA's certificate is refused, not ignored.
        let other = ClientCa::generate().unwrap();
        let foreign = other.issue("mallory", &["system:masters"]).unwrap();
        assert!(ca.identity(&chain(&foreign)).unwrap().is_err());
    }
}
