//! Admission chain in kube-apiserver's order: mutating webhooks (with reinvocation), object
//! validation (CR schema defaults, pruning and validation; built-in strategy validation),
//! the PersistentVolumeClaimResize plugin, validating webhooks, ResourceQuota.

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::machinery::{self, AdmissionAttributes, ApiError, Dispatcher, Operation};
use crate::registry::ResourceInfo;
use crate::store::Store;
use volops_sandbox_machinery::admission::{builtin, webhook_config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One admission request.
pub struct Attrs<'a> {
    pub op: Op,
    pub info: &'a ResourceInfo,
    pub sub: Option<&'a str>,
    pub ns: &'a str,
    pub name: &'a str,
    pub object: Option<Value>,
    pub old: Option<Value>,
    pub dry_run: bool,
    pub options: Option<Value>,
    /// The user the request acts as (`userInfo` of the AdmissionReview).
    pub user: machinery::UserInfo,
}

/// The admission machinery (webhook dispatcher and built-in plugins).
#[derive(Default)]
pub struct Admission {
    dispatcher: Dispatcher,
}

fn configs(store: &Store, plural: &str) -> Vec<Value> {
    let key = ("admissionregistration.k8s.io".to_string(), plural.to_string());
    store
        .list(&key, None, None)
        .0
        .into_iter()
        .map(|v| (*v).clone())
        .collect()
}

/// The CreateOptions/UpdateOptions of a write as kube decodes them from the query, which
/// admission sees as the review's `options` (`dryRun`, `fieldManager`, `fieldValidation`).
pub fn write_options(kind: &str, req: &Req) -> Value {
    let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if let Some(d) = req.q("dryRun") {
        o["dryRun"] = json!([d]);
    }
    for key in ["fieldManager", "fieldValidation"] {
        if let Some(v) = req.q(key) {
            o[key] = json!(v);
        }
    }
    o
}

/// Webhook configurations get their v1 defaults as they are decoded, before admission.
fn default_builtin(attrs: &mut AdmissionAttributes) {
    if attrs.group != "admissionregistration.k8s.io" {
        return;
    }
    let mutating = match attrs.resource.as_str() {
        "mutatingwebhookconfigurations" => true,
        "validatingwebhookconfigurations" => false,
        _ => return,
    };
    if let (Some(obj), "") = (attrs.object.as_mut(), attrs.subresource.as_str()) {
        webhook_config::default_webhook_configuration(obj, mutating);
    }
}

impl Admission {
    pub fn set_service_resolver(&self, resolver: crate::ServiceResolver) {
        self.dispatcher.set_service_resolver(resolver);
    }

    /// Runs the chain; returns the (possibly mutated) object and the warnings collected.
    pub async fn run(&self, api: &Api, a: Attrs<'_>) -> Result<(Option<Value>, Vec<String>), ApiError> {
        let store = &*api.store;
        let is_namespace = a.info.group.is_empty() && a.info.plural == "namespaces";
        // A request on an existing Namespace carries its name as namespace (kube's RequestInfo).
        let namespace = match (is_namespace, a.op) {
            (true, Op::Update | Op::Delete) => Some(a.name.to_string()),
            _ => (!a.ns.is_empty()).then(|| a.ns.to_string()),
        };
        let mut attrs = AdmissionAttributes {
            operation: match a.op {
                Op::Create => Operation::Create,
                Op::Update => Operation::Update,
                Op::Delete => Operation::Delete,
            },
            group: a.info.group.clone(),
            version: a.info.version.clone(),
            kind: a.info.kind.clone(),
            resource: a.info.plural.clone(),
            subresource: a.sub.unwrap_or("").to_string(),
            name: a.name.to_string(),
            namespace,
            object: a.object,
            old_object: a.old,
            dry_run: a.dry_run,
            user: a.user,
            options: a.options,
        };
        default_builtin(&mut attrs);
        let mutating = configs(store, "mutatingwebhookconfigurations");
        let mut warnings = vec![];
        if !mutating.is_empty() {
            let (obj, w) = self
                .dispatcher
                .mutate(&mutating, &attrs, store, &api.authorizer)
                .await?;
            warnings.extend(w);
            if !obj.is_null() {
                attrs.object = Some(obj);
            }
        }
        if let (Some(obj), Some(schema), Op::Create | Op::Update) =
            (attrs.object.as_mut(), &a.info.schema, a.op)
        {
            machinery::apply_schema(schema, obj, &a.info.kind, &a.info.group, a.name)?;
        }
        builtin::validate_object(&attrs)?;
        builtin::admit_pvc_resize(&attrs, store)?;
        let validating = configs(store, "validatingwebhookconfigurations");
        if !validating.is_empty() {
            warnings.extend(
                self.dispatcher
                    .validate(&validating, &attrs, store, &api.authorizer)
                    .await?,
            );
        }
        builtin::admit_quota(&attrs, store)?;
        Ok((attrs.object, warnings))
    }
}
