//! Parses REST paths into the resource they address.

use crate::machinery::ApiError;
use crate::registry::{Registry, ResourceInfo};

/// What a resource path addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub info: ResourceInfo,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    pub fn ns_str(&self) -> &str {
        self.ns.as_deref().unwrap_or("")
    }
    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    /// `plural` or `plural/sub`.
    pub fn resource_path(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}/{s}", self.info.plural),
            None => self.info.plural.clone(),
        }
    }
}

/// Result of routing a request path.
pub enum Route {
    Resource(Box<Target>),
    Discovery,
    NotFound,
}

/// Maps `/api/v1/...` and `/apis/G/V/...` onto a served resource.
pub fn parse(path: &str, registry: &Registry) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _] => return Ok(Route::Discovery),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(Route::NotFound),
    };
    // Legacy /watch/ paths are not used by current clients; kube serves them, we skip them.
    let (ns, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, r, tail @ ..]
            if !(group.is_empty() && (*r == "status" || *r == "finalize") && tail.is_empty()) =>
        {
            (Some(*ns), &rest[2..])
        }
        other => (None, other),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return Ok(Route::NotFound),
    };
    let Some(info) = registry.get(group, version, plural) else {
        return Ok(Route::NotFound);
    };
    if let Some(s) = sub
        && !(s == "status" && info.status_sub)
        && !info.subresources.iter().any(|x| x.name == s)
    {
        return Ok(Route::NotFound);
    }
    if ns.is_some() && !info.namespaced {
        return Ok(Route::NotFound);
    }
    Ok(Route::Resource(Box::new(Target {
        info: info.clone(),
        ns: ns.map(String::from),
        name: name.map(String::from),
        sub: sub.map(String::from),
    })))
}
