//! Issue 20, CRDs that never hurt KubeDB's (docs/KUBEDB.md "Installing beside KubeDB"): KubeDB's
//! real CRDs (../shared/kubedb/crds) and volops's superset of them (`kubedbCRDs.install`) applied
//! over each other with the real kubectl, client-side and server-side; every manifest of KubeDB's
//! docs (../shared/kubedb/docs-examples) round-trips with no field lost; and volops expands a
//! volume on KubeDB's own CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::Value;
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_e2e::{Harness, HarnessOptions, repo_root};
use volops_shared::DatabaseKind;

/// KubeDB's CRDs of the kinds volops also generates.
const KUBEDB_KINDS: &[&str] = &[
    "kubedb.com_redises.yaml",
    "kubedb.com_zookeepers.yaml",
    "ops.kubedb.com_redisopsrequests.yaml",
    "ops.kubedb.com_zookeeperopsrequests.yaml",
    "autoscaling.kubedb.com_redisautoscalers.yaml",
    "autoscaling.kubedb.com_zookeeperautoscalers.yaml",
];

/// ../shared/kubedb: required in CI, skipped elsewhere.
fn kubedb_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/kubedb");
    if dir.join("crds").is_dir() && dir.join("docs-examples").is_dir() {
        return Some(dir);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{} (KubeDB's CRDs and docs manifests) is required when CI=true",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (KubeDB's CRDs and docs manifests live beside the repository)",
        dir.display()
    );
    None
}

/// The real kubectl: required in CI, skipped elsewhere.
fn kubectl_path() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl is required when CI=true"
        );
        eprintln!("SKIPPED: kubectl is not on PATH");
    }
    found
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

struct Kubectl {
    path: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new(&self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root())
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "kubectl {args:?}: {}", out.stderr);
        out.stdout
    }
}

/// A sandbox with no CRDs, no webhook registered and no controller.
async fn bare() -> (Harness, Kubectl) {
    let h = Harness::start(HarnessOptions {
        install_crds: false,
        register_webhooks: false,
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    let k = Kubectl {
        path: kubectl_path().unwrap(),
        kubeconfig: h.kubeconfig_path().to_path_buf(),
    };
    (h, k)
}

/// volops's KubeDB kinds as `volops-crdgen --stdout --kubedb` writes them (the chart's
/// templates/kubedb-crds.yaml, tests/chart/test_crds.py), one file each.
fn volops_kubedb_crds(dir: &Path) -> Vec<String> {
    volops_shared::crd::kubedb()
        .unwrap()
        .iter()
        .map(|crd| {
            let path = dir.join(volops_shared::crd::file_name(crd));
            std::fs::write(&path, volops_shared::crd::to_yaml(crd).unwrap()).unwrap();
            path.display().to_string()
        })
        .collect()
}

fn kubedb_crds(kubedb: &Path) -> Vec<String> {
    KUBEDB_KINDS
        .iter()
        .map(|f| kubedb.join("crds").join(f).display().to_string())
        .collect()
}

/// Every CRD of ../shared/kubedb/crds (sentinels, autoscalers: KubeDB installed) but PetSets,
/// which the sandbox's simulated cluster registers itself.
fn all_kubedb_crds(kubedb: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(kubedb.join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // An old copy of the autoscaler CRD; the current one is applied.
            name.ends_with(".yaml") && !name.contains(".before-") && !name.contains("petsets")
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

fn file_args<'a>(verb: &[&'a str], files: &'a [String]) -> Vec<&'a str> {
    let mut args = verb.to_vec();
    for f in files {
        args.extend(["-f", f.as_str()]);
    }
    args
}

/// (name, served, storage) of every version of the stored CRD.
async fn versions(h: &Harness, name: &str) -> Vec<(String, bool, bool)> {
    let crds: Api<CustomResourceDefinition> = Api::all(h.client());
    let crd = crds.get(name).await.unwrap();
    crd.spec
        .versions
        .iter()
        .map(|v| (v.name.clone(), v.served, v.storage))
        .collect()
}

/// Whether the stored Redis CRD is KubeDB's (its schema types `spec.podTemplate`; volops's
/// leaves it to x-kubernetes-preserve-unknown-fields).
async fn redis_crd_is_kubedbs(h: &Harness) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(h.client());
    let crd = serde_json::to_value(crds.get("redises.kubedb.com").await.unwrap()).unwrap();
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/podTemplate")
        .is_some()
}

/// Paths of `input` whose value is missing from, or different in, `stored`.
fn lost(input: &Value, stored: &Value, path: &str, out: &mut Vec<String>) {
    match (input, stored) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => lost(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if input == stored => {}
        _ => out.push(format!("{path}: {input} stored as {stored}")),
    }
}

/// Applies every manifest of KubeDB's docs with kubectl, reads it back at its own apiVersion and
/// returns each file's lost fields (an empty list: every field of every input is stored).
async fn round_trip_docs(k: &Kubectl, kubedb: &Path) -> Vec<(String, Vec<String>)> {
    k.ok(&["create", "namespace", "demo"]).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubedb.join("docs-examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "KubeDB's docs manifests: {files:?}");
    let mut report = Vec::new();
    for file in files {
        let f = file.display().to_string();
        let input: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        k.ok(&["apply", "--server-side", "-f", &f]).await;
        let stored: Value = serde_json::from_str(&k.ok(&["get", "-f", &f, "-o", "json"]).await).unwrap();
        let mut missing = Vec::new();
        lost(&input, &stored, "", &mut missing);
        report.push((file.file_name().unwrap().to_string_lossy().into_owned(), missing));
        k.ok(&["delete", "-f", &f, "--wait=false"]).await;
    }
    report
}

/// Neither CRD declares `spec.conversion` (strategy None): a v1alpha2 Redis read as v1 is the
/// same object under another apiVersion; v1alpha2's `terminationPolicy` is not renamed
/// `deletionPolicy` (only KubeDB's conversion webhook does that, docs/KUBEDB.md).
async fn none_conversion_only_rewrites_api_version(k: &Kubectl, kubedb: &Path) {
    let f = kubedb
        .join("docs-examples/redis_quickstart_demo-v1alpha2.yaml")
        .display()
        .to_string();
    k.ok(&["apply", "--server-side", "-f", &f]).await;
    let get = |version: &'static str| async move {
        let out = k
            .ok(&[
                "get",
                &format!("redises.{version}.kubedb.com"),
                "redis-quickstart",
                "-n",
                "demo",
                "-o",
                "json",
            ])
            .await;
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let (alpha, v1) = (get("v1alpha2").await, get("v1").await);
    assert_eq!(alpha["apiVersion"], "kubedb.com/v1alpha2");
    assert_eq!(v1["apiVersion"], "kubedb.com/v1");
    assert_eq!(alpha["spec"], v1["spec"]);
    assert_eq!(v1["spec"]["terminationPolicy"], "DoNotTerminate");
    assert!(v1["spec"].get("deletionPolicy").is_none());
    k.ok(&["delete", "-f", &f, "--wait=false"]).await;
}

#[test]
fn lost_names_every_missing_or_changed_field() {
    let input = serde_json::json!({"spec": {"type": "VerticalScaling", "verticalScaling": {"redis": {}}, "a": [1, 2]}});
    let stored = serde_json::json!({"spec": {"type": "VerticalScaling", "apply": "IfReady", "a": [1, 3]}});
    let mut out = Vec::new();
    lost(&input, &stored, "", &mut out);
    assert_eq!(out, [".spec.a[1]: 2 stored as 3", ".spec.verticalScaling"]);
}

fn assert_nothing_lost(report: &[(String, Vec<String>)]) {
    let lossy: Vec<_> = report.iter().filter(|(_, l)| !l.is_empty()).collect();
    assert!(lossy.is_empty(), "fields lost: {lossy:#?}");
    for kind in [
        "kubedb.com/v1alpha2",
        "kubedb.com/v1",
        "VerticalScaling",
        "VolumeExpansion",
    ] {
        assert!(
            report.iter().any(|(f, _)| {
                let text = std::fs::read_to_string(kubedb_dir().unwrap().join("docs-examples").join(f));
                text.is_ok_and(|t| t.contains(kind))
            }),
            "the docs manifests cover {kind}"
        );
    }
}

/// Client-side apply, the plain `kubectl apply -f` (docs/KUBEDB.md): either set over the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_either_way_keeps_every_version_and_field() {
    let Some(kubedb) = kubedb_dir() else { return };
    if kubectl_path().is_none() {
        return;
    }
    let (h, k) = bare().await;
    let tmp = tempfile::tempdir().unwrap();
    let ours = volops_kubedb_crds(tmp.path());

    // KubeDB first (its Redis CRD is 158 KiB as JSON: its last-applied annotation fits the
    // apiserver's 256 KiB), then volops's with a plain apply: no conflict in this mode.
    k.ok(&file_args(&["apply"], &all_kubedb_crds(&kubedb))).await;
    assert!(redis_crd_is_kubedbs(&h).await);
    let out = k.ok(&file_args(&["apply"], &ours)).await;
    assert!(out.contains("redises.kubedb.com configured"), "{out}");
    // The plain apply replaced KubeDB's schema with volops's superset: every version is served.
    assert!(!redis_crd_is_kubedbs(&h).await);
    let expected = vec![
        ("v1".to_owned(), true, true),
        ("v1alpha2".to_owned(), true, false),
    ];
    assert_eq!(versions(&h, "redises.kubedb.com").await, expected);
    assert_nothing_lost(&round_trip_docs(&k, &kubedb).await);
    none_conversion_only_rewrites_api_version(&k, &kubedb).await;

    // And KubeDB's over volops's: KubeDB's schema back, the same versions.
    let out = k.ok(&file_args(&["apply"], &kubedb_crds(&kubedb))).await;
    assert!(out.contains("redises.kubedb.com configured"), "{out}");
    assert!(redis_crd_is_kubedbs(&h).await);
    assert_eq!(versions(&h, "redises.kubedb.com").await, expected);
    h.shutdown().await.unwrap();
}

/// Server-side apply: KubeDB's installer and volops's are different field managers; each owns
/// the versions' schemas, so the second conflicts until `--force-conflicts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_until_forced_then_keeps_every_field() {
    let Some(kubedb) = kubedb_dir() else { return };
    if kubectl_path().is_none() {
        return;
    }
    let (h, k) = bare().await;
    let tmp = tempfile::tempdir().unwrap();
    let ours = volops_kubedb_crds(tmp.path());
    let theirs = kubedb_crds(&kubedb);

    // volops's first, then KubeDB's (KubeDB installed after volops).
    k.ok(&file_args(
        &["apply", "--server-side", "--field-manager=volops"],
        &ours,
    ))
    .await;
    let conflict = k
        .run(&file_args(
            &["apply", "--server-side", "--field-manager=kubedb"],
            &theirs,
        ))
        .await;
    assert!(!conflict.ok, "KubeDB's over volops's conflicts");
    assert!(conflict.stderr.contains("conflict"), "{}", conflict.stderr);
    assert!(!redis_crd_is_kubedbs(&h).await, "a conflict changes nothing");
    k.ok(&file_args(
        &[
            "apply",
            "--server-side",
            "--field-manager=kubedb",
            "--force-conflicts",
        ],
        &theirs,
    ))
    .await;
    assert!(redis_crd_is_kubedbs(&h).await);

    // volops's over KubeDB's: the same conflict; forced, volops's superset is stored.
    let conflict = k
        .run(&file_args(
            &["apply", "--server-side", "--field-manager=volops"],
            &ours,
        ))
        .await;
    assert!(!conflict.ok, "volops's over KubeDB's conflicts");
    assert!(conflict.stderr.contains("conflict"), "{}", conflict.stderr);
    assert!(redis_crd_is_kubedbs(&h).await, "a conflict changes nothing");
    k.ok(&file_args(
        &[
            "apply",
            "--server-side",
            "--field-manager=volops",
            "--force-conflicts",
        ],
        &ours,
    ))
    .await;
    assert!(!redis_crd_is_kubedbs(&h).await);
    assert_eq!(
        versions(&h, "redises.kubedb.com").await,
        [
            ("v1".to_owned(), true, true),
            ("v1alpha2".to_owned(), true, false)
        ]
    );
    // Other KubeDB kinds the docs use (sentinels) come with KubeDB.
    let others: Vec<String> = all_kubedb_crds(&kubedb)
        .into_iter()
        .filter(|f| !KUBEDB_KINDS.iter().any(|k| f.ends_with(k)))
        .collect();
    k.ok(&file_args(
        &["apply", "--server-side", "--field-manager=kubedb"],
        &others,
    ))
    .await;
    assert_nothing_lost(&round_trip_docs(&k, &kubedb).await);
    h.shutdown().await.unwrap();
}

/// volops on KubeDB's own CRDs (the chart's default): an Offline ZooKeeper expansion ends
/// Successful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volops_expands_a_volume_on_kubedbs_own_crds() {
    let Some(kubedb) = kubedb_dir() else { return };
    if kubectl_path().is_none() {
        return;
    }
    let h = Harness::start(HarnessOptions {
        install_crds: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    let k = Kubectl {
        path: kubectl_path().unwrap(),
        kubeconfig: h.kubeconfig_path().to_path_buf(),
    };
    k.ok(&file_args(&["apply", "--server-side"], &all_kubedb_crds(&kubedb)))
        .await;
    // volops's own CRD, as the chart's crds/ installs it.
    k.ok(&["apply", "-f", "charts/volops/crds/"]).await;
    assert!(redis_crd_is_kubedbs(&h).await);
    h.webhook().wait_ready(h.timeout()).await.unwrap();
    for f in ["namespace.yaml", "storageclasses.yaml", "zookeeper.yaml"] {
        h.apply_file(&repo_root().join("examples").join(f)).await.unwrap();
    }
    let zk = h.databases(DatabaseKind::ZooKeeper, "demo");
    wait_ready(&zk, "zk-quickstart", h.timeout()).await.unwrap();
    h.webhook()
        .wait_cache("persistentvolumeclaims", 3, h.timeout())
        .await
        .unwrap();
    h.apply_file(&repo_root().join("examples/zookeeper-offline-expansion.yaml"))
        .await
        .unwrap();
    let ops = h.ops_requests(DatabaseKind::ZooKeeper, "demo");
    let done = wait_final(&ops, "zk-offline-volume-expansion", h.timeout())
        .await
        .unwrap();
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    let db = zk.get("zk-quickstart").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    h.shutdown().await.unwrap();
}
