//! `rbac/v1 PolicyRule`: what a rule allows (kube's `RuleAllows`), whether some rules cover
//! others (kube's `Covers`, the escalation check), and the compact form of escalation messages.

use serde_json::{Map, Value, json};

use crate::authz::AuthzRequest;
use crate::error::go_quote;

/// `*`: every verb, group, resource or URL.
const ALL: &str = "*";

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// The strings of a JSON array (anything else, or null, is empty).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

impl PolicyRule {
    pub fn from_json(v: &Value) -> Self {
        PolicyRule {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// The JSON kube writes (empty lists left out, `verbs` always present).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// kube's `RuleAllows`.
    pub fn allows(&self, a: &AuthzRequest) -> bool {
        if !(has(&self.verbs, ALL) || has(&self.verbs, &a.verb)) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| url_matches(u, &a.path));
        }
        (has(&self.api_groups, ALL) || has(&self.api_groups, &a.api_group))
            && self.resource_matches(&a.resource, &a.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &a.name))
    }

    /// kube's `ResourceMatches`: `*`, the exact `resource[/subresource]`, or `*/subresource`.
    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == ALL {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            r.strip_suffix(subresource)
                .and_then(|head| head.strip_suffix('/'))
                .is_some_and(|head| head == resource || head == ALL)
        })
    }

    /// `rbacv1helpers.CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let parts: Vec<String> = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}:{}", go_quote_list(v)))
        .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// kube's `NonResourceURLMatches`: `*`, exact, or a prefix ending in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == ALL
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

/// The rules of a `rules` JSON array.
pub fn rules_from_json(v: &Value) -> Vec<PolicyRule> {
    v.as_array()
        .map(|a| a.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default()
}

/// kube's `BreakdownRule`: one rule per (group, resource, verb[, name]) and per (url, verb).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = vec![];
    let one = |s: &String| vec![s.clone()];
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        api_groups: one(g),
                        resources: one(r),
                        verbs: one(v),
                        ..Default::default()
                    });
                }
                for n in &rule.resource_names {
                    out.push(PolicyRule {
                        api_groups: one(g),
                        resources: one(r),
                        verbs: one(v),
                        resource_names: one(n),
                        ..Default::default()
                    });
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(u),
                verbs: one(v),
                ..Default::default()
            });
        }
    }
    out
}

/// kube's `ruleCovers` (owner `*` covers anything; a requested `*` only by `*`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = has(&owner.resources, ALL)
        || sub.resources.iter().all(|r| {
            has(&owner.resources, r)
                || r.split_once('/')
                    .is_some_and(|(_, s)| has(&owner.resources, &format!("*/{s}")))
        });
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|p| owner.non_resource_urls.iter().any(|o| url_covers(o, p)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// kube's `nonResourceURLCovers`.
fn url_covers(owner: &str, sub: &str) -> bool {
    owner == sub
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| sub.starts_with(prefix.trim_end_matches('*')))
}

/// kube's `Covers`: whether `owner` holds every permission of `servant`, and the broken-down
/// permissions it lacks.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// kube's `CompactRules`: single group/resource rules that differ only by verb are merged.
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = vec![];
    let mut simple: Vec<PolicyRule> = vec![];
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            out.push(rule);
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == rule.api_groups
                && s.resources == rule.resources
                && s.resource_names == rule.resource_names
        }) {
            Some(existing) => existing.verbs.extend(rule.verbs),
            None => simple.push(rule),
        }
    }
    out.extend(simple);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        PolicyRule {
            verbs: v(verbs),
            non_resource_urls: v(urls),
            ..Default::default()
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> AuthzRequest {
        AuthzRequest {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "demo".into(),
            ..Default::default()
        }
    }

    fn path(verb: &str, p: &str) -> AuthzRequest {
        AuthzRequest {
            verb: verb.into(),
            path: p.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rule_allows_table() {
        let pods = rule(&["get", "list"], &[""], &["pods"], &[]);
        let star_status = rule(&["get"], &["apps"], &["*/status"], &[]);
        let named = rule(&["get", "update"], &[""], &["configmaps"], &["cfg"]);
        let all = rule(&["*"], &["*"], &["*"], &[]);
        let log = rule(&["get"], &[""], &["pods/log"], &[]);
        let cases = [
            (&pods, req("get", "", "pods", "", "p"), true),
            (&pods, req("list", "", "pods", "", ""), true),
            (&pods, req("watch", "", "pods", "", ""), false),
            (&pods, req("get", "apps", "pods", "", "p"), false),
            (&pods, req("get", "", "pods", "log", "p"), false),
            (&log, req("get", "", "pods", "log", "p"), true),
            (&log, req("get", "", "pods", "", "p"), false),
            (
                &star_status,
                req("get", "apps", "statefulsets", "status", "s"),
                true,
            ),
            (&star_status, req("get", "apps", "statefulsets", "", "s"), false),
            (
                &star_status,
                req("get", "apps", "statefulsets", "scale", "s"),
                false,
            ),
            (&named, req("get", "", "configmaps", "", "cfg"), true),
            (&named, req("get", "", "configmaps", "", "other"), false),
            // A list has no name, so resourceNames never allow it.
            (&named, req("list", "", "configmaps", "", ""), false),
            (
                &all,
                req("escalate", "rbac.authorization.k8s.io", "roles", "", "r"),
                true,
            ),
            (&all, path("get", "/healthz"), false),
        ];
        for (i, (r, a, want)) in cases.iter().enumerate() {
            assert_eq!(r.allows(a), *want, "case {i}: {r:?} {a:?}");
        }
    }

    #[test]
    fn non_resource_urls_with_trailing_star() {
        let r = urls(&["get"], &["/healthz", "/api/*", "/apis"]);
        assert!(r.allows(&path("get", "/healthz")));
        assert!(r.allows(&path("get", "/api/v1")));
        assert!(r.allows(&path("get", "/api/")));
        assert!(!r.allows(&path("get", "/api")));
        assert!(r.allows(&path("get", "/apis")));
        assert!(!r.allows(&path("get", "/apis/apps")));
        assert!(!r.allows(&path("post", "/healthz")));
        assert!(urls(&["*"], &["*"]).allows(&path("put", "/anything")));
        // Non-resource rules never allow resource requests.
        assert!(!urls(&["*"], &["*"]).allows(&req("get", "", "pods", "", "")));
    }

    #[test]
    fn covers_like_kube() {
        let owner = vec![
            rule(&["get", "list"], &[""], &["pods", "*/status"], &[]),
            rule(&["get"], &[""], &["secrets"], &["s1", "s2"]),
            urls(&["get"], &["/api/*"]),
        ];
        assert!(covers(&owner, &[rule(&["get"], &[""], &["pods"], &[])]).0);
        assert!(covers(&owner, &[rule(&["list"], &[""], &["statefulsets/status"], &[])]).0);
        assert!(covers(&owner, &[rule(&["get"], &[""], &["secrets"], &["s1"])]).0);
        assert!(!covers(&owner, &[rule(&["get"], &[""], &["secrets"], &[])]).0);
        assert!(covers(&owner, &[urls(&["get"], &["/api/v1"])]).0);
        assert!(!covers(&owner, &[urls(&["get"], &["/apis"])]).0);
        // A requested `*` is only covered by `*`.
        let (ok, missing) = covers(&owner, &[rule(&["*"], &[""], &["pods"], &[])]);
        assert!(!ok);
        assert_eq!(missing, vec![rule(&["*"], &[""], &["pods"], &[])]);
        let (ok, missing) = covers(
            &owner,
            &[rule(&["get", "delete", "create"], &[""], &["pods"], &[])],
        );
        assert!(!ok);
        assert_eq!(
            compact(missing)
                .iter()
                .map(PolicyRule::compact_string)
                .collect::<Vec<_>>(),
            vec![r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "create"]}"#]
        );
        let admin = vec![rule(&["*"], &["*"], &["*"], &[]), urls(&["*"], &["*"])];
        assert!(covers(&admin, &owner).0);
    }

    #[test]
    fn json_round_trip_and_compact_string() {
        let v = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": null});
        let r = PolicyRule::from_json(&v);
        assert_eq!(r, rule(&["get"], &[""], &["pods"], &[]));
        assert_eq!(
            r.to_json(),
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
        );
        assert_eq!(
            urls(&["get"], &["/x"]).compact_string(),
            r#"{NonResourceURLs:["/x"], Verbs:["get"]}"#
        );
    }
}
