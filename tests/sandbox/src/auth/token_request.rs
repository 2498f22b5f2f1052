//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (the TokenRequest API behind
//! `kubectl create token` and a pod's projected token): a signed JWT for the ServiceAccount,
//! optionally bound to a Pod or Secret, valid `spec.expirationSeconds` (default one hour).

use http::StatusCode;
use serde_json::{Value, json};

use super::tokens::{Claims, ISSUER};
use crate::api::{Api, Reply};
use crate::machinery::{ApiError, FieldCause};
use crate::route::Target;

const GROUP: &str = "authentication.k8s.io";
/// kube's `MinTokenAgeSec` and the default lifetime.
const MIN_SECONDS: i64 = 600;
const DEFAULT_SECONDS: i64 = 3600;

fn invalid(name: &str, field: &str, value: &Value, msg: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        GROUP,
        name,
        vec![FieldCause::invalid(field, value, msg)],
    )
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The bound object's (kind, name, uid) after kube's checks.
fn bound_object(
    api: &Api,
    ns: &str,
    sa: &str,
    r: &Value,
) -> Result<Option<(String, String, String)>, ApiError> {
    if !r.is_object() {
        return Ok(None);
    }
    let (kind, api_version, name) = (
        r["kind"].as_str().unwrap_or_default(),
        r["apiVersion"].as_str().unwrap_or_default(),
        r["name"].as_str().unwrap_or_default(),
    );
    let resource = match (api_version, kind) {
        ("v1", "Pod") => "pods",
        ("v1", "Secret") => "secrets",
        _ => {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            return Err(ApiError::bad_request(&format!(
                "cannot bind token for serviceaccount {sa:?} to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let obj = api
        .store
        .get(&(String::new(), resource.to_owned()), ns, name)
        .ok_or_else(|| ApiError::not_found(resource, name))?;
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    if kind == "Pod" && obj["spec"]["serviceAccountName"].as_str().unwrap_or("default") != sa {
        return Err(ApiError::bad_request(&format!(
            "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
        )));
    }
    if let Some(want) = r["uid"].as_str().filter(|u| !u.is_empty())
        && want != uid
    {
        return Err(ApiError::conflict(
            kind,
            name,
            &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(Some((kind.to_owned(), name.to_owned(), uid)))
}

/// Issues the token.
pub fn create(api: &Api, t: &Target, mut body: Value) -> Result<Reply, ApiError> {
    let (ns, name) = (t.ns_str(), t.name_str());
    for (field, want, what) in [("name", name, "name"), ("namespace", ns, "namespace")] {
        let given = body["metadata"][field].as_str().unwrap_or_default();
        if !given.is_empty() && given != want {
            return Err(invalid(
                name,
                &format!("metadata.{field}"),
                &json!(given),
                &format!("must match the service account {what} if specified"),
            ));
        }
    }
    let spec = &mut body["spec"];
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(DEFAULT_SECONDS);
    if seconds < MIN_SECONDS {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            &json!(seconds),
            &format!("may not specify a duration less than {MIN_SECONDS} seconds"),
        ));
    }
    if seconds > i64::from(u32::MAX) {
        let cause = FieldCause::too_long("spec.expirationSeconds", u32::MAX as usize);
        return Err(ApiError::invalid("TokenRequest", GROUP, name, vec![cause]));
    }
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        _ => vec![ISSUER.to_owned()],
    };
    let sa = api
        .store
        .get(&(String::new(), "serviceaccounts".to_owned()), ns, name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
    let bound = bound_object(api, ns, name, &spec["boundObjectRef"])?;
    let now = api.auth.now();
    let claims = Claims {
        namespace: ns.to_owned(),
        service_account: name.to_owned(),
        service_account_uid: sa["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
        audiences: audiences.clone(),
        issued_at: now,
        expires_at: now + seconds,
        id: uuid::Uuid::new_v4().to_string(),
        bound,
    };
    let token = api
        .auth
        .tokens
        .sign(&claims)
        .map_err(|e| ApiError::internal(&e))?;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(seconds);
    if spec.get("boundObjectRef").is_none() {
        spec["boundObjectRef"] = Value::Null;
    }
    body["kind"] = json!("TokenRequest");
    body["apiVersion"] = json!(format!("{GROUP}/v1"));
    body["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": rfc3339(now)});
    body["status"] = json!({"token": token, "expirationTimestamp": rfc3339(now + seconds)});
    Ok(Reply {
        status: StatusCode::CREATED,
        body,
        warnings: vec![],
    })
}
