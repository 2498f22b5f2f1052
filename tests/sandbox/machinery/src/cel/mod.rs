//! CEL for admission webhook `matchConditions`, compiled and evaluated as kube-apiserver
//! does (k8s.io/apiserver/pkg/admission/plugin/cel): parse, type-check against kube's
//! declarations, require a `bool` result, then evaluate with `object`, `oldObject`, `request`
//! and `authorizer`. Errors carry kube's texts (`compilation failed: ERROR: <input>:1:5: ...`,
//! `must evaluate to bool but got dyn`, `expression '...' resulted in error: no such key: x`).
//!
//! The parser and interpreter are the `cel` crate; the checker is ours (see `check.rs`).
//! Not declared (so rejected as undeclared, where kube accepts them): timestamps and
//! durations, optional values (`a.?b`), and kube's extension libraries other than strings and
//! the authorizer (lists, regex, url, ip, cidr, quantity, semver, sets, format).

mod authz;
mod check;
mod decls;

use std::sync::{Arc, OnceLock};

use cel::objects::Key;
use cel::{Context, Env, ExecutionError};
use serde_json::Value;

use crate::admission::UserInfo;
use crate::authz::Authorizer;

/// A compiled, type-checked expression that evaluates to a bool.
pub struct Program {
    program: cel::Program,
    expression: String,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({:?})", self.expression)
    }
}

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        if let Err(e) = env.add_extension(cel::extensions::strings) {
            tracing::error!("CEL strings extension: {e}");
        }
        Arc::new(env)
    })
    .clone()
}

/// `ERROR: <input>:L:C: msg` with cel-go's source snippet (` | line`, ` | ...^`).
fn display_error(source: &str, offset: usize, message: &str) -> String {
    let mut line_start = 0;
    let mut line_no = 1;
    for (i, c) in source.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line_no += 1;
            line_start = i + 1;
        }
    }
    let column = source.get(line_start..offset).map_or(0, |s| s.chars().count());
    let line = source[line_start..].lines().next().unwrap_or("");
    format!(
        "ERROR: <input>:{line_no}:{}: {message}\n | {}\n | {}^",
        column + 1,
        line.replace('\t', " "),
        ".".repeat(column)
    )
}

/// Compiles a matchCondition expression; the error is kube's `cel.Error` detail.
pub fn compile_match_condition(expression: &str) -> Result<Program, String> {
    let program = env().compile(expression).map_err(|errs| {
        let shown: Vec<String> = errs
            .errors
            .iter()
            .map(|e| {
                let line_offset: usize = expression
                    .split_inclusive('\n')
                    .take(usize::try_from(e.pos.0 - 1).unwrap_or(0))
                    .map(str::len)
                    .sum();
                let col = usize::try_from(e.pos.1 - 1).unwrap_or(0);
                display_error(expression, line_offset + col, &e.msg)
            })
            .collect();
        format!("compilation failed: {}", shown.join("\n"))
    })?;
    let info = program.source_info();
    let offset = |id: u64| info.offset_for(id).map_or(0, |(start, _)| start as usize);
    let ty = check::check(program.expression(), &offset).map_err(|issues| {
        let shown: Vec<String> = issues
            .iter()
            .map(|i| display_error(expression, i.offset, &i.message))
            .collect();
        format!("compilation failed: {}", shown.join("\n"))
    })?;
    if ty != decls::Ty::Bool {
        return Err(format!("must evaluate to bool but got {ty}"));
    }
    Ok(Program {
        program,
        expression: expression.to_string(),
    })
}

/// The variables of one admission evaluation.
pub struct Activation {
    object: cel::Value,
    old_object: cel::Value,
    request: cel::Value,
    authorizer: Option<(cel::Value, cel::Value)>,
}

/// The request's own resource, for `authorizer.requestResource`.
pub struct RequestResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Activation {
    /// `object`/`oldObject` (null when absent) and `request` (the AdmissionRequest as JSON,
    /// as kube converts it: empty optional fields left out).
    pub fn new(object: Option<&Value>, old_object: Option<&Value>, request: &Value) -> Self {
        Self {
            object: object.map_or(cel::Value::Null, to_cel),
            old_object: old_object.map_or(cel::Value::Null, to_cel),
            request: to_cel(request),
            authorizer: None,
        }
    }

    /// Binds `authorizer` and `authorizer.requestResource` for `user`.
    pub fn with_authorizer(
        mut self,
        authorizer: Arc<dyn Authorizer>,
        user: &UserInfo,
        rr: &RequestResource<'_>,
    ) -> Self {
        let subject = authz::Subject {
            authorizer,
            user: user.clone(),
        };
        let requested = authz::request_resource(
            subject.clone(),
            rr.group,
            rr.resource,
            rr.subresource,
            rr.namespace,
            rr.name,
        );
        self.authorizer = Some((authz::authorizer(subject), requested));
        self
    }
}

impl Program {
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Evaluates to the bool; the error is kube's evaluation error text.
    pub fn evaluate(&self, act: &Activation) -> Result<bool, String> {
        let fail = |detail: String| format!("expression '{}' resulted in error: {detail}", self.expression);
        let mut ctx = Context::with_env(env());
        ctx.add_variable_from_value("object", act.object.clone());
        ctx.add_variable_from_value("oldObject", act.old_object.clone());
        ctx.add_variable_from_value("request", act.request.clone());
        if let Some((authorizer, requested)) = &act.authorizer {
            ctx.add_variable_from_value("authorizer", authorizer.clone());
            ctx.add_variable_from_value("authorizer.requestResource", requested.clone());
        }
        authz::register(&mut ctx).map_err(|e| fail(e.to_string()))?;
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(fail(format!("must evaluate to bool but got {}", other.type_of()))),
            Err(e) => Err(fail(runtime_error(&e))),
        }
    }
}

/// cel-go's wording for the runtime errors both interpreters raise.
fn runtime_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnexpectedType { .. } => "no such overload".into(),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", json_of(i)),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn json_of(v: &cel::Value) -> String {
    match v {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        other => format!("{other:?}"),
    }
}

/// JSON as CEL sees an unstructured object: integers are `int`, other numbers `double`.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: std::collections::HashMap<Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests;
