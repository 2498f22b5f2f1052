//! Authentication in kube-apiserver's order: a client certificate, then a bearer token (the
//! admin token of the written kubeconfig, or a ServiceAccount token), else the anonymous user.
//! A certificate or token that is presented but not valid is a 401.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::json;

use super::tokens::{Claims, ISSUER};
use crate::api::Api;
use crate::machinery::{ApiError, UserInfo};

/// The name of the admin in the written kubeconfig (a `system:masters` member).
pub const ADMIN_USER: &str = "sandbox-admin";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";

/// The identity of a connection's client certificate, judged once per connection.
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Arc<Result<UserInfo, String>>);

/// The user a request acts as, after authentication and impersonation.
#[derive(Debug, Clone)]
pub struct RequestUser(pub UserInfo);

/// kube's anonymous user.
pub fn anonymous() -> UserInfo {
    UserInfo {
        username: ANONYMOUS.into(),
        groups: vec![UNAUTHENTICATED.into()],
        ..Default::default()
    }
}

/// kube's 401 (the same body whatever failed).
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Adds `system:authenticated` as kube's authenticated-group adder does.
fn with_authenticated(mut u: UserInfo) -> UserInfo {
    if !u.groups.iter().any(|g| g == AUTHENTICATED) {
        u.groups.push(AUTHENTICATED.into());
    }
    u
}

/// The bearer token of an `Authorization: Bearer <token>` header (other schemes are ignored).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who makes the request; Err(reason) is a 401.
pub fn authenticate(api: &Api, headers: &HeaderMap, peer: Option<&PeerIdentity>) -> Result<UserInfo, String> {
    let mut errors = vec![];
    if let Some(p) = peer {
        match &*p.0 {
            Ok(u) => return Ok(with_authenticated(u.clone())),
            Err(e) => errors.push(e.clone()),
        }
    }
    if let Some(token) = bearer(headers) {
        match authenticate_token(api, token, None) {
            Ok((u, _)) => return Ok(u),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(anonymous())
    } else {
        Err(errors.join(", "))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user of a bearer token and the audiences it was accepted for (`audiences` None: the
/// API server's own). Err is the reason kube would log.
pub fn authenticate_token(
    api: &Api,
    token: &str,
    audiences: Option<&[String]>,
) -> Result<(UserInfo, Vec<String>), String> {
    let own = [ISSUER.to_owned()];
    let wanted = audiences.filter(|a| !a.is_empty()).unwrap_or(&own);
    if constant_time_eq(token.as_bytes(), api.auth.admin_token.as_bytes()) {
        let admin = UserInfo {
            username: ADMIN_USER.into(),
            groups: vec![volops_sandbox_machinery::rbac::MASTERS.into()],
            ..Default::default()
        };
        return Ok((with_authenticated(admin), wanted.to_vec()));
    }
    let claims = api.auth.tokens.verify(token).ok_or("invalid bearer token")?;
    let matched: Vec<String> = claims
        .audiences
        .iter()
        .filter(|a| wanted.contains(a))
        .cloned()
        .collect();
    if matched.is_empty() {
        return Err("token audiences do not match".into());
    }
    let now = api.auth.now();
    if now >= claims.expires_at {
        return Err("service account token has expired".into());
    }
    if now < claims.issued_at {
        return Err("service account token is not valid yet".into());
    }
    check_bound_objects(api, &claims)?;
    let ns = &claims.namespace;
    let mut extra = json!({"authentication.kubernetes.io/credential-id": [format!("JTI={}", claims.id)]});
    if let Some((kind, name, uid)) = &claims.bound
        && kind == "Pod"
    {
        extra["authentication.kubernetes.io/pod-name"] = json!([name]);
        extra["authentication.kubernetes.io/pod-uid"] = json!([uid]);
    }
    let user = UserInfo {
        username: format!("system:serviceaccount:{ns}:{}", claims.service_account),
        uid: claims.service_account_uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        extra: Some(extra),
    };
    Ok((with_authenticated(user), matched))
}

/// kube's bound-token checks: the ServiceAccount (and the Pod or Secret the token is bound to)
/// still exists with the UID the token names, and is not being deleted.
fn check_bound_objects(api: &Api, c: &Claims) -> Result<(), String> {
    let lookup = |resource: &str, name: &str, uid: &str| -> Result<(), String> {
        let obj = api
            .store
            .get(&(String::new(), resource.to_owned()), &c.namespace, name)
            .ok_or_else(|| format!("{resource} {name:?} not found"))?;
        let stored = obj["metadata"]["uid"].as_str().unwrap_or_default();
        if stored != uid {
            return Err(format!("{resource} UID ({stored}) does not match claim ({uid})"));
        }
        if !obj["metadata"]["deletionTimestamp"].is_null() {
            return Err(format!("{resource} {}/{name} has been deleted", c.namespace));
        }
        Ok(())
    };
    lookup("serviceaccounts", &c.service_account, &c.service_account_uid)?;
    if let Some((kind, name, uid)) = &c.bound {
        lookup(if kind == "Pod" { "pods" } else { "secrets" }, name, uid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer(&h("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
