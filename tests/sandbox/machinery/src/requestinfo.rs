//! kube-apiserver's `RequestInfoFactory`: the authorizer attributes of a request, read from its
//! method, path and query alone (before anything knows whether the resource exists), so an
//! unprivileged user gets 403 for `/api/v1/namespaces/x/pods/p/log` whether or not it is served.

use std::collections::HashMap;

use crate::authz::AuthzRequest;

/// Verbs that appear as a path segment (`/api/v1/watch/...`, `/api/v1/proxy/...`).
const SPECIAL_VERBS: &[&str] = &["proxy", "watch"];
/// Subresources of a namespace itself (`/api/v1/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// The attributes of `method path?query`, without the user.
pub fn request_attributes(method: &str, path: &str, query: &HashMap<String, String>) -> AuthzRequest {
    let mut info = AuthzRequest {
        verb: method.to_ascii_lowercase(),
        path: path.to_owned(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return info;
    }
    let mut rest = &parts[1..];
    if parts[0] == "apis" {
        if rest.len() < 3 {
            return info;
        }
        info.api_group = rest[0].to_owned();
        rest = &rest[1..];
    }
    info.resource_request = true;
    info.api_version = rest[0].to_owned();
    rest = &rest[1..];
    if SPECIAL_VERBS.contains(&rest[0]) {
        if rest.len() < 2 {
            // kube answers such a path with an error; nothing is authorized for it.
            info.verb = String::new();
            return info;
        }
        info.verb = rest[0].to_owned();
        rest = &rest[1..];
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_owned();
    }
    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].to_owned();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    if rest.len() >= 3 && info.verb != "proxy" {
        info.subresource = rest[2].to_owned();
    }
    if rest.len() >= 2 {
        info.name = rest[1].to_owned();
    }
    info.resource = rest[0].to_owned();
    if info.name.is_empty() && info.verb == "get" {
        info.verb = if query.get("watch").is_some_and(|w| go_bool(w)) {
            "watch".into()
        } else {
            "list".into()
        };
        if let Some(name) = query.get("fieldSelector").and_then(|s| exact_name(s)) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".into();
    }
    info
}

/// Go's `strconv.ParseBool` true values.
fn go_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The name a field selector pins with `metadata.name=x` (kube's `RequiresExactMatch`), if it
/// is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (field, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(f, _)| !f.ends_with('!'))?;
        (field.trim() == "metadata.name" && is_path_segment(value)).then(|| value.to_owned())
    })
}

/// `path.IsValidPathSegmentName`.
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, path: &str, query: &[(&str, &str)]) -> AuthzRequest {
        let q = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        request_attributes(method, path, &q)
    }

    /// (verb, group, version, resource, subresource, namespace, name) of a resource request.
    type Attrs<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
    /// (method, path, query, expected attributes).
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        Attrs<'static>,
    );

    fn res(a: &AuthzRequest) -> Attrs<'_> {
        assert!(a.resource_request, "{a:?}");
        (
            &a.verb,
            &a.api_group,
            &a.api_version,
            &a.resource,
            &a.subresource,
            &a.namespace,
            &a.name,
        )
    }

    #[test]
    fn resource_paths_like_kube() {
        let cases: &[Case] = &[
            (
                "GET",
                "/api/v1/namespaces",
                &[],
                ("list", "", "v1", "namespaces", "", "", ""),
            ),
            // A namespace is in its own namespace.
            (
                "GET",
                "/api/v1/namespaces/demo",
                &[],
                ("get", "", "v1", "namespaces", "", "demo", "demo"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/demo/finalize",
                &[],
                ("update", "", "v1", "namespaces", "finalize", "demo", "demo"),
            ),
            (
                "GET",
                "/api/v1/namespaces/demo/pods",
                &[],
                ("list", "", "v1", "pods", "", "demo", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/demo/pods",
                &[("watch", "true")],
                ("watch", "", "v1", "pods", "", "demo", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/demo/pods",
                &[("watch", "1"), ("fieldSelector", "metadata.name=p")],
                ("watch", "", "v1", "pods", "", "demo", "p"),
            ),
            (
                "GET",
                "/api/v1/namespaces/demo/pods/p/log",
                &[],
                ("get", "", "v1", "pods", "log", "demo", "p"),
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/demo/statefulsets",
                &[],
                ("deletecollection", "apps", "v1", "statefulsets", "", "demo", ""),
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/demo/statefulsets/s/status",
                &[],
                ("patch", "apps", "v1", "statefulsets", "status", "demo", "s"),
            ),
            (
                "POST",
                "/api/v1/namespaces/demo/serviceaccounts/sa/token",
                &[],
                ("create", "", "v1", "serviceaccounts", "token", "demo", "sa"),
            ),
            (
                "GET",
                "/apis/storage.k8s.io/v1/storageclasses/x",
                &[],
                ("get", "storage.k8s.io", "v1", "storageclasses", "", "", "x"),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/demo/pods/p",
                &[],
                ("watch", "", "v1", "pods", "", "demo", "p"),
            ),
            (
                "GET",
                "/api/v1/namespaces/demo/pods/p/proxy/a/b",
                &[],
                ("get", "", "v1", "pods", "proxy", "demo", "p"),
            ),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(res(&attrs(method, path, query)), *want, "{method} {path}");
        }
    }

    #[test]
    fn non_resource_paths() {
        for (method, path, verb) in [
            ("GET", "/api", "get"),
            ("GET", "/api/v1", "get"),
            ("GET", "/apis", "get"),
            ("GET", "/apis/apps", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/healthz", "get"),
            ("GET", "/openapi/v2", "get"),
            ("POST", "/foo/bar/baz", "post"),
            ("PUT", "/sandbox/v1/faults", "put"),
        ] {
            let a = attrs(method, path, &[]);
            assert!(!a.resource_request, "{path}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), (verb, path));
        }
    }

    #[test]
    fn field_selector_names() {
        assert_eq!(exact_name("metadata.name=a"), Some("a".into()));
        assert_eq!(
            exact_name("status.phase=Running,metadata.name==b"),
            Some("b".into())
        );
        assert_eq!(exact_name("metadata.name!=a"), None);
        assert_eq!(exact_name("metadata.name=a/b"), None);
        assert_eq!(exact_name("metadata.namespace=a"), None);
    }
}
