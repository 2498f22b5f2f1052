//! The generated bundle is usable: a real rustls handshake trusting only the CA succeeds for
//! every SAN, fails for other names, and the files are written with the right modes.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn handshake(bundle: &volops_certs::Bundle, server_name: &str) -> Result<(), rustls::Error> {
    provider();
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(bundle.ca_cert_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let client_cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let chain = vec![CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(bundle.key_pem.as_bytes()).unwrap();
    let server_cfg = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
    // Shuttle bytes in memory until both sides finish the handshake or one fails.
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
        }
        server.process_new_packets()?;
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
        }
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn handshake_succeeds_for_every_san_and_fails_for_others() {
    let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    let dns = vec!["localhost".to_string(), "webhook.volops.svc".to_string()];
    let b = volops_certs::generate(&dns, &ips, 30).unwrap();
    for name in ["localhost", "webhook.volops.svc", "127.0.0.1", "::1"] {
        handshake(&b, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = handshake(&b, "other.example").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "unexpected error {err:?}"
    );
}

#[test]
fn a_different_ca_is_not_trusted() {
    let dns = vec!["localhost".to_string()];
    let a = volops_certs::generate(&dns, &[], 1).unwrap();
    let b = volops_certs::generate(&dns, &[], 1).unwrap();
    let mixed = volops_certs::Bundle {
        ca_cert_pem: b.ca_cert_pem.clone(),
        ..a.clone()
    };
    assert!(handshake(&mixed, "localhost").is_err());
    assert_ne!(a.ca_cert_pem, b.ca_cert_pem);
}

#[test]
fn certificate_fields_are_as_promised() {
    let dns = vec!["a.example".to_string(), "b.example".to_string()];
    let ips: Vec<IpAddr> = vec!["10.1.2.3".parse().unwrap()];
    let b = volops_certs::generate(&dns, &ips, 10).unwrap();
    let der = CertificateDer::from_pem_slice(b.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = sans.value.general_names.iter().map(|g| format!("{g}")).collect();
    assert!(names.iter().any(|n| n.contains("a.example")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("b.example")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("0a:01:02:03")), "{names:?}");
    let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 10);
    assert!(!cert.is_ca());
    let ca_der = CertificateDer::from_pem_slice(b.ca_cert_pem.as_bytes()).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(ca.is_ca());
    assert_eq!(cert.issuer(), ca.subject());
    assert!(b.key_pem.contains("PRIVATE KEY"));
}

#[test]
fn library_rejects_bad_input() {
    assert!(matches!(
        volops_certs::generate(&[], &[], 1),
        Err(volops_certs::CertError::NoNames)
    ));
    assert!(matches!(
        volops_certs::generate(&["x".into()], &[], 0),
        Err(volops_certs::CertError::ZeroDays)
    ));
    let dir = tempfile::tempdir().unwrap();
    let b = volops_certs::generate(&["x".into()], &[], 1).unwrap();
    volops_certs::write_bundle(&b, dir.path(), false).unwrap();
    assert!(matches!(
        volops_certs::write_bundle(&b, dir.path(), false),
        Err(volops_certs::CertError::Exists { .. })
    ));
    volops_certs::write_bundle(&b, dir.path(), true).unwrap();
}
