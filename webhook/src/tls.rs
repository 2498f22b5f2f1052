//! The serving certificate: loaded from PEM files, held behind a resolver so a reload swaps it
//! for new handshakes without touching open connections; and the optional client CA
//! (`--client-ca`), whose reload swaps the acceptor of new connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::metrics::gauge::Gauge;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, version};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificate chain {path}: {source}")]
    Cert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("certificate file {path} holds no certificate")]
    NoCert { path: PathBuf },
    #[error("reading private key {path}: {source}")]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("certificate {path}: cannot read its validity: {reason}")]
    Validity { path: PathBuf, reason: String },
    #[error("building the TLS server configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error("client CA {path}: {source}")]
    ClientCa { path: PathBuf, source: rustls::Error },
    #[error("client CA {path}: {source}")]
    ClientVerifier {
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key (the key must match the leaf).
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Cert {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_owned(),
        });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_owned(),
        source,
    })?;
    let pair = CertifiedKey::from_der(chain, der, &provider()).map_err(|source| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    // Refused like any other broken pair: its expiry could not be reported (metrics.rs).
    not_after(&pair).map_err(|reason| TlsError::Validity {
        path: cert.to_owned(),
        reason,
    })?;
    Ok(pair)
}

/// The leaf certificate's notAfter, in seconds since the Unix epoch.
pub fn not_after(key: &CertifiedKey) -> Result<i64, String> {
    let leaf = key.end_entity_cert().map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
    Ok(cert.validity().not_after.timestamp())
}

/// The current certificate, swapped atomically on reload; its notAfter goes to a gauge
/// (`volops_webhook_certificate_expiry_timestamp_seconds` once [`CertResolver::report_expiry_to`]).
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
    expiry: RwLock<Gauge>,
}

/// Sets `gauge` to the notAfter of `key` (left as it is when unreadable: load_pair refuses those).
fn report_expiry(gauge: &Gauge, key: &CertifiedKey) {
    if let Ok(t) = not_after(key) {
        gauge.set(t);
    }
}

impl CertResolver {
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        let expiry = Gauge::default();
        report_expiry(&expiry, &key);
        Arc::new(Self {
            current: RwLock::new(Arc::new(key)),
            expiry: RwLock::new(expiry),
        })
    }

    /// From now on `gauge` holds the notAfter of the certificate served, updated on every swap.
    pub fn report_expiry_to(&self, gauge: Gauge) {
        let current = self.current();
        let mut g = match self.expiry.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        report_expiry(&gauge, &current);
        *g = gauge;
    }

    /// The notAfter (Unix seconds) of the certificate served now, as last reported.
    pub fn expiry(&self) -> i64 {
        match self.expiry.read() {
            Ok(g) => g.get(),
            Err(poisoned) => poisoned.into_inner().get(),
        }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the certificate; returns false when it is the same chain as now.
    pub fn replace(&self, key: CertifiedKey) -> bool {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.cert == key.cert {
            return false;
        }
        match self.expiry.read() {
            Ok(gauge) => report_expiry(&gauge, &key),
            Err(poisoned) => report_expiry(&poisoned.into_inner(), &key),
        }
        *g = Arc::new(key);
        true
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The CA certificates client certificates must chain to, read from a PEM file.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientCa {
    path: PathBuf,
    certs: Vec<CertificateDer<'static>>,
}

impl ClientCa {
    pub fn load(path: &Path) -> Result<ClientCa, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::Cert {
                path: path.to_owned(),
                source,
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCert {
                path: path.to_owned(),
            });
        }
        Ok(ClientCa {
            path: path.to_owned(),
            certs,
        })
    }

    /// A verifier that requires a client certificate signed by this CA.
    fn verifier(&self) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in &self.certs {
            roots.add(cert.clone()).map_err(|source| TlsError::ClientCa {
                path: self.path.clone(),
                source,
            })?;
        }
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|source| TlsError::ClientVerifier {
                path: self.path.clone(),
                source,
            })
    }
}

/// TLS 1.2/1.3 with ALPN h2 and http/1.1, serving whatever the resolver holds; with a client
/// CA, a handshake without a certificate it signed fails.
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca: Option<&ClientCa>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(ca.verifier()?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// What new connections are accepted with: the serving certificate (swapped in the resolver)
/// and the client CA (swapped by replacing the acceptor; open connections keep theirs).
pub struct ServerTls {
    resolver: Arc<CertResolver>,
    client_ca: Option<Mutex<ClientCa>>,
    acceptor: RwLock<TlsAcceptor>,
}

impl ServerTls {
    /// Loads the serving pair and, when given, the client CA.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<ServerTls>, TlsError> {
        let resolver = CertResolver::new(load_pair(cert, key)?);
        let ca = client_ca.map(ClientCa::load).transpose()?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(resolver.clone(), ca.as_ref())?));
        Ok(Arc::new(ServerTls {
            resolver,
            client_ca: ca.map(Mutex::new),
            acceptor: RwLock::new(acceptor),
        }))
    }

    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The client CA file, when client certificates are required.
    pub fn client_ca_path(&self) -> Option<PathBuf> {
        let ca = self.client_ca.as_ref()?;
        let g = match ca.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(g.path.clone())
    }

    /// Re-reads the client CA; true when it changed and new connections now verify against it.
    /// On an error the current CA stays.
    pub fn reload_client_ca(&self) -> Result<bool, TlsError> {
        let Some(ca) = &self.client_ca else {
            return Ok(false);
        };
        let mut current = match ca.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let fresh = ClientCa::load(&current.path)?;
        if fresh == *current {
            return Ok(false);
        }
        let acceptor = TlsAcceptor::from(Arc::new(server_config(self.resolver.clone(), Some(&fresh))?));
        match self.acceptor.write() {
            Ok(mut g) => *g = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
        *current = fresh;
        Ok(true)
    }
}
