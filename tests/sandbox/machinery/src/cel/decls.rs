//! What kube-apiserver declares for admission CEL (`k8s.io/apiserver/pkg/admission/plugin/cel`):
//! the variables and their types (`request` as `kubernetes.AdmissionRequest`, `object` and
//! `oldObject` as `dyn`, ...), the fields of its object types, and the function overloads the
//! checker knows (CEL's standard library, the strings extension, the authorizer library).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// A CEL type as cel-go's checker names it in errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Dyn,
    /// The element type of an empty list or map literal: unified with what it meets.
    Free,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Type,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Obj(&'static str),
    /// A type parameter of an overload (`A`, `B`).
    Param(usize),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn | Ty::Free => f.write_str("dyn"),
            Ty::Null => f.write_str("null_type"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Type => f.write_str("type"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Obj(name) => f.write_str(name),
            Ty::Param(i) => write!(f, "{}", ["A", "B"].get(*i).unwrap_or(&"T")),
        }
    }
}

pub(crate) fn list(t: Ty) -> Ty {
    Ty::List(Box::new(t))
}

pub(crate) fn map(k: Ty, v: Ty) -> Ty {
    Ty::Map(Box::new(k), Box::new(v))
}

pub(crate) const REQUEST: &str = "kubernetes.AdmissionRequest";
const GVK: &str = "kubernetes.GroupVersionKind";
const GVR: &str = "kubernetes.GroupVersionResource";
const USER_INFO: &str = "kubernetes.UserInfo";
const NAMESPACE: &str = "kubernetes.Namespace";
const NAMESPACE_META: &str = "kubernetes.NamespaceMetadata";
const NAMESPACE_SPEC: &str = "kubernetes.NamespaceSpec";
const NAMESPACE_STATUS: &str = "kubernetes.NamespaceStatus";
const NAMESPACE_CONDITION: &str = "kubernetes.NamespaceCondition";
const TIMESTAMP: &str = "google.protobuf.Timestamp";
pub(crate) const AUTHORIZER: &str = "kubernetes.authorization.Authorizer";
pub(crate) const PATH_CHECK: &str = "kubernetes.authorization.PathCheck";
pub(crate) const GROUP_CHECK: &str = "kubernetes.authorization.GroupCheck";
pub(crate) const RESOURCE_CHECK: &str = "kubernetes.authorization.ResourceCheck";
pub(crate) const DECISION: &str = "kubernetes.authorization.Decision";

/// The variables of a webhook matchCondition (`OptionalVariableDeclarations{HasAuthorizer: true}`).
pub(crate) fn variable(name: &str) -> Option<Ty> {
    Some(match name {
        "object" | "oldObject" => Ty::Dyn,
        "request" => Ty::Obj(REQUEST),
        "namespaceObject" => Ty::Obj(NAMESPACE),
        "authorizer" => Ty::Obj(AUTHORIZER),
        "authorizer.requestResource" => Ty::Obj(RESOURCE_CHECK),
        // Type identifiers.
        "int" | "uint" | "double" | "bool" | "string" | "bytes" | "list" | "map" | "null_type" | "type"
        | "dyn" => Ty::Type,
        _ => return None,
    })
}

/// The type of `field` of object type `obj` (BuildRequestType, BuildNamespaceType).
pub(crate) fn field(obj: &str, field: &str) -> Option<Ty> {
    use Ty::*;
    Some(match (obj, field) {
        (REQUEST, "kind" | "requestKind") => Obj(GVK),
        (REQUEST, "resource" | "requestResource") => Obj(GVR),
        (REQUEST, "subResource" | "requestSubResource" | "name" | "namespace" | "operation") => String,
        (REQUEST, "userInfo") => Obj(USER_INFO),
        (REQUEST, "dryRun") => Bool,
        (REQUEST, "options") => Dyn,
        (GVK, "group" | "version" | "kind") | (GVR, "group" | "version" | "resource") => String,
        (USER_INFO, "username" | "uid") => String,
        (USER_INFO, "groups") => list(String),
        (USER_INFO, "extra") => map(String, list(String)),
        (NAMESPACE, "metadata") => Obj(NAMESPACE_META),
        (NAMESPACE, "spec") => Obj(NAMESPACE_SPEC),
        (NAMESPACE, "status") => Obj(NAMESPACE_STATUS),
        (NAMESPACE_SPEC, "finalizers") => list(String),
        (NAMESPACE_STATUS, "conditions") => list(Obj(NAMESPACE_CONDITION)),
        (NAMESPACE_STATUS, "phase") => String,
        (NAMESPACE_CONDITION, "status" | "type" | "message" | "reason") => String,
        (NAMESPACE_CONDITION, "lastTransitionTime") => Obj(TIMESTAMP),
        (NAMESPACE_META, "name" | "generateName" | "namespace" | "UID" | "resourceVersion") => String,
        (NAMESPACE_META, "labels" | "annotations") => map(String, String),
        (NAMESPACE_META, "creationTimestamp" | "deletionTimestamp") => Obj(TIMESTAMP),
        (NAMESPACE_META, "deletionGracePeriodSeconds" | "generation") => Int,
        (NAMESPACE_META, "finalizers") => list(String),
        _ => return None,
    })
}

/// One overload: for a member overload `params[0]` is the receiver.
pub(crate) struct Sig {
    pub member: bool,
    pub params: Vec<Ty>,
    pub result: Ty,
}

fn g(params: Vec<Ty>, result: Ty) -> Sig {
    Sig {
        member: false,
        params,
        result,
    }
}

fn m(params: Vec<Ty>, result: Ty) -> Sig {
    Sig {
        member: true,
        params,
        result,
    }
}

const A: Ty = Ty::Param(0);
const B: Ty = Ty::Param(1);

fn table() -> HashMap<&'static str, Vec<Sig>> {
    use Ty::*;
    let mut t: HashMap<&'static str, Vec<Sig>> = HashMap::new();
    let numeric = [Int, Uint, Double];
    t.insert("!_", vec![g(vec![Bool], Bool)]);
    t.insert("-_", vec![g(vec![Int], Int), g(vec![Double], Double)]);
    for op in ["_&&_", "_||_"] {
        t.insert(op, vec![g(vec![Bool, Bool], Bool)]);
    }
    t.insert("@not_strictly_false", vec![g(vec![Bool], Bool)]);
    t.insert("_?_:_", vec![g(vec![Bool, A, A], A)]);
    for op in ["_==_", "_!=_"] {
        t.insert(op, vec![g(vec![A, A], Bool)]);
    }
    for op in ["_<_", "_<=_", "_>_", "_>=_"] {
        // Cross-type numeric comparisons are on in kube's base environment.
        let mut sigs: Vec<Sig> = Vec::new();
        for x in &numeric {
            for y in &numeric {
                sigs.push(g(vec![x.clone(), y.clone()], Bool));
            }
        }
        for x in [String, Bytes, Bool] {
            sigs.push(g(vec![x.clone(), x], Bool));
        }
        t.insert(op, sigs);
    }
    let same = |types: &[Ty]| -> Vec<Sig> {
        types
            .iter()
            .map(|x| g(vec![x.clone(), x.clone()], x.clone()))
            .collect()
    };
    let mut add = same(&[Int, Uint, Double, String, Bytes]);
    add.push(g(vec![list(A), list(A)], list(A)));
    t.insert("_+_", add);
    for op in ["_-_", "_*_", "_/_"] {
        t.insert(op, same(&numeric));
    }
    t.insert("_%_", same(&[Int, Uint]));
    t.insert("_[_]", vec![g(vec![list(A), Int], A), g(vec![map(A, B), A], B)]);
    t.insert(
        "@in",
        vec![g(vec![A, list(A)], Bool), g(vec![A, map(A, B)], Bool)],
    );
    let sized = [String, Bytes, list(A), map(A, B)];
    let mut size: Vec<Sig> = sized.iter().map(|x| g(vec![x.clone()], Int)).collect();
    size.extend(sized.iter().map(|x| m(vec![x.clone()], Int)));
    t.insert("size", size);
    for f in ["contains", "startsWith", "endsWith"] {
        t.insert(f, vec![m(vec![String, String], Bool)]);
    }
    t.insert(
        "matches",
        vec![g(vec![String, String], Bool), m(vec![String, String], Bool)],
    );
    let conv =
        |from: Vec<Ty>, to: Ty| -> Vec<Sig> { from.into_iter().map(|x| g(vec![x], to.clone())).collect() };
    t.insert("int", conv(vec![Int, Uint, Double, String], Int));
    t.insert("uint", conv(vec![Int, Uint, Double, String], Uint));
    t.insert("double", conv(vec![Int, Uint, Double, String], Double));
    t.insert(
        "string",
        conv(vec![Int, Uint, Double, String, Bool, Bytes], String),
    );
    t.insert("bytes", conv(vec![Bytes, String], Bytes));
    t.insert("bool", conv(vec![Bool, String], Bool));
    t.insert("dyn", vec![g(vec![A], Dyn)]);
    t.insert("type", vec![g(vec![A], Type)]);
    // cel-go's strings extension, version 2 (kube's base environment).
    t.insert("charAt", vec![m(vec![String, Int], String)]);
    for f in ["indexOf", "lastIndexOf"] {
        t.insert(
            f,
            vec![m(vec![String, String], Int), m(vec![String, String, Int], Int)],
        );
    }
    for f in ["lowerAscii", "upperAscii", "trim"] {
        t.insert(f, vec![m(vec![String], String)]);
    }
    t.insert(
        "replace",
        vec![
            m(vec![String, String, String], String),
            m(vec![String, String, String, Int], String),
        ],
    );
    t.insert(
        "split",
        vec![
            m(vec![String, String], list(String)),
            m(vec![String, String, Int], list(String)),
        ],
    );
    t.insert(
        "substring",
        vec![m(vec![String, Int], String), m(vec![String, Int, Int], String)],
    );
    t.insert(
        "join",
        vec![
            m(vec![list(String)], String),
            m(vec![list(String), String], String),
        ],
    );
    t.insert("format", vec![m(vec![String, list(Dyn)], String)]);
    t.insert("strings.quote", vec![g(vec![String], String)]);
    // The authorizer library (k8s.io/apiserver/pkg/cel/library/authz.go).
    let (az, path, group, res, dec) = (
        Obj(AUTHORIZER),
        Obj(PATH_CHECK),
        Obj(GROUP_CHECK),
        Obj(RESOURCE_CHECK),
        Obj(DECISION),
    );
    t.insert("path", vec![m(vec![az.clone(), String], path.clone())]);
    t.insert("group", vec![m(vec![az.clone(), String], group.clone())]);
    t.insert("serviceAccount", vec![m(vec![az.clone(), String, String], az)]);
    t.insert("resource", vec![m(vec![group, String], res.clone())]);
    for f in [
        "subresource",
        "namespace",
        "name",
        "fieldSelector",
        "labelSelector",
    ] {
        t.insert(f, vec![m(vec![res.clone(), String], res.clone())]);
    }
    t.insert(
        "check",
        vec![
            m(vec![path, String], dec.clone()),
            m(vec![res, String], dec.clone()),
        ],
    );
    for f in ["errored", "allowed"] {
        t.insert(f, vec![m(vec![dec.clone()], Bool)]);
    }
    for f in ["error", "reason"] {
        t.insert(f, vec![m(vec![dec.clone()], String)]);
    }
    t
}

/// The overloads of `function` (None: no such function is declared).
pub(crate) fn overloads(function: &str) -> Option<&'static [Sig]> {
    static TABLE: OnceLock<HashMap<&'static str, Vec<Sig>>> = OnceLock::new();
    TABLE.get_or_init(table).get(function).map(Vec::as_slice)
}
