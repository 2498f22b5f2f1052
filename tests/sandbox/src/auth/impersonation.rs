//! kube-apiserver's impersonation filter: `Impersonate-User`, `Impersonate-Group`,
//! `Impersonate-Uid` and `Impersonate-Extra-<key>` need `impersonate` on `users`, `groups`,
//! `serviceaccounts` (core group) and `uids`, `userextras/<key>` (authentication.k8s.io); the
//! request then acts as the impersonated user, authorized like any other.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::authn::{ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED};
use crate::api::Api;
use crate::machinery::{ApiError, AuthzRequest, UserInfo, forbidden};

/// One thing the requestor asks to act as.
#[derive(Debug)]
enum Wish {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Wish {
    /// The attributes kube authorizes for this wish.
    fn attributes(&self, requestor: &UserInfo) -> AuthzRequest {
        let (group, resource, sub, ns, name) = match self {
            Wish::ServiceAccount { namespace, name } => {
                ("", "serviceaccounts", "", namespace.as_str(), name.as_str())
            }
            Wish::User(n) => ("", "users", "", "", n.as_str()),
            Wish::Group(n) => ("", "groups", "", "", n.as_str()),
            Wish::Extra { key, value } => (
                "authentication.k8s.io",
                "userextras",
                key.as_str(),
                "",
                value.as_str(),
            ),
            Wish::Uid(u) => ("authentication.k8s.io", "uids", "", "", u.as_str()),
        };
        AuthzRequest {
            user: requestor.clone(),
            verb: "impersonate".into(),
            resource_request: true,
            api_group: group.into(),
            api_version: if group.is_empty() { "v1" } else { "" }.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }
}

/// `%XX` escapes in an extra key header (kube's `unescapeExtraKey`).
fn unescape(key: &str) -> String {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The impersonation the headers ask for (in kube's order), or None without headers.
fn wishes(headers: &HeaderMap) -> Result<Option<Vec<Wish>>, ApiError> {
    let text = |v: &http::HeaderValue| v.to_str().ok().map(str::to_owned);
    let mut out = vec![];
    let user = headers
        .get("impersonate-user")
        .and_then(text)
        .filter(|u| !u.is_empty());
    if let Some(u) = &user {
        match u
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains(':'))
        {
            Some((ns, n)) => out.push(Wish::ServiceAccount {
                namespace: ns.to_owned(),
                name: n.to_owned(),
            }),
            None => out.push(Wish::User(u.clone())),
        }
    }
    for g in headers.get_all("impersonate-group").iter().filter_map(text) {
        out.push(Wish::Group(g));
    }
    for (name, value) in headers {
        if let (Some(key), Some(v)) = (name.as_str().strip_prefix("impersonate-extra-"), text(value)) {
            out.push(Wish::Extra {
                key: unescape(key),
                value: v,
            });
        }
    }
    if let Some(uid) = headers
        .get("impersonate-uid")
        .and_then(text)
        .filter(|u| !u.is_empty())
    {
        out.push(Wish::Uid(uid));
    }
    if out.is_empty() {
        return Ok(None);
    }
    if user.is_none() {
        return Err(ApiError::internal(&format!(
            "requested {out:?} without impersonating a user"
        )));
    }
    Ok(Some(out))
}

/// The user the request acts as: `requestor` itself, or whom it may impersonate; a wish the
/// requestor may not have is kube's 403 for it.
pub fn impersonate(api: &Api, requestor: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let Some(wishes) = wishes(headers)? else {
        return Ok(requestor);
    };
    let groups_given = wishes.iter().any(|w| matches!(w, Wish::Group(_)));
    let mut user = UserInfo::default();
    let mut extra = Map::new();
    for wish in &wishes {
        let attrs = wish.attributes(&requestor);
        let decision = api.authorizer.authorize(&attrs);
        if !decision.allowed() {
            let reason = match decision {
                crate::machinery::Decision::Deny(r) | crate::machinery::Decision::NoOpinion(r) => r,
                crate::machinery::Decision::Allow => String::new(),
            };
            return Err(forbidden(&attrs, &reason));
        }
        match wish {
            Wish::ServiceAccount { namespace, name } => {
                user.username = format!("system:serviceaccount:{namespace}:{name}");
                if !groups_given {
                    user.groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{namespace}"),
                    ];
                }
            }
            Wish::User(n) => user.username = n.clone(),
            Wish::Group(g) => user.groups.push(g.clone()),
            Wish::Extra { key, value } => {
                if let Value::Array(a) = extra.entry(key.clone()).or_insert_with(|| Value::Array(vec![])) {
                    a.push(Value::String(value.clone()));
                }
            }
            Wish::Uid(u) => user.uid = u.clone(),
        }
    }
    if user.username == ANONYMOUS {
        if !user.groups.iter().any(|g| g == UNAUTHENTICATED) {
            user.groups.push(UNAUTHENTICATED.into());
        }
    } else if !user
        .groups
        .iter()
        .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        user.groups.push(AUTHENTICATED.into());
    }
    user.extra = (!extra.is_empty()).then_some(Value::Object(extra));
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        let mut h = HeaderMap::new();
        assert!(wishes(&h).unwrap().is_none());
        h.insert("impersonate-group", "g".parse().unwrap());
        assert_eq!(wishes(&h).unwrap_err().code, 500);
        h.insert(
            "impersonate-user",
            "system:serviceaccount:ops:ctl".parse().unwrap(),
        );
        h.insert("impersonate-extra-scopes%2fa", "x".parse().unwrap());
        let w = wishes(&h).unwrap().unwrap();
        assert!(
            matches!(&w[0], Wish::ServiceAccount { namespace, name } if namespace == "ops" && name == "ctl")
        );
        assert!(matches!(&w[1], Wish::Group(g) if g == "g"));
        assert!(matches!(&w[2], Wish::Extra { key, value } if key == "scopes/a" && value == "x"));
        let attrs = w[2].attributes(&UserInfo::default());
        assert_eq!(
            (
                attrs.api_group.as_str(),
                attrs.resource.as_str(),
                attrs.subresource.as_str()
            ),
            ("authentication.k8s.io", "userextras", "scopes/a")
        );
    }
}
