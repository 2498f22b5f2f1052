//! HTTPS serving: rustls accept loop feeding the axum router through hyper-util (h1 + h2). The
//! server asks for a client certificate; each connection's identity is judged once and handed
//! to the authentication filter with every request.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;
use crate::api::{Api, error_response, handle};
use crate::faults::FaultConfig;
use crate::machinery::ApiError;

/// rustls server config for the serving cert, asking clients for a certificate.
pub fn tls_acceptor(
    cert_pem: &str,
    key_pem: &str,
    client_certs: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<TlsAcceptor, SandboxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| SandboxError::Tls(e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| SandboxError::Tls(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder()
        .with_client_cert_verifier(client_certs)
        .with_single_cert(certs, key)
        .map_err(|e| SandboxError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The router: admin endpoints (never faulted) and everything else to the API, all behind
/// authentication and authorization (the fault endpoints need cluster-admin).
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/sandbox/v1/faults", get(get_faults).put(put_faults))
        .route(
            "/sandbox/v1/volumes/{namespace}/{claim}",
            get(crate::volumes::get_usage).put(crate::volumes::put_fill),
        )
        .fallback(handle)
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            crate::auth::filter,
        ))
        .with_state(api)
}

async fn get_faults(State(api): State<Arc<Api>>) -> Response {
    axum::Json(api.faults.get()).into_response()
}

async fn put_faults(State(api): State<Arc<Api>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(cfg) => {
            api.faults.set(cfg.clone());
            axum::Json(cfg).into_response()
        }
        Err(e) => error_response(&ApiError::bad_request(&format!("invalid fault config: {e}"))),
    }
}

/// Accepts connections until `shutdown` flips; each connection also ends on shutdown.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = router(api.clone());
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let api = api.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let peer = api.auth.peer_identity(tls.get_ref().1.peer_certificates());
            let svc = TowerToHyperService::new(
                tower::ServiceBuilder::new()
                    .map_request(move |mut r: http::Request<hyper::body::Incoming>| {
                        if let Some(p) = &peer {
                            r.extensions_mut().insert(p.clone());
                        }
                        r
                    })
                    .service(router),
            );
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}
