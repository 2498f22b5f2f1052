//! CA and serving certificate generation (ECDSA P-256) for volops dev, tests and the demo.

mod write;

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

pub use write::write_bundle;

/// PEM texts of a CA and a serving certificate signed by it.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything that can go wrong generating or writing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("at least one DNS name or IP address is required")]
    NoNames,
    #[error("invalid DNS name {name:?}: {source}")]
    BadName { name: String, source: rcgen::Error },
    #[error("validity must be at least one day")]
    ZeroDays,
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("{path} already exists (use --force to overwrite)")]
    Exists { path: String },
    #[error("writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Generates a fresh CA and a serving certificate for `dns` and `ips`, valid `days` days.
pub fn generate(dns: &[String], ips: &[IpAddr], days: u32) -> Result<Bundle, CertError> {
    if dns.is_empty() && ips.is_empty() {
        return Err(CertError::NoNames);
    }
    if days == 0 {
        return Err(CertError::ZeroDays);
    }
    // Backdate a little so freshly made certs are valid on hosts with slightly skewed clocks.
    let not_before = OffsetDateTime::now_utc() - Duration::minutes(5);
    let not_after = OffsetDateTime::now_utc() + Duration::days(i64::from(days));

    let ca_key = keypair("CA key")?;
    let mut ca_params = ca_params();
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|source| CertError::Generate {
            what: "CA certificate",
            source,
        })?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = keypair("serving key")?;
    let mut params = serving_params(dns, ips)?;
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| CertError::Generate {
            what: "serving certificate",
            source,
        })?;

    Ok(Bundle {
        ca_cert_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("volops dev CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A serving (and client) certificate for `dns` and `ips`, named after the first of them.
fn serving_params(dns: &[String], ips: &[IpAddr]) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let first = dns
        .first()
        .cloned()
        .or_else(|| ips.first().map(ToString::to_string))
        .unwrap_or_default();
    params.distinguished_name = name(&first);
    for d in dns {
        let ia5 = d.clone().try_into().map_err(|source| CertError::BadName {
            name: d.clone(),
            source,
        })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

fn keypair(what: &'static str) -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| CertError::Generate { what, source })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}
