//! The node proxy (`/api/v1/nodes/{name}/proxy/{path}`, RBAC `nodes/proxy`): kube-apiserver
//! forwards it to the node's kubelet; here the simulated cluster's kubelets answer in-process
//! with kubelet's own paths (`/stats/summary`, `/metrics`, `/healthz`) and errors. Requests
//! are authenticated and authorized before they get here, like any other.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use volops_sandbox_cluster::nodes::KUBELET_PORT;
use volops_sandbox_cluster::stats::{metrics, summary};
use volops_sandbox_cluster::{KubeletError, Kubelets};

use crate::api::{Api, Req, error_response};
use crate::machinery::ApiError;

/// `(node, path on the kubelet)` of a node proxy path.
pub fn parse(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v1/nodes/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let kubelet_path = match tail.strip_prefix("proxy")? {
        "" => "/",
        p if p.starts_with('/') => p,
        _ => return None,
    };
    // `name`, `name:port` or `scheme:name:port`, as kube's SplitSchemeNamePort reads it.
    let parts: Vec<&str> = id.split(':').collect();
    let name = match parts.as_slice() {
        [_, name, _] => *name,
        [name, ..] => *name,
        [] => return None,
    };
    Some((name, kubelet_path))
}

/// Serves node proxy requests; None for every other path.
pub fn serve(api: &Api, path: &str, req: &Req) -> Option<Response> {
    let (node, kubelet_path) = parse(path)?;
    if let Some(err) = api.faults.roll("get", "nodes/proxy", node) {
        return Some(error_response(&err));
    }
    let Some(obj) = api.store.get(&(String::new(), "nodes".into()), "", node) else {
        return Some(error_response(&ApiError::not_found("nodes", node)));
    };
    let Some(ip) = internal_ip(&obj) else {
        let msg = "no preferred addresses found; known addresses: []";
        return Some(error_response(&ApiError::new(500, "", msg)));
    };
    let kubelets = api.kubelets.get();
    Some(match kubelet(kubelets, node, kubelet_path, &req.method) {
        Ok(resp) => resp,
        Err(KubeletError::UnknownNode(_)) => {
            // A Node object no simulated kubelet runs: nothing listens on its address.
            let port = kubelet_port(&obj);
            let msg = format!("dial tcp {ip}:{port}: connect: connection refused");
            error_response(&ApiError::new(500, "", msg))
        }
        Err(e) => error_response(&ApiError::new(500, "", e.to_string())),
    })
}

/// What the node's kubelet answers.
fn kubelet(
    kubelets: Option<&Kubelets>,
    node: &str,
    path: &str,
    method: &Method,
) -> Result<Response, KubeletError> {
    let kubelets = kubelets.ok_or_else(|| KubeletError::UnknownNode(node.to_owned()))?;
    let known = matches!(
        path,
        "/stats/summary" | "/stats/summary/" | "/metrics" | "/healthz"
    );
    if known && method != Method::GET && method != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405: Method Not Allowed",
            "text/plain; charset=utf-8",
        ));
    }
    Ok(match path {
        "/stats/summary" | "/stats/summary/" => {
            let body = kubelets.summary(node)?;
            json(&body)
        }
        "/metrics" => text(StatusCode::OK, &kubelets.metrics(node)?, metrics::CONTENT_TYPE),
        "/healthz" => {
            kubelets.summary(node)?;
            text(StatusCode::OK, "ok", "text/plain; charset=utf-8")
        }
        _ => {
            kubelets.summary(node)?;
            text(
                StatusCode::NOT_FOUND,
                "404 page not found\n",
                "text/plain; charset=utf-8",
            )
        }
    })
}

fn internal_ip(node: &Value) -> Option<String> {
    let addresses = node["status"]["addresses"].as_array()?;
    let of = |t: &str| {
        addresses
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
    };
    of("InternalIP")
        .or_else(|| of("Hostname"))
        .or_else(|| of("ExternalIP"))
        .map(str::to_owned)
}

fn kubelet_port(node: &Value) -> u64 {
    node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0)
        .unwrap_or(u64::from(KUBELET_PORT))
}

fn json(body: &Value) -> Response {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    text_bytes(StatusCode::OK, bytes, summary::CONTENT_TYPE)
}

fn text(status: StatusCode, body: &str, content_type: &'static str) -> Response {
    text_bytes(status, body.as_bytes().to_vec(), content_type)
}

fn text_bytes(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn node_proxy_paths_name_the_node_and_the_kubelet_path() {
        assert_eq!(
            parse("/api/v1/nodes/n1/proxy/stats/summary"),
            Some(("n1", "/stats/summary"))
        );
        assert_eq!(
            parse("/api/v1/nodes/n1:10250/proxy/metrics"),
            Some(("n1", "/metrics"))
        );
        assert_eq!(parse("/api/v1/nodes/https:n1:10250/proxy"), Some(("n1", "/")));
        assert_eq!(parse("/api/v1/nodes/n1"), None);
        assert_eq!(parse("/api/v1/nodes/n1/status"), None);
        assert_eq!(parse("/api/v1/nodes/n1/proxyx"), None);
    }
}
