//! The `authorizer` variable of admission CEL (k8s.io/apiserver/pkg/cel/library/authz.go):
//! `authorizer.group(g).resource(r).namespace(ns).name(n).subresource(s).check(verb)`,
//! `authorizer.path(p).check(verb)`, `authorizer.serviceAccount(ns, name)`,
//! `authorizer.requestResource`, and the decision's `allowed()`, `reason()`, `errored()`,
//! `error()`; each check asks the sandbox's [`Authorizer`].

use std::fmt;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::Opaque;
use cel::{Context, ExecutionError, Value};

use super::decls::{AUTHORIZER, DECISION, GROUP_CHECK, PATH_CHECK, RESOURCE_CHECK};
use crate::admission::UserInfo;
use crate::authz::{Authorizer, AuthzRequest, Decision};

/// Who checks are made for, and against which authorizer.
#[derive(Clone)]
pub(crate) struct Subject {
    pub authorizer: Arc<dyn Authorizer>,
    pub user: UserInfo,
}

impl PartialEq for Subject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.authorizer, &other.authorizer) && self.user == other.user
    }
}

impl Eq for Subject {}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authorizer for {:?}", self.user.username)
    }
}

/// One value of the authz library; `kind` is its CEL type name.
#[derive(Debug, Clone, PartialEq)]
enum AuthzVal {
    Authorizer(Subject),
    Path(Subject, String),
    Group(Subject, String),
    Resource(Subject, Box<AuthzRequest>),
    Decision { allowed: bool, reason: String },
}

// Equality is total here (no floats), as `Opaque` needs.
impl Eq for AuthzVal {}

impl Opaque for AuthzVal {
    fn runtime_type_name(&self) -> &str {
        match self {
            AuthzVal::Authorizer(_) => AUTHORIZER,
            AuthzVal::Path(..) => PATH_CHECK,
            AuthzVal::Group(..) => GROUP_CHECK,
            AuthzVal::Resource(..) => RESOURCE_CHECK,
            AuthzVal::Decision { .. } => DECISION,
        }
    }
}

fn opaque(v: AuthzVal) -> Value {
    Value::Opaque(Arc::new(v))
}

fn receiver(this: &Arc<dyn Opaque>) -> Result<&AuthzVal, ExecutionError> {
    this.downcast_ref::<AuthzVal>()
        .ok_or_else(|| ExecutionError::function_error("authorizer", "no such overload"))
}

/// The `authorizer` value for `subject`.
pub(crate) fn authorizer(subject: Subject) -> Value {
    opaque(AuthzVal::Authorizer(subject))
}

/// `authorizer.requestResource`: a resource check of the request's own resource.
pub(crate) fn request_resource(
    subject: Subject,
    group: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> Value {
    let request = AuthzRequest {
        user: subject.user.clone(),
        resource_request: true,
        api_group: group.to_string(),
        api_version: "*".into(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        ..AuthzRequest::default()
    };
    opaque(AuthzVal::Resource(subject, Box::new(request)))
}

fn no_overload(function: &str) -> ExecutionError {
    ExecutionError::function_error(function, "no such overload")
}

fn decide(subject: &Subject, request: &AuthzRequest) -> Value {
    let (allowed, reason) = match subject.authorizer.authorize(request) {
        Decision::Allow => (true, String::new()),
        Decision::Deny(r) | Decision::NoOpinion(r) => (false, r),
    };
    opaque(AuthzVal::Decision { allowed, reason })
}

/// `system:serviceaccount:<ns>:<name>` with the groups kube gives it.
fn service_account(namespace: &str, name: &str) -> UserInfo {
    UserInfo {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
        ..UserInfo::default()
    }
}

type Res = Result<Value, ExecutionError>;

/// A setter on a resource check (`namespace`, `name`, ...).
fn set_field(this: &Arc<dyn Opaque>, function: &str, value: &str, set: fn(&mut AuthzRequest, &str)) -> Res {
    match receiver(this)? {
        AuthzVal::Resource(subject, request) => {
            let mut request = request.clone();
            set(&mut request, value);
            Ok(opaque(AuthzVal::Resource(subject.clone(), request)))
        }
        _ => Err(no_overload(function)),
    }
}

/// Registers the library's functions on `ctx`.
pub(crate) fn register(ctx: &mut Context<'_, '_>) -> Result<(), cel::DeclarationError> {
    ctx.add_function(
        "path",
        |This(this): This<Arc<dyn Opaque>>, path: Arc<String>| -> Res {
            match receiver(&this)? {
                AuthzVal::Authorizer(_) if path.trim().is_empty() => {
                    Err(ExecutionError::function_error("path", "path must not be empty"))
                }
                AuthzVal::Authorizer(s) => Ok(opaque(AuthzVal::Path(s.clone(), path.to_string()))),
                _ => Err(no_overload("path")),
            }
        },
    )?;
    ctx.add_function(
        "group",
        |This(this): This<Arc<dyn Opaque>>, group: Arc<String>| -> Res {
            match receiver(&this)? {
                AuthzVal::Authorizer(s) => Ok(opaque(AuthzVal::Group(s.clone(), group.to_string()))),
                _ => Err(no_overload("group")),
            }
        },
    )?;
    ctx.add_function(
        "serviceAccount",
        |This(this): This<Arc<dyn Opaque>>, ns: Arc<String>, name: Arc<String>| -> Res {
            match receiver(&this)? {
                AuthzVal::Authorizer(s) => Ok(authorizer(Subject {
                    authorizer: s.authorizer.clone(),
                    user: service_account(&ns, &name),
                })),
                _ => Err(no_overload("serviceAccount")),
            }
        },
    )?;
    ctx.add_function(
        "resource",
        |This(this): This<Arc<dyn Opaque>>, resource: Arc<String>| -> Res {
            match receiver(&this)? {
                AuthzVal::Group(_, _) if resource.trim().is_empty() => Err(ExecutionError::function_error(
                    "resource",
                    "resource must not be empty",
                )),
                AuthzVal::Group(s, group) => Ok(request_resource(s.clone(), group, &resource, "", "", "")),
                _ => Err(no_overload("resource")),
            }
        },
    )?;
    ctx.add_function(
        "subresource",
        |This(this): This<Arc<dyn Opaque>>, v: Arc<String>| {
            set_field(&this, "subresource", &v, |r, v| r.subresource = v.to_string())
        },
    )?;
    ctx.add_function(
        "namespace",
        |This(this): This<Arc<dyn Opaque>>, v: Arc<String>| {
            set_field(&this, "namespace", &v, |r, v| r.namespace = v.to_string())
        },
    )?;
    ctx.add_function("name", |This(this): This<Arc<dyn Opaque>>, v: Arc<String>| {
        set_field(&this, "name", &v, |r, v| r.name = v.to_string())
    })?;
    // Selectors narrow the check; the sandbox's authorizers (like RBAC) ignore them.
    for f in ["fieldSelector", "labelSelector"] {
        ctx.add_function(f, |This(this): This<Arc<dyn Opaque>>, v: Arc<String>| {
            set_field(&this, "selector", &v, |_, _| {})
        })?;
    }
    ctx.add_function(
        "check",
        |This(this): This<Arc<dyn Opaque>>, verb: Arc<String>| -> Res {
            match receiver(&this)? {
                AuthzVal::Path(s, path) => Ok(decide(
                    s,
                    &AuthzRequest {
                        user: s.user.clone(),
                        verb: verb.to_string(),
                        path: path.clone(),
                        ..AuthzRequest::default()
                    },
                )),
                AuthzVal::Resource(s, request) => {
                    let mut request = (**request).clone();
                    request.verb = verb.to_string();
                    Ok(decide(s, &request))
                }
                _ => Err(no_overload("check")),
            }
        },
    )?;
    ctx.add_function("allowed", |This(this): This<Arc<dyn Opaque>>| -> Res {
        match receiver(&this)? {
            AuthzVal::Decision { allowed, .. } => Ok(Value::Bool(*allowed)),
            _ => Err(no_overload("allowed")),
        }
    })?;
    ctx.add_function("reason", |This(this): This<Arc<dyn Opaque>>| -> Res {
        match receiver(&this)? {
            AuthzVal::Decision { reason, .. } => Ok(Value::from(reason.as_str())),
            _ => Err(no_overload("reason")),
        }
    })?;
    // The sandbox's authorizers do not fail: a decision never carries an error.
    ctx.add_function("errored", |This(this): This<Arc<dyn Opaque>>| -> Res {
        match receiver(&this)? {
            AuthzVal::Decision { .. } => Ok(Value::Bool(false)),
            _ => Err(no_overload("errored")),
        }
    })?;
    ctx.add_function("error", |This(this): This<Arc<dyn Opaque>>| -> Res {
        match receiver(&this)? {
            AuthzVal::Decision { .. } => Ok(Value::from("")),
            _ => Err(no_overload("error")),
        }
    })?;
    Ok(())
}
