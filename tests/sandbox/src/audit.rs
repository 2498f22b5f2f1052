//! kube-apiserver's audit log at level `Metadata`, stage `ResponseComplete`: who asked for what,
//! the authorizer's decision and the response code, kept in memory for tests that must prove
//! which permissions a component really uses (the chart's RBAC). Off unless asked for
//! (`SandboxOptions::audit_capacity`); bounded, the oldest events go first.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::machinery::AuthzRequest;

/// The in-memory audit log.
#[derive(Default)]
pub struct AuditLog {
    capacity: usize,
    events: Mutex<VecDeque<Value>>,
}

impl AuditLog {
    /// A log keeping the newest `capacity` events (0: no log).
    pub fn new(capacity: usize) -> Self {
        AuditLog {
            capacity,
            events: Mutex::new(VecDeque::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Records one finished request as an `audit.k8s.io/v1` Event.
    pub fn record(&self, attrs: &AuthzRequest, allowed: bool, reason: &str, code: u16) {
        if !self.enabled() {
            return;
        }
        let event = event(attrs, allowed, reason, code);
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Every event kept, oldest first.
    pub fn events(&self) -> Vec<Value> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().cloned().collect()
    }
}

/// The event as kube writes it (`k8s.io/apiserver/pkg/apis/audit/v1`), with the authorizer's
/// decision in the `authorization.k8s.io/*` annotations.
fn event(a: &AuthzRequest, allowed: bool, reason: &str, code: u16) -> Value {
    let mut user = json!({"username": a.user.username, "groups": a.user.groups});
    if !a.user.uid.is_empty() {
        user["uid"] = json!(a.user.uid);
    }
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": uuid::Uuid::new_v4().to_string(), "stage": "ResponseComplete",
        "requestURI": a.path, "verb": a.verb, "user": user,
        "responseStatus": {"metadata": {}, "code": code},
        "stageTimestamp": crate::meta::now(),
        "annotations": {
            "authorization.k8s.io/decision": if allowed { "allow" } else { "forbid" },
            "authorization.k8s.io/reason": reason,
        },
    });
    if a.resource_request {
        let mut r = json!({"resource": a.resource, "apiGroup": a.api_group, "apiVersion": a.api_version});
        for (k, v) in [
            ("namespace", &a.namespace),
            ("name", &a.name),
            ("subresource", &a.subresource),
        ] {
            if !v.is_empty() {
                r[k] = json!(v);
            }
        }
        e["objectRef"] = r;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machinery::UserInfo;

    fn attrs(verb: &str) -> AuthzRequest {
        AuthzRequest {
            user: UserInfo {
                username: "alice".into(),
                groups: vec!["tenants".into()],
                ..Default::default()
            },
            verb: verb.into(),
            resource_request: true,
            api_version: "v1".into(),
            resource: "pods".into(),
            namespace: "demo".into(),
            path: "/api/v1/namespaces/demo/pods".into(),
            ..Default::default()
        }
    }

    #[test]
    fn events_have_kubes_shape_and_the_oldest_go_first() {
        let log = AuditLog::new(2);
        log.record(&attrs("list"), true, "RBAC: allowed", 200);
        log.record(&attrs("create"), false, "", 403);
        log.record(&attrs("watch"), true, "", 200);
        let events = log.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["verb"], "create");
        assert_eq!(events[0]["responseStatus"]["code"], 403);
        assert_eq!(
            events[0]["annotations"]["authorization.k8s.io/decision"],
            "forbid"
        );
        assert_eq!(events[0]["objectRef"]["namespace"], "demo");
        assert!(events[0]["objectRef"].get("name").is_none());
        assert_eq!(events[1]["user"]["username"], "alice");
    }

    #[test]
    fn a_log_without_capacity_keeps_nothing() {
        let log = AuditLog::new(0);
        log.record(&attrs("list"), true, "", 200);
        assert!(log.events().is_empty());
    }
}
