//! Calls admission webhooks the way kube-apiserver does: matching by rules, selectors and
//! `matchConditions`, AdmissionReview v1 over HTTPS/1.1 trusting only `caBundle`, response
//! verification, JSON patches from mutating hooks with `reinvocationPolicy: IfNeeded`,
//! `failurePolicy`, `sideEffects` under dry-run, and kube's error texts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::matching::should_call;
use super::{AdmissionAttributes, ObjectLookup};
use crate::authz::Authorizer;
use crate::error::ApiError;

/// Maps a webhook `service` reference (namespace, name, port) to the address to dial.
pub type ServiceResolver = Arc<dyn Fn(&str, &str, u16) -> Option<SocketAddr> + Send + Sync>;

/// Resources admission webhooks are never called for (`IsExemptAdmissionConfigurationResource`).
const NEVER_INTERCEPTED: [&str; 6] = [
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
];

/// Calls the webhooks of Mutating/ValidatingWebhookConfiguration objects.
#[derive(Default)]
pub struct Dispatcher {
    resolver: RwLock<Option<ServiceResolver>>,
    clients: Mutex<HashMap<(String, u64), reqwest::Client>>,
}

/// Why one webhook call produced no usable answer (subject to `failurePolicy`).
struct CallError(String);

/// What one webhook call produced.
enum Outcome {
    Allowed {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    Denied(ApiError),
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how `clientConfig.service` references are dialled.
    pub fn set_service_resolver(&self, f: ServiceResolver) {
        if let Ok(mut r) = self.resolver.write() {
            *r = Some(f);
        }
    }

    /// Runs the mutating webhooks of `configs` (MutatingWebhookConfiguration objects) in
    /// kube's order and returns the patched object (Null when the request has none) and the
    /// warnings the hooks returned. A hook with `reinvocationPolicy: IfNeeded` runs once more
    /// when a hook after it changed the object (kube's reinvocation: one extra round).
    pub async fn mutate(
        &self,
        configs: &[Value],
        attrs: &AdmissionAttributes,
        lookup: &dyn ObjectLookup,
        authorizer: &Arc<dyn Authorizer>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let hooks = ordered_hooks(configs, attrs);
        let mut current = attrs.clone();
        let mut warnings = Vec::new();
        // IfNeeded hooks invoked since the object last changed, and those to call again.
        let mut invoked: Vec<usize> = Vec::new();
        let mut reinvoke: HashSet<usize> = HashSet::new();
        for round in 0..2 {
            if round == 1 && reinvoke.is_empty() {
                break;
            }
            for (i, hook) in hooks.iter().enumerate() {
                // A hook is never called for the first time during reinvocation.
                if round == 1 && !reinvoke.contains(&i) {
                    continue;
                }
                if !should_call(hook, &current, lookup, authorizer)? {
                    continue;
                }
                let changed = match self.call_with_policy(hook, &current, true).await? {
                    None => false,
                    Some(Outcome::Denied(e)) => return Err(e),
                    Some(Outcome::Allowed { patch, warnings: w }) => {
                        warnings.extend(w);
                        apply_patch(hook, &mut current, patch)?
                    }
                };
                if changed {
                    reinvoke.extend(invoked.drain(..));
                }
                if str_at(hook, "reinvocationPolicy") == "IfNeeded" {
                    invoked.push(i);
                }
            }
        }
        Ok((current.object.unwrap_or(Value::Null), warnings))
    }

    /// Runs the validating webhooks of `configs` (ValidatingWebhookConfiguration objects)
    /// concurrently and returns their warnings, or the first denial or failure in hook order.
    pub async fn validate(
        &self,
        configs: &[Value],
        attrs: &AdmissionAttributes,
        lookup: &dyn ObjectLookup,
        authorizer: &Arc<dyn Authorizer>,
    ) -> Result<Vec<String>, ApiError> {
        let mut matched = Vec::new();
        for hook in ordered_hooks(configs, attrs) {
            if should_call(hook, attrs, lookup, authorizer)? {
                matched.push(hook);
            }
        }
        // kube-apiserver calls validating hooks in parallel; report in hook order.
        let calls = matched.iter().map(|h| self.call_with_policy(h, attrs, false));
        let results = futures::future::join_all(calls).await;
        let mut warnings = Vec::new();
        for result in results {
            match result? {
                None => {}
                Some(Outcome::Denied(e)) => return Err(e),
                Some(Outcome::Allowed { warnings: w, .. }) => warnings.extend(w),
            }
        }
        Ok(warnings)
    }

    /// One call; a failed call is skipped under `failurePolicy: Ignore` (None) and a 500
    /// otherwise.
    async fn call_with_policy(
        &self,
        hook: &Value,
        attrs: &AdmissionAttributes,
        mutating: bool,
    ) -> Result<Option<Outcome>, ApiError> {
        let name = str_at(hook, "name");
        let effects = hook.get("sideEffects").and_then(Value::as_str);
        let call = match effects {
            _ if !attrs.dry_run => self.call(hook, attrs, mutating).await,
            Some("None" | "NoneOnDryRun") => self.call(hook, attrs, mutating).await,
            None => Err(CallError("Webhook SideEffects is nil".into())),
            Some(_) => {
                return Err(ApiError::bad_request(&format!(
                    "admission webhook {} does not support dry run",
                    crate::error::go_quote(name)
                )));
            }
        };
        match call {
            Ok(o) => Ok(Some(o)),
            Err(CallError(reason)) => {
                let msg = format!(
                    "failed calling webhook {}: {reason}",
                    crate::error::go_quote(name)
                );
                if str_at(hook, "failurePolicy") == "Ignore" {
                    tracing::warn!(webhook = name, "{msg}; ignored by failurePolicy");
                    Ok(None)
                } else {
                    Err(ApiError::internal(&msg))
                }
            }
        }
    }

    fn client(&self, ca_bundle: &str, timeout: u64) -> Result<reqwest::Client, String> {
        let key = (ca_bundle.to_string(), timeout);
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let tls = tls_config(ca_bundle)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .http1_only()
            .timeout(Duration::from_secs(timeout))
            .build()
            .map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.clients.lock() {
            m.insert(key, client.clone());
        }
        Ok(client)
    }

    async fn call(
        &self,
        hook: &Value,
        attrs: &AdmissionAttributes,
        mutating: bool,
    ) -> Result<Outcome, CallError> {
        let cc = hook.get("clientConfig").cloned().unwrap_or(Value::Null);
        let timeout = hook.get("timeoutSeconds").and_then(Value::as_u64).unwrap_or(10);
        let ca = str_at(&cc, "caBundle");
        let mut client = self.client(ca, timeout).map_err(CallError)?;
        let url = if let Some(u) = cc.get("url").and_then(Value::as_str) {
            format!("{u}{}timeout={timeout}s", if u.contains('?') { '&' } else { '?' })
        } else if let Some(svc) = cc.get("service") {
            let (ns, name) = (str_at(svc, "namespace"), str_at(svc, "name"));
            let port = svc
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443);
            let path = str_at(svc, "path");
            let host = format!("{name}.{ns}.svc");
            let resolver = self.resolver.read().ok().and_then(|r| r.clone());
            let addr = resolver.and_then(|r| r(ns, name, port)).ok_or_else(|| {
                CallError(format!(
                    "failed to call webhook: Post \"https://{host}:{port}{path}?timeout={timeout}s\": service \"{ns}/{name}\" not found"
                ))
            })?;
            // The TLS name stays `<name>.<namespace>.svc`; only the dialled address changes.
            client = reqwest::Client::builder()
                .use_preconfigured_tls(tls_config(ca).map_err(CallError)?)
                .http1_only()
                .timeout(Duration::from_secs(timeout))
                .resolve(&host, addr)
                .build()
                .map_err(|e| CallError(e.to_string()))?;
            format!("https://{host}:{}{path}?timeout={timeout}s", addr.port())
        } else {
            return Err(CallError(
                "failed to call webhook: no clientConfig url or service".into(),
            ));
        };
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review_request(&uid, attrs);
        let post_err = |e: String| CallError(format!("failed to call webhook: Post \"{url}\": {e}"));
        let resp = client
            .post(&url)
            .json(&review)
            .send()
            .await
            .map_err(|e| post_err(describe(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| post_err(describe(&e)))?;
        if !status.is_success() {
            return Err(CallError(format!(
                "failed to call webhook: an error on the server ({:?}) has prevented the request from succeeding",
                String::from_utf8_lossy(&body)
            )));
        }
        let parsed: Value = serde_json::from_slice(&body)
            .map_err(|e| CallError(format!("received invalid webhook response: {e}")))?;
        let verified = verify_response(&parsed, &uid, mutating, str_at(hook, "name"))
            .map_err(|e| CallError(format!("received invalid webhook response: {e}")))?;
        Ok(match verified {
            Verified::Denied(e) => Outcome::Denied(e),
            Verified::Allowed { patch, warnings } => {
                let patch = patch
                    .map(|bytes| serde_json::from_slice::<json_patch::Patch>(&bytes))
                    .transpose()
                    .map_err(|e| CallError(format!("received undecodable patch in webhook response: {e}")))?;
                Outcome::Allowed { patch, warnings }
            }
        })
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Webhooks of all configurations: configurations sorted by name, hooks in their order.
fn ordered_hooks<'a>(configs: &'a [Value], attrs: &AdmissionAttributes) -> Vec<&'a Value> {
    if attrs.group == "admissionregistration.k8s.io" && NEVER_INTERCEPTED.contains(&attrs.resource.as_str()) {
        return Vec::new();
    }
    let mut sorted: Vec<&Value> = configs.iter().collect();
    sorted.sort_by(|a, b| {
        a.pointer("/metadata/name")
            .map(Value::to_string)
            .cmp(&b.pointer("/metadata/name").map(Value::to_string))
    });
    sorted
        .into_iter()
        .flat_map(|c| c.get("webhooks").and_then(Value::as_array).into_iter().flatten())
        .collect()
}

/// Go-like text of a reqwest error chain: a timeout, a refused connection and an unknown CA
/// read as Go's errors do.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded".into();
    }
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return "dial tcp: connect: connection refused".into();
        }
        parts.push(s.to_string());
        src = s.source();
    }
    let text = parts.join(": ");
    if text.contains("UnknownIssuer") {
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority".into();
    }
    text
}

fn tls_config(ca_bundle_b64: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if !ca_bundle_b64.is_empty() {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca_bundle_b64.trim())
            .map_err(|e| format!("invalid caBundle: {e}"))?;
        use rustls_pki_types::pem::PemObject as _;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
            roots.add(cert).map_err(|e| format!("invalid caBundle: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // kube-apiserver forces HTTP/1.1 to webhooks (see ANCHORS §2.1).
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The AdmissionReview v1 request body.
pub fn review_request(uid: &str, attrs: &AdmissionAttributes) -> Value {
    let kind = json!({"group": attrs.group, "version": attrs.version, "kind": attrs.kind});
    let resource = json!({"group": attrs.group, "version": attrs.version, "resource": attrs.resource});
    let mut r = Map::new();
    r.insert("uid".into(), json!(uid));
    r.insert("kind".into(), kind.clone());
    r.insert("resource".into(), resource.clone());
    if !attrs.subresource.is_empty() {
        r.insert("subResource".into(), json!(attrs.subresource));
        r.insert("requestSubResource".into(), json!(attrs.subresource));
    }
    r.insert("requestKind".into(), kind);
    r.insert("requestResource".into(), resource);
    if !attrs.name.is_empty() {
        r.insert("name".into(), json!(attrs.name));
    }
    if let Some(ns) = &attrs.namespace {
        r.insert("namespace".into(), json!(ns));
    }
    r.insert("operation".into(), json!(attrs.operation.as_str()));
    r.insert(
        "userInfo".into(),
        serde_json::to_value(&attrs.user).unwrap_or(Value::Null),
    );
    if let Some(o) = &attrs.object {
        r.insert("object".into(), o.clone());
    }
    if let Some(o) = &attrs.old_object {
        r.insert("oldObject".into(), o.clone());
    }
    r.insert("dryRun".into(), json!(attrs.dry_run));
    if let Some(o) = &attrs.options {
        r.insert("options".into(), o.clone());
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": r})
}

/// VerifyAdmissionResponse, then the outcome (denials as kube's ToStatusErr builds them).
fn verify_response(review: &Value, uid: &str, mutating: bool, name: &str) -> Result<Verified, String> {
    let (api, kind) = (str_at(review, "apiVersion"), str_at(review, "kind"));
    if api != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        let (g, v) = api.rsplit_once('/').unwrap_or(("", api));
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {g}/{v}, Kind={kind}"
        ));
    }
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let got_uid = str_at(resp, "uid");
    if got_uid != uid {
        return Err(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let patch = str_at(resp, "patch");
    let patch_type = str_at(resp, "patchType");
    match (mutating, patch.is_empty(), patch_type.is_empty()) {
        (false, false, _) => return Err("validating webhook may not return response.patch".into()),
        (false, true, false) => return Err("validating webhook may not return response.patchType".into()),
        (true, false, true) => {
            return Err("webhook returned response.patch but not response.patchType".into());
        }
        (true, true, false) => {
            return Err("webhook returned response.patchType but not response.patch".into());
        }
        (true, false, false) if patch_type != "JSONPatch" => {
            return Err(format!(
                "webhook returned invalid response.patchType of {patch_type:?}"
            ));
        }
        _ => {}
    }
    let warnings: Vec<String> = resp
        .get("warnings")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if resp.get("allowed").and_then(Value::as_bool) != Some(true) {
        return Ok(Verified::Denied(denial(name, resp.get("status"))));
    }
    let patch = if patch.is_empty() {
        None
    } else {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .map_err(|e| format!("illegal base64 data in response.patch: {e}"))?;
        Some(bytes)
    };
    Ok(Verified::Allowed { patch, warnings })
}

/// A response that passed `VerifyAdmissionResponse`; the patch is still raw bytes.
enum Verified {
    Allowed {
        patch: Option<Vec<u8>>,
        warnings: Vec<String>,
    },
    Denied(ApiError),
}

/// Applies a mutating hook's patch to the request's object; true when the object changed.
fn apply_patch(
    hook: &Value,
    attrs: &mut AdmissionAttributes,
    patch: Option<json_patch::Patch>,
) -> Result<bool, ApiError> {
    let Some(patch) = patch.filter(|p| !p.0.is_empty()) else {
        return Ok(false);
    };
    let Some(obj) = attrs.object.as_ref() else {
        return Err(ApiError::internal(&format!(
            "admission webhook {} attempted to modify the object, which is not supported for this operation",
            crate::error::go_quote(str_at(hook, "name"))
        )));
    };
    let mut next = obj.clone();
    json_patch::patch(&mut next, &patch).map_err(|e| ApiError::internal(&e.to_string()))?;
    let changed = next != *obj;
    attrs.object = Some(next);
    Ok(changed)
}

/// kube's webhook `ToStatusErr`.
fn denial(name: &str, status: Option<&Value>) -> ApiError {
    let empty = json!({});
    let s = status.unwrap_or(&empty);
    let denied_by = format!(
        "admission webhook {} denied the request",
        crate::error::go_quote(name)
    );
    let code = s
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(0);
    let (message, reason) = (str_at(s, "message"), str_at(s, "reason"));
    let text = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    let mut e = ApiError::new(code.max(400), reason, text);
    e.details = s.get("details").cloned();
    e
}
