//! The review APIs: `SelfSubjectAccessReview` (`kubectl auth can-i`), `SubjectAccessReview`,
//! `LocalSubjectAccessReview`, `SelfSubjectRulesReview` (`kubectl auth can-i --list`),
//! `SelfSubjectReview` (`kubectl auth whoami`) and `TokenReview`. Nothing is stored: each create
//! answers with the object and its `status`, as kube-apiserver does.

use http::StatusCode;
use serde_json::{Value, json};

use super::authn::authenticate_token;
use crate::api::{Api, Reply, Req};
use crate::machinery::{ApiError, AuthzRequest, Decision, FieldCause, UserInfo};
use crate::route::Target;

const AUTHZ: &str = "authorization.k8s.io";

fn created(mut obj: Value, kind: &str, group: &str, status: Value) -> Reply {
    obj["kind"] = json!(kind);
    obj["apiVersion"] = json!(format!("{group}/v1"));
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    obj["status"] = status;
    Reply {
        status: StatusCode::CREATED,
        body: obj,
        warnings: vec![],
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The attributes of a review's `resourceAttributes` or `nonResourceAttributes`.
fn attributes(spec: &Value, user: UserInfo) -> AuthzRequest {
    let r = &spec["resourceAttributes"];
    if r.is_object() {
        return AuthzRequest {
            user,
            verb: text(&r["verb"]),
            resource_request: true,
            api_group: text(&r["group"]),
            api_version: text(&r["version"]),
            resource: text(&r["resource"]),
            subresource: text(&r["subresource"]),
            namespace: text(&r["namespace"]),
            name: text(&r["name"]),
            path: String::new(),
        };
    }
    let n = &spec["nonResourceAttributes"];
    AuthzRequest {
        user,
        verb: text(&n["verb"]),
        path: text(&n["path"]),
        ..Default::default()
    }
}

/// kube's `ValidateSelfSubjectAccessReviewSpec` (and the user check of the other kinds).
fn validate_spec(kind: &str, spec: &Value, needs_user: bool) -> Result<(), ApiError> {
    let (res, non) = (
        spec["resourceAttributes"].is_object(),
        spec["nonResourceAttributes"].is_object(),
    );
    let mut causes = vec![];
    if res && non {
        causes.push(FieldCause::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !res && !non {
        causes.push(FieldCause::invalid(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let no_groups = spec["groups"].as_array().is_none_or(Vec::is_empty);
    if needs_user && text(&spec["user"]).is_empty() && no_groups {
        causes.push(FieldCause::invalid(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, AUTHZ, "", causes))
    }
}

/// `status` of an access review.
fn decide(api: &Api, attrs: &AuthzRequest) -> Value {
    let (decision, reason) = api.authorizer.authorize_with_reason(attrs);
    let mut status = json!({"allowed": decision.allowed()});
    if matches!(decision, Decision::Deny(_)) {
        status["denied"] = json!(true);
    }
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    status
}

/// POST selfsubjectaccessreviews: may the requester do it?
pub fn self_subject_access_review(api: &Api, req: &Req, body: Value) -> Result<Reply, ApiError> {
    validate_spec("SelfSubjectAccessReview", &body["spec"], false)?;
    let status = decide(api, &attributes(&body["spec"], req.user.clone()));
    Ok(created(body, "SelfSubjectAccessReview", AUTHZ, status))
}

/// The user a (Local)SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> UserInfo {
    UserInfo {
        username: text(&spec["user"]),
        uid: text(&spec["uid"]),
        groups: spec["groups"]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        extra: spec.get("extra").filter(|e| e.is_object()).cloned(),
    }
}

/// POST subjectaccessreviews (cluster) and localsubjectaccessreviews (in `t`'s namespace).
pub fn subject_access_review(api: &Api, t: &Target, body: Value) -> Result<Reply, ApiError> {
    let local = t.info.plural == "localsubjectaccessreviews";
    let kind = if local {
        "LocalSubjectAccessReview"
    } else {
        "SubjectAccessReview"
    };
    let spec = &body["spec"];
    validate_spec(kind, spec, true)?;
    if local {
        if spec["nonResourceAttributes"].is_object() {
            let cause = FieldCause::invalid(
                "spec.nonResourceAttributes",
                &spec["nonResourceAttributes"],
                "disallowed on this kind of request",
            );
            return Err(ApiError::invalid(kind, AUTHZ, "", vec![cause]));
        }
        if text(&spec["resourceAttributes"]["namespace"]) != t.ns_str() {
            return Err(ApiError::bad_request(&format!(
                "spec.resourceAttributes.namespace must match namespace: {}",
                t.ns_str()
            )));
        }
    }
    let status = decide(api, &attributes(spec, spec_user(spec)));
    Ok(created(body, kind, AUTHZ, status))
}

/// POST selfsubjectrulesreviews: every rule the requester holds in `spec.namespace`.
pub fn self_subject_rules_review(api: &Api, req: &Req, body: Value) -> Result<Reply, ApiError> {
    let ns = text(&body["spec"]["namespace"]);
    if ns.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let (rules, errors) = api.auth.rbac.index().rules_for(&req.user, &ns);
    let (mut resource_rules, mut non_resource_rules) = (vec![], vec![]);
    for r in rules {
        if r.non_resource_urls.is_empty() {
            let mut rule = json!({"verbs": r.verbs});
            for (k, v) in [
                ("apiGroups", &r.api_groups),
                ("resources", &r.resources),
                ("resourceNames", &r.resource_names),
            ] {
                if !v.is_empty() {
                    rule[k] = json!(v);
                }
            }
            resource_rules.push(rule);
        } else {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    Ok(created(body, "SelfSubjectRulesReview", AUTHZ, status))
}

/// POST selfsubjectreviews: who the requester is.
pub fn self_subject_review(req: &Req, body: Value) -> Result<Reply, ApiError> {
    let status = json!({"userInfo": req.user});
    Ok(created(
        body,
        "SelfSubjectReview",
        "authentication.k8s.io",
        status,
    ))
}

/// POST tokenreviews: whom a token authenticates.
pub fn token_review(api: &Api, body: Value) -> Result<Reply, ApiError> {
    let spec = &body["spec"];
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let status = match authenticate_token(api, spec["token"].as_str().unwrap_or_default(), Some(&audiences)) {
        Ok((user, auds)) => json!({"authenticated": true, "user": user, "audiences": auds}),
        Err(e) => json!({"user": {}, "error": e}),
    };
    Ok(created(body, "TokenReview", "authentication.k8s.io", status))
}
