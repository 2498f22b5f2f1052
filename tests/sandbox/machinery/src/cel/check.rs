//! A type checker over the parsed CEL expression, the subset of cel-go's checker that
//! kube-apiserver's compile step needs: undeclared references, undefined fields of typed
//! variables, overloads that do not match, ranges that cannot be iterated, and the output
//! type (a matchCondition must be `bool`). Errors read like cel-go's.

use std::collections::HashMap;

use cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr};

use super::decls::{self, Sig, Ty};

/// One checker error: where (byte offset in the source) and what.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    pub offset: usize,
    pub message: String,
}

/// Checks `expr`; `offset` gives the source offset of an expression id.
pub(crate) fn check(expr: &IdedExpr, offset: &dyn Fn(u64) -> usize) -> Result<Ty, Vec<Issue>> {
    let mut c = Checker {
        scopes: Vec::new(),
        issues: Vec::new(),
        offset,
    };
    let ty = c.expr(expr);
    if c.issues.is_empty() {
        Ok(ty)
    } else {
        c.issues.sort_by_key(|i| i.offset);
        Err(c.issues)
    }
}

struct Checker<'a> {
    scopes: Vec<HashMap<String, Ty>>,
    issues: Vec<Issue>,
    offset: &'a dyn Fn(u64) -> usize,
}

impl Checker<'_> {
    fn error(&mut self, id: u64, message: String) -> Ty {
        self.issues.push(Issue {
            offset: (self.offset)(id),
            message,
        });
        // An erroneous sub-expression is dyn from here on, so one mistake is one error.
        Ty::Dyn
    }

    fn local(&self, name: &str) -> Option<Ty> {
        self.scopes.iter().rev().find_map(|s| s.get(name).cloned())
    }

    fn ident(&self, name: &str) -> Option<Ty> {
        self.local(name).or_else(|| decls::variable(name))
    }

    fn expr(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Literal(l) => literal(l),
            Expr::Ident(name) => match self.ident(name) {
                Some(t) => t,
                None => self.error(e.id, undeclared(name)),
            },
            Expr::Select(s) => self.select(e, s),
            Expr::Call(call) => {
                let target = call.target.as_deref();
                self.call(e.id, &call.func_name, target, &call.args)
            }
            Expr::List(l) => {
                let elems: Vec<Ty> = l.elements.iter().map(|x| self.expr(x)).collect();
                decls::list(join(&elems))
            }
            Expr::Map(m) => {
                let mut keys = Vec::new();
                let mut values = Vec::new();
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        keys.push(self.expr(&me.key));
                        values.push(self.expr(&me.value));
                    }
                }
                decls::map(join(&keys), join(&values))
            }
            Expr::Struct(s) => self.error(e.id, undeclared(&s.type_name)),
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn select(&mut self, e: &IdedExpr, s: &SelectExpr) -> Ty {
        // `authorizer.requestResource` is one variable, resolved before field selection.
        if !s.test
            && let Some(segments) = e.expr_qualified_name()
            && self.local(segments[0].as_str()).is_none()
            && let Some(t) = decls::variable(&segments.join("."))
        {
            return t;
        }
        let operand = self.expr(&s.operand);
        let ty = match operand {
            Ty::Dyn | Ty::Free => Ty::Dyn,
            Ty::Map(_, v) => *v,
            Ty::Obj(name) => match decls::field(name, &s.field) {
                Some(t) => t,
                None => return self.error(e.id, format!("undefined field '{}'", s.field)),
            },
            other => {
                return self.error(e.id, format!("type '{other}' does not support field selection"));
            }
        };
        if s.test { Ty::Bool } else { ty }
    }

    fn call(&mut self, id: u64, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Ty {
        // `strings.quote(x)`: a namespaced global function, not a member call.
        if let Some(t) = target
            && let Some(segments) = t.expr_qualified_name()
            && self.ident(&segments[0]).is_none()
        {
            let qualified = format!("{}.{name}", segments.join("."));
            if decls::overloads(&qualified).is_some() {
                return self.call(id, &qualified, None, args);
            }
        }
        let mut types: Vec<Ty> = Vec::new();
        if let Some(t) = target {
            types.push(self.expr(t));
        }
        types.extend(args.iter().map(|a| self.expr(a)));
        let Some(sigs) = decls::overloads(name) else {
            return self.error(id, undeclared(name));
        };
        let member = target.is_some();
        let results: Vec<Ty> = sigs
            .iter()
            .filter(|s| s.member == member && s.params.len() == types.len())
            .filter_map(|s| resolve(s, &types))
            .collect();
        if results.is_empty() {
            let shown: Vec<String> = types.iter().map(Ty::to_string).collect();
            let applied = if member {
                format!("{}.({})", shown[0], shown[1..].join(", "))
            } else {
                format!("({})", shown.join(", "))
            };
            return self.error(
                id,
                format!("found no matching overload for '{name}' applied to '{applied}'"),
            );
        }
        if results.iter().all(|r| *r == results[0]) {
            results[0].clone()
        } else {
            Ty::Dyn
        }
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Ty {
        let range = self.expr(&c.iter_range);
        let (first, second) = match &range {
            Ty::List(e) => (Ty::Int, (**e).clone()),
            Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
            Ty::Dyn | Ty::Free => (Ty::Dyn, Ty::Dyn),
            other => {
                let msg = format!(
                    "expression of type '{other}' cannot be range of a comprehension (must be list, map, or dynamic)"
                );
                self.error(c.iter_range.id, msg);
                (Ty::Dyn, Ty::Dyn)
            }
        };
        let mut scope = HashMap::new();
        match &c.iter_var2 {
            Some(v2) => {
                scope.insert(c.iter_var.clone(), first);
                scope.insert(v2.clone(), second);
            }
            None if matches!(range, Ty::List(_)) => {
                scope.insert(c.iter_var.clone(), second);
            }
            None => {
                scope.insert(c.iter_var.clone(), first);
            }
        }
        let accu = self.expr(&c.accu_init);
        scope.insert(c.accu_var.clone(), accu.clone());
        self.scopes.push(scope);
        self.expr(&c.loop_cond);
        let step = self.expr(&c.loop_step);
        // `[]` grows into the type the step builds (map/filter macros).
        if let Some(refined) = merge(&accu, &step)
            && let Some(s) = self.scopes.last_mut()
        {
            s.insert(c.accu_var.clone(), refined);
        }
        let result = self.expr(&c.result);
        self.scopes.pop();
        result
    }
}

trait QualifiedName {
    fn expr_qualified_name(&self) -> Option<Vec<String>>;
}

impl QualifiedName for IdedExpr {
    /// `a.b.c` as `["a", "b", "c"]`; None for anything but identifiers and selections.
    fn expr_qualified_name(&self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut e = self;
        loop {
            match &e.expr {
                Expr::Ident(name) => {
                    out.push(name.clone());
                    out.reverse();
                    return Some(out);
                }
                Expr::Select(s) if !s.test => {
                    out.push(s.field.clone());
                    e = &s.operand;
                }
                _ => return None,
            }
        }
    }
}

fn undeclared(name: &str) -> String {
    format!("undeclared reference to '{name}' (in container '')")
}

fn literal(l: &LiteralValue) -> Ty {
    match l {
        LiteralValue::Boolean(_) => Ty::Bool,
        LiteralValue::Bytes(_) => Ty::Bytes,
        LiteralValue::Double(_) => Ty::Double,
        LiteralValue::Int(_) => Ty::Int,
        LiteralValue::Null => Ty::Null,
        LiteralValue::String(_) => Ty::String,
        LiteralValue::UInt(_) => Ty::Uint,
    }
}

/// The element type of a literal: the one type all share, dyn when they differ.
fn join(types: &[Ty]) -> Ty {
    let mut out = Ty::Free;
    for t in types {
        out = merge(&out, t).unwrap_or(Ty::Dyn);
    }
    out
}

/// The most specific type both `a` and `b` can be (None: incompatible).
fn merge(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        (Ty::Free, x) | (x, Ty::Free) => Some(x.clone()),
        (Ty::Dyn, _) | (_, Ty::Dyn) => Some(Ty::Dyn),
        (Ty::List(x), Ty::List(y)) => Some(decls::list(merge(x, y)?)),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => Some(decls::map(merge(k1, k2)?, merge(v1, v2)?)),
        (Ty::Obj(o), Ty::Null) | (Ty::Null, Ty::Obj(o)) => Some(Ty::Obj(o)),
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

/// Whether `arg` fits `param`, binding type parameters in `subst`.
fn unify(param: &Ty, arg: &Ty, subst: &mut [Option<Ty>; 2]) -> bool {
    match param {
        Ty::Param(i) => {
            let Some(slot) = subst.get_mut(*i) else {
                return false;
            };
            match slot {
                None => {
                    *slot = Some(arg.clone());
                    true
                }
                Some(bound) => match merge(bound, arg) {
                    Some(m) => {
                        *slot = Some(m);
                        true
                    }
                    None => false,
                },
            }
        }
        Ty::Dyn => true,
        Ty::List(p) => match arg {
            Ty::List(a) => unify(p, a, subst),
            Ty::Dyn | Ty::Free => true,
            _ => false,
        },
        Ty::Map(pk, pv) => match arg {
            Ty::Map(ak, av) => unify(pk, ak, subst) && unify(pv, av, subst),
            Ty::Dyn | Ty::Free => true,
            _ => false,
        },
        p => matches!(arg, Ty::Dyn | Ty::Free) || p == arg || (matches!(p, Ty::Obj(_)) && *arg == Ty::Null),
    }
}

fn substitute(t: &Ty, subst: &[Option<Ty>; 2]) -> Ty {
    match t {
        Ty::Param(i) => subst.get(*i).cloned().flatten().unwrap_or(Ty::Dyn),
        Ty::List(e) => decls::list(substitute(e, subst)),
        Ty::Map(k, v) => decls::map(substitute(k, subst), substitute(v, subst)),
        other => other.clone(),
    }
}

/// The result type of `sig` for these argument types (None: it does not apply).
fn resolve(sig: &Sig, args: &[Ty]) -> Option<Ty> {
    let mut subst: [Option<Ty>; 2] = [None, None];
    for (p, a) in sig.params.iter().zip(args) {
        if !unify(p, a, &mut subst) {
            return None;
        }
    }
    Some(substitute(&sig.result, &subst))
}
