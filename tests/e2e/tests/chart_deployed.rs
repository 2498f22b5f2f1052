//! Issue 19, the chart as deployed: the chart rendered by the Helm engine and applied as
//! `helm install` would, the real `volops-webhook` and `volops-controller` binaries run with the
//! rendered Deployments' arguments and their ServiceAccounts' tokens, a tenant acting through
//! `kubectl --as` with only `edit` in its namespace (docs/SECURITY.md). Online and Offline
//! expansions of Redis and ZooKeeper end Successful under exactly the chart's RBAC; the tenant
//! is refused what the threat model says; and every rule of the components' roles is needed:
//! removed, it forbids a request the binary made (the API server's audit log, then the RBAC
//! authorizer through SubjectAccessReviews).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use volops_e2e::chart::default_render;
use volops_e2e::chart_config::RELEASE_NS;
use volops_e2e::deployed::Deployed;
use volops_e2e::identity::{TENANT, TENANT_GROUP, controller_username, webhook_username};
use volops_e2e::repo_root;
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};
use volops_shared::DatabaseKind;

const TIMEOUT: Duration = Duration::from_secs(90);
const NS: &str = "demo";

/// (role, verb, resource) granted but not used by this test's run.
type Unused = (String, String, String);

/// Rights used on paths this run does not take, each with where it is used and tested.
const OTHER_PATHS: &[(&str, &str, &str, &str)] = &[
    (
        "volops-controller",
        "get",
        "redisopsrequests",
        "the sweep reads a request deleted without its finalizer (controller/src/sweep.rs; controller/tests/e2e_tenant.rs)",
    ),
    (
        "volops-controller",
        "get",
        "zookeeperopsrequests",
        "the same, for ZooKeeper",
    ),
    (
        "volops-controller",
        "get",
        "statefulsets",
        "a workload's absence is confirmed by a GET when the cache is unsure (controller/src/steps/workloads.rs)",
    ),
    ("volops-controller", "get", "petsets", "the same, for PetSets"),
    (
        "volops-controller",
        "delete",
        "statefulsets",
        "the orphan step on Redis run on StatefulSets, the older KubeDB layout; this run's are on PetSets \
         (controller/src/steps/workloads.rs; controller/tests/e2e_matrix.rs, tests/e2e/tests/kubedb_docs.rs)",
    ),
    (
        "volops-controller",
        "create",
        "statefulsets",
        "the recreate step on that older layout (the same files)",
    ),
    (
        "volops-controller",
        "get",
        "namespaces",
        "a namespace's labels are read when no cache holds it (controller/src/steps/admit.rs)",
    ),
    (
        "volops-controller",
        "patch",
        "events",
        "the event recorder patches an event that repeats (its series; controller/src/events.rs)",
    ),
    (
        "volops-controller",
        "create",
        "redisopsrequests",
        "the storage autoscaler creates the request it decides on (controller/src/autoscaler/request.rs; \
         tests/e2e/tests/autoscaler.rs)",
    ),
    (
        "volops-controller",
        "create",
        "zookeeperopsrequests",
        "the same, for ZooKeeper",
    ),
    (
        "volops-controller",
        "patch",
        "redisautoscalers/status",
        "the storage autoscaler reports each decision (controller/src/autoscaler/status.rs; tests/e2e/tests/autoscaler.rs)",
    ),
    (
        "volops-controller",
        "patch",
        "zookeeperautoscalers/status",
        "the same, for ZooKeeper",
    ),
    (
        "volops-controller",
        "list",
        "nodes",
        "the kubelet usage source lists the nodes while an autoscaler is on \
         (controller/src/autoscaler/usage/kubelet.rs; tests/e2e/tests/autoscaler.rs)",
    ),
    (
        "volops-controller",
        "get",
        "nodes/proxy",
        "the same: each node's /stats/summary",
    ),
];

/// kubectl and python3 with the Helm engine: required in CI, skipped elsewhere.
fn tools() -> Option<PathBuf> {
    let kubectl = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    let python = std::process::Command::new("python3")
        .args(["-c", "import helm_python, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if kubectl.is_none() || !python {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl and tests/chart/requirements.txt are required when CI=true"
        );
        eprintln!("SKIPPED: kubectl or the Python chart packages are missing");
        return None;
    }
    kubectl
}

/// kubectl against the sandbox as its admin, or as a user through `--as`/`--as-group`.
struct Kubectl {
    path: PathBuf,
    kubeconfig: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn run(&self, identity: Option<(&str, &str)>, args: &[&str]) -> Out {
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.env("KUBECONFIG", &self.kubeconfig).current_dir(repo_root());
        if let Some((user, group)) = identity {
            cmd.arg(format!("--as={user}")).arg(format!("--as-group={group}"));
        }
        let out = cmd.args(args).output().await.expect("kubectl runs");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn admin(&self, args: &[&str]) {
        let out = self.run(None, args).await;
        assert!(out.ok, "kubectl {args:?}: {}", out.stderr);
    }

    async fn tenant(&self, args: &[&str]) -> Out {
        self.run(Some((TENANT, TENANT_GROUP)), args).await
    }
}

/// `examples/<file>` with `replacements`, written to `dir` (a second ZooKeeper on the
/// online-resizing StorageClass, and its request).
fn variant(dir: &Path, file: &str, replacements: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file)).unwrap();
    let text = replacements
        .iter()
        .fold(text, |t, (from, to)| t.replace(from, to));
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_as_deployed_expands_under_its_rbac_and_refuses_tenants() {
    let Some(kubectl) = tools() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sandbox = Sandbox::start(SandboxOptions {
        cluster: Some(ClusterConfig::fast()),
        audit_capacity: 1_000_000,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let chart = default_render().unwrap();
    let mut deployed = Deployed::install(&sandbox, &chart, TIMEOUT).await.unwrap();
    let k = Kubectl {
        path: kubectl,
        kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
    };
    let tmp = tempfile::tempdir().unwrap();

    // The platform team: namespace, StorageClasses, and the tenant's binding (chart README).
    k.admin(&["apply", "-f", "examples/namespace.yaml"]).await;
    k.admin(&["apply", "-f", "examples/storageclasses.yaml"]).await;
    k.admin(&[
        "create",
        "rolebinding",
        "alice-edit",
        "--clusterrole=edit",
        "--user=alice",
        "-n",
        NS,
    ])
    .await;
    let can = k
        .tenant(&[
            "auth",
            "can-i",
            "create",
            "redisopsrequests.ops.kubedb.com",
            "-n",
            NS,
        ])
        .await;
    assert_eq!(can.stdout.trim(), "yes", "{}", can.stderr);

    // The tenant: databases, then Online and Offline expansions of each kind.
    let zk_online = variant(
        tmp.path(),
        "zookeeper.yaml",
        &[
            ("zk-quickstart", "zk-online"),
            ("\"standard\"", "\"topolvm-provisioner\""),
        ],
    );
    for file in [
        "examples/redis-cluster.yaml",
        "examples/redis-standalone.yaml",
        "examples/zookeeper.yaml",
        zk_online.as_str(),
    ] {
        let out = k.tenant(&["apply", "-f", file]).await;
        assert!(out.ok, "tenant applies {file}: {}", out.stderr);
    }
    let admin = sandbox.client().await.unwrap();
    let redis = db_api(&admin, DatabaseKind::Redis);
    let zookeepers = db_api(&admin, DatabaseKind::ZooKeeper);
    for (api, name) in [
        (&redis, "sample-redis"),
        (&redis, "redis-standalone"),
        (&zookeepers, "zk-quickstart"),
        (&zookeepers, "zk-online"),
    ] {
        wait_ready(api, name, TIMEOUT).await.unwrap();
    }
    let zk_online_request = variant(
        tmp.path(),
        "zookeeper-online-expansion.yaml",
        &[("name: zk-quickstart", "name: zk-online")],
    );
    for file in [
        "examples/redis-online-expansion.yaml",
        "examples/redis-offline-expansion.yaml",
        "examples/zookeeper-offline-expansion.yaml",
        zk_online_request.as_str(),
    ] {
        let out = k.tenant(&["apply", "-f", file]).await;
        assert!(out.ok, "tenant applies {file}: {}", out.stderr);
    }
    for (kind, request, db_api, db) in [
        (
            DatabaseKind::Redis,
            "rd-online-volume-expansion",
            &redis,
            "sample-redis",
        ),
        (
            DatabaseKind::Redis,
            "rd-offline-volume-expansion",
            &redis,
            "redis-standalone",
        ),
        (
            DatabaseKind::ZooKeeper,
            "zk-offline-volume-expansion",
            &zookeepers,
            "zk-quickstart",
        ),
        (
            DatabaseKind::ZooKeeper,
            "zk-online-volume-expansion",
            &zookeepers,
            "zk-online",
        ),
    ] {
        let done = wait_final(&ops_api(&admin, kind), request, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{request}: {e}\ncontroller log:\n{}", deployed.controller.log()));
        assert_eq!(
            at(&done, "/status/phase"),
            Some("Successful"),
            "{request}: {:#}\ncontroller log:\n{}",
            done.data["status"],
            deployed.controller.log()
        );
        let db = db_api.get(db).await.unwrap();
        assert_eq!(
            at(&db, "/spec/storage/resources/requests/storage"),
            Some("2Gi"),
            "{db:?}"
        );
    }

    tenant_is_refused(&k).await;

    // Every request the binaries made was allowed; each rule of their roles is needed.
    deployed.controller.stop().await;
    deployed.webhook.stop().await;
    let audit = sandbox.audit_events();
    for user in [controller_username(), webhook_username()] {
        let forbidden: Vec<_> = made_by(&audit, &user)
            .filter(|e| e["annotations"]["authorization.k8s.io/decision"] == "forbid")
            .collect();
        assert!(forbidden.is_empty(), "{user} was refused: {forbidden:#?}");
    }
    let mut needed = Vec::new();
    for (kind, name, ns, user) in [
        ("ClusterRole", "volops-controller", None, controller_username()),
        (
            "Role",
            "volops-controller-saved-state",
            Some(RELEASE_NS),
            controller_username(),
        ),
        (
            "Role",
            "volops-controller-leader-election",
            Some(RELEASE_NS),
            controller_username(),
        ),
        ("ClusterRole", "volops-webhook", None, webhook_username()),
    ] {
        needed.extend(each_rule_is_needed(&admin, &audit, kind, name, ns, &user).await);
    }
    let unneeded: Vec<&Unused> = needed
        .iter()
        .filter_map(|l| l.as_ref().err())
        .filter(|(role, verb, resource)| {
            !OTHER_PATHS
                .iter()
                .any(|(r, v, res, _)| r == role && v == verb && res == resource)
        })
        .collect();
    assert!(
        unneeded.is_empty(),
        "(role, verb, resource) no request of this run needed: {unneeded:#?}"
    );
    for line in needed.iter().flatten() {
        println!("{line}");
    }
    drop(deployed);
    sandbox.shutdown().await.unwrap();
}

/// What the threat model says a tenant must not do, each refused by RBAC or by the webhook.
async fn tenant_is_refused(k: &Kubectl) {
    let patch_status = r#"{"status":{"phase":"Pending"}}"#;
    let grow_pvc = r#"{"spec":{"resources":{"requests":{"storage":"50Gi"}}}}"#;
    let cases: [(&[&str], &str); 7] = [
        (
            &["get", "secrets", "-n", RELEASE_NS],
            r#"User "alice" cannot list resource "secrets" in API group "" in the namespace "volops-system""#,
        ),
        (
            &["apply", "-f", "examples/policy.yaml"],
            r#"resource "volumeexpansionpolicies" in API group "volops.dev""#,
        ),
        (
            &[
                "patch",
                "redisopsrequest",
                "rd-online-volume-expansion",
                "-n",
                NS,
                "--subresource=status",
                "--type=merge",
                "-p",
                patch_status,
            ],
            r#"cannot patch resource "redisopsrequests/status" in API group "ops.kubedb.com""#,
        ),
        (
            &["label", "namespace", NS, "volops.dev/webhook=disabled"],
            r#"cannot patch resource "namespaces" in API group """#,
        ),
        (
            &[
                "get",
                "pods",
                "-n",
                NS,
                "--as=system:serviceaccount:volops-system:volops-controller",
            ],
            "",
        ),
        (
            &[
                "annotate",
                "redisopsrequest",
                "rd-online-volume-expansion",
                "-n",
                NS,
                "volops.dev/workload.statefulset.evil={}",
            ],
            "annotations under volops.dev/ and volumeexpansion.ops.kubedb.com/ are",
        ),
        (
            &[
                "patch",
                "pvc",
                "data-sample-redis-shard0-0",
                "-n",
                NS,
                "--type=merge",
                "-p",
                grow_pvc,
            ],
            "--direct-growth deny",
        ),
    ];
    for (args, message) in cases {
        if args.iter().any(|a| a.starts_with("--as=")) {
            // Impersonating the controller (to skip the webhook) needs a right tenants lack.
            let can = k
                .tenant(&[
                    "auth",
                    "can-i",
                    "impersonate",
                    "serviceaccounts/volops-controller",
                    "-n",
                    RELEASE_NS,
                ])
                .await;
            assert_eq!(can.stdout.trim(), "no", "{}", can.stderr);
            continue;
        }
        let out = k.tenant(args).await;
        assert!(
            !out.ok,
            "the tenant was allowed: kubectl {args:?}\n{}",
            out.stdout
        );
        assert!(out.stderr.contains(message), "kubectl {args:?}: {}", out.stderr);
    }
}

fn db_api(client: &kube::Client, kind: DatabaseKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &kind.database_resource())
}

fn ops_api(client: &kube::Client, kind: DatabaseKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &kind.ops_resource())
}

fn made_by<'a>(audit: &'a [Value], user: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    audit
        .iter()
        .filter(move |e| e["user"]["username"] == user && e.get("objectRef").is_some())
}

/// One request as the authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Attributes {
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
}

impl Attributes {
    fn of(event: &Value) -> Attributes {
        let r = &event["objectRef"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Attributes {
            verb: s(&event["verb"]),
            group: s(&r["apiGroup"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            namespace: s(&r["namespace"]),
            name: s(&r["name"]),
        }
    }

    fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// kube-apiserver's Forbidden message for this request.
    fn forbidden(&self, user: &str) -> String {
        let group_resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        let object = if self.name.is_empty() {
            group_resource
        } else {
            format!("{group_resource} \"{}\"", self.name)
        };
        format!(
            "{object} is forbidden: User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
            self.verb,
            self.resource_path(),
            self.group
        )
    }
}

/// Removes each rule of the role in turn (and, within a rule, each resource) and asks the
/// API server's authorizer whether the requests the binary made under that role are still
/// allowed: at least one must not be. Returns one line per rule with a request it forbids.
async fn each_rule_is_needed(
    admin: &kube::Client,
    audit: &[Value],
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    user: &str,
) -> Vec<Result<String, Unused>> {
    let ar = ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    };
    let roles: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
        None => Api::all_with(admin.clone(), &ar),
    };
    let original = roles.get(name).await.unwrap();
    let rules = original.data["rules"].as_array().cloned().unwrap_or_default();
    let granted_by = format!(" of {kind} \"{name}\" ");
    let requests: BTreeSet<Attributes> = made_by(audit, user)
        .filter(|e| {
            e["annotations"]["authorization.k8s.io/reason"]
                .as_str()
                .is_some_and(|r| r.contains(&granted_by))
        })
        .map(Attributes::of)
        .collect();
    assert!(!requests.is_empty(), "{kind} {name} granted nothing {user} did");
    let sars: Api<SubjectAccessReview> = Api::all(admin.clone());
    let mut lines = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let resources: Vec<String> = rule["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        let verbs: Vec<String> = rule["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for resource in &resources {
            for verb in &verbs {
                // The role with `verb` on `resource` taken out of rule i, everything else kept.
                let mut reduced = rules.clone();
                let left: Vec<&String> = resources.iter().filter(|r| *r != resource).collect();
                if left.is_empty() {
                    reduced.remove(i);
                } else {
                    reduced[i]["resources"] = json!(left);
                }
                let other_verbs: Vec<&String> = verbs.iter().filter(|v| *v != verb).collect();
                if !other_verbs.is_empty() {
                    reduced.push(json!({"apiGroups": rule["apiGroups"], "resources": [resource],
                                        "verbs": other_verbs}));
                }
                let mut role = original.clone();
                role.metadata.resource_version = None;
                role.data["rules"] = json!(reduced);
                roles.replace(name, &PostParams::default(), &role).await.unwrap();
                let mut denied = Vec::new();
                for r in requests.iter().filter(|r| &r.resource_path() == resource) {
                    if !allowed(&sars, user, r).await {
                        denied.push(r);
                    }
                }
                lines.push(match denied.first() {
                    Some(first) => Ok(format!(
                        "{kind} {name} without {verb} {resource} ({} of its requests refused), e.g.: {}",
                        denied.len(),
                        first.forbidden(user)
                    )),
                    None => Err((name.to_owned(), verb.clone(), resource.clone())),
                });
            }
        }
    }
    let mut role = original.clone();
    role.metadata.resource_version = None;
    roles.replace(name, &PostParams::default(), &role).await.unwrap();
    lines
}

async fn allowed(sars: &Api<SubjectAccessReview>, user: &str, r: &Attributes) -> bool {
    let ns = user.split(':').nth(2).unwrap_or_default();
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
            "resourceAttributes": {
                "verb": r.verb, "group": r.group, "resource": r.resource,
                "subresource": r.subresource, "namespace": r.namespace, "name": r.name,
            }
        }
    }))
    .unwrap();
    let answer = sars.create(&PostParams::default(), &review).await.unwrap();
    answer.status.is_some_and(|s| s.allowed)
}
