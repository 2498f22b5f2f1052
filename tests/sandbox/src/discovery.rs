//! Discovery documents (legacy, non-aggregated form), /version, health and OpenAPI stubs.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Req, not_found_page};
use crate::registry::ResourceInfo;

/// Answers the fixed paths; None for everything else.
pub fn serve(api: &Api, path: &str, _req: &Req) -> Option<Response> {
    let p = path.trim_end_matches('/');
    let body = match p {
        "/version" => json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-volops-sandbox",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
            "platform": "linux/amd64"
        }),
        "/healthz" | "/readyz" | "/livez" => return Some((StatusCode::OK, "ok").into_response()),
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.server_address}]
        }),
        "/apis" => {
            let reg = api.registry();
            let groups: Vec<Value> = reg
                .groups()
                .into_iter()
                .filter(|g| !g.is_empty())
                .map(|g| group_doc(&g, &reg.versions_of(&g)))
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        // OpenAPI v2 as an (almost) empty protobuf document: kubectl then finds no schema for
        // any kind, skips client-side validation and falls back to its compiled-in patch
        // metadata, which is what it does for schemaless resources on a real cluster.
        "/openapi/v2" => return Some(openapi_v2()),
        _ if p.starts_with("/openapi") => return Some(not_found_page()),
        _ => return None,
    };
    Some(axum::Json(body).into_response())
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

fn resource_docs(r: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
        "verbs": r.verbs, "shortNames": r.short_names, "categories": r.categories,
    })];
    if r.status_sub {
        out.push(json!({
            "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "patch", "update"],
        }));
    }
    for s in r.subresources {
        let mut doc = json!({
            "name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced,
            "kind": s.kind, "verbs": s.verbs,
        });
        // A subresource of the resource's own group/version carries neither (as kube lists it).
        if !s.version.is_empty() {
            doc["group"] = json!(s.group);
            doc["version"] = json!(s.version);
        }
        out.push(doc);
    }
    out
}

/// `/api/v1`, `/apis/G`, `/apis/G/V`.
pub fn group_discovery(api: &Api, path: &str) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let reg = api.registry();
    let body = match segs.as_slice() {
        ["api", v] | ["apis", "", v] if !reg.resources("", v).is_empty() => {
            resource_list("v1", reg.resources("", v))
        }
        ["apis", g] => {
            let versions = reg.versions_of(g);
            if versions.is_empty() {
                return not_found_page();
            }
            let mut doc = group_doc(g, &versions);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        ["apis", g, v] if !reg.resources(g, v).is_empty() => {
            resource_list(&format!("{g}/{v}"), reg.resources(g, v))
        }
        _ => return not_found_page(),
    };
    axum::Json(body).into_response()
}

fn resource_list(gv: &str, resources: &[ResourceInfo]) -> Value {
    let list: Vec<Value> = resources.iter().flat_map(resource_docs).collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// gnostic openapi_v2.Document{swagger: "2.0", info: {title, version}} in protobuf wire form.
fn openapi_v2() -> Response {
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }
    let mut info = field(0x0a, b"volops-sandbox");
    info.extend(field(0x12, b"v1.33.0"));
    let mut doc = field(0x0a, b"2.0");
    doc.extend(field(0x12, &info));
    let mut resp = (StatusCode::OK, doc).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    );
    resp
}
