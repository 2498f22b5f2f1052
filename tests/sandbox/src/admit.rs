//! Admission chain in kube-apiserver's order: mutating webhooks, CR schema (defaults,
//! pruning, validation), validating webhooks, built-in admission.

use serde_json::Value;

use crate::machinery::{self, AdmissionAttributes, ApiError, Dispatcher, Operation};
use crate::registry::ResourceInfo;
use crate::store::Store;

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

impl Admission {
    pub fn set_service_resolver(&self, resolver: crate::ServiceResolver) {
        self.dispatcher.set_service_resolver(resolver);
    }

    /// Runs the chain; returns the (possibly mutated) object and the warnings collected.
    pub async fn run(&self, store: &Store, a: Attrs<'_>) -> Result<(Option<Value>, Vec<String>), ApiError> {
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
            namespace: (!a.ns.is_empty()).then(|| a.ns.to_string()),
            object: a.object,
            old_object: a.old,
            dry_run: a.dry_run,
            user: a.user,
            options: a.options,
        };
        let mutating = configs(store, "mutatingwebhookconfigurations");
        let mut warnings = vec![];
        if !mutating.is_empty() {
            let (obj, w) = self.dispatcher.mutate(&mutating, &attrs, store).await?;
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
        let validating = configs(store, "validatingwebhookconfigurations");
        if !validating.is_empty() {
            warnings.extend(self.dispatcher.validate(&validating, &attrs, store).await?);
        }
        volops_sandbox_machinery::validate(&attrs, store)?;
        Ok((attrs.object, warnings))
    }
}
