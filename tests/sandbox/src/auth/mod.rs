//! Authentication and authorization as kube-apiserver does them, in its filter order: who the
//! request is from (client certificate, bearer token, else anonymous), whom it may impersonate,
//! then whether RBAC lets it (every request: resources and non-resource paths alike). Also the
//! APIs behind them: TokenRequest, the access/rules/self-subject/token reviews, and the RBAC
//! objects' bootstrap, write checks and aggregation.

mod authn;
mod impersonation;
mod rbac_objects;
mod rbac_store;
mod reviews;
mod token_request;
mod tokens;
mod x509;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use serde_json::Value;

pub use authn::{ADMIN_USER, PeerIdentity, RequestUser, anonymous};
pub use rbac_objects::{after_write, check_write, seed};
pub use rbac_store::StoreRbac;
pub use x509::{ClientCa, ClientCertificate};

use crate::SandboxError;
use crate::api::{Api, Req, error_response};
use crate::machinery::{ApiError, Decision, forbidden};
use crate::route::Target;
use crate::store::Store;

/// The sandbox's credentials and authorizer state.
pub struct Auth {
    /// The bearer token of the written admin kubeconfig (random per sandbox).
    pub admin_token: String,
    pub client_ca: ClientCa,
    tokens: tokens::TokenIssuer,
    pub rbac: Arc<StoreRbac>,
    /// Seconds added to the clock tokens are checked against (tests of expiry).
    clock_offset: AtomicI64,
}

impl Auth {
    pub fn new(store: Arc<Store>) -> Result<Self, SandboxError> {
        let secret: [u8; 32] = rand::random();
        Ok(Auth {
            admin_token: secret.iter().map(|b| format!("{b:02x}")).collect(),
            client_ca: ClientCa::generate()?,
            tokens: tokens::TokenIssuer::generate()?,
            rbac: Arc::new(StoreRbac::new(store)),
            clock_offset: AtomicI64::new(0),
        })
    }

    /// Seconds since the epoch, as token lifetimes see it.
    pub fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second() + self.clock_offset.load(Ordering::Relaxed)
    }

    /// Moves the token clock forward (tokens expire as if the time had passed).
    pub fn advance_clock(&self, secs: i64) {
        let _ = self
            .clock_offset
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(secs))
            });
    }

    /// The client identity of a connection's certificate chain.
    pub fn peer_identity(
        &self,
        chain: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Option<PeerIdentity> {
        let result = self.client_ca.identity(chain?)?;
        Some(PeerIdentity(Arc::new(result)))
    }
}

/// kube's authentication, impersonation and authorization filters, ahead of every handler.
pub async fn filter(State(api): State<Arc<Api>>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<PeerIdentity>().cloned();
    let Ok(user) = authn::authenticate(&api, request.headers(), peer.as_ref()) else {
        return error_response(&authn::unauthorized());
    };
    let user = match impersonation::impersonate(&api, user, request.headers()) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let mut attrs = volops_sandbox_machinery::requestinfo::request_attributes(
        request.method().as_str(),
        request.uri().path(),
        &query,
    );
    attrs.user = user;
    let (decision, reason) = if api.audit.enabled() {
        api.authorizer.authorize_with_reason(&attrs)
    } else {
        (api.authorizer.authorize(&attrs), String::new())
    };
    match decision {
        Decision::Allow => {}
        Decision::Deny(reason) | Decision::NoOpinion(reason) => {
            api.audit.record(&attrs, false, &reason, 403);
            return error_response(&forbidden(&attrs, &reason));
        }
    }
    let audited = api.audit.enabled().then(|| attrs.clone());
    request.extensions_mut().insert(RequestUser(attrs.user));
    let response = next.run(request).await;
    if let Some(attrs) = audited {
        api.audit
            .record(&attrs, true, &reason, response.status().as_u16());
    }
    response
}

/// A review or token request body: JSON, YAML, or the protobuf kubectl sends.
fn body(req: &Req, t: &Target) -> Result<Value, ApiError> {
    let obj = req.json_body(&t.info)?;
    if obj.is_object() {
        Ok(obj)
    } else {
        Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ))
    }
}

/// Serves the auth APIs that store nothing (reviews, TokenRequest); None for everything else.
pub fn serve(api: &Api, t: &Target, req: &Req) -> Option<Response> {
    let known = matches!(
        (t.info.group.as_str(), t.info.plural.as_str(), t.sub.as_deref()),
        ("", "serviceaccounts", Some("token"))
            | ("authorization.k8s.io", _, None)
            | ("authentication.k8s.io", _, None)
    );
    if !known {
        return None;
    }
    if req.method != Method::POST || (t.sub.is_none() && t.name.is_some()) {
        let e = ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        return Some(error_response(&e));
    }
    let result = body(req, t).and_then(|b| match (t.info.plural.as_str(), t.sub.as_deref()) {
        ("serviceaccounts", Some("token")) => token_request::create(api, t, b),
        ("selfsubjectaccessreviews", _) => reviews::self_subject_access_review(api, req, b),
        ("subjectaccessreviews" | "localsubjectaccessreviews", _) => {
            reviews::subject_access_review(api, t, b)
        }
        ("selfsubjectrulesreviews", _) => reviews::self_subject_rules_review(api, req, b),
        ("selfsubjectreviews", _) => reviews::self_subject_review(req, b),
        ("tokenreviews", _) => reviews::token_review(api, b),
        _ => Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    });
    Some(match result {
        Ok(reply) => reply.into_response(),
        Err(e) => error_response(&e),
    })
}
