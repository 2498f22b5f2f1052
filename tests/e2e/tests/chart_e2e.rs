//! Issue 8: the chart rendered by the real Helm engine (tests/chart/render.py), its CRDs,
//! RBAC and webhook configurations applied to the sandbox, the webhook and controller
//! in-process behind `webhook.externalURL`, and one expansion end to end - the chart's paths
//! and rules proven against the binaries.

use std::path::{Path, PathBuf};

use base64::Engine;
use kube::api::DynamicObject;
use serde_json::Value;
use volops_e2e::chart_config::{
    MUTATE_OPS, Target, VALIDATE_DBS, VALIDATE_OPS, VALIDATE_POLICIES, VALIDATE_PVCS, webhook_configurations,
};
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_e2e::{Error, Harness, HarnessOptions, Result, apply, repo_root};
use volops_shared::DatabaseKind;

/// Whether python3 with the chart test packages is here; without them the test fails in CI
/// and is skipped elsewhere.
fn chart_tools_present() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import helm_python, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with tests/chart/requirements.txt is required in CI"
        );
        println!(
            "SKIPPED: python3 with helm-python-sdk missing (pip install -r tests/chart/requirements.txt)"
        );
    }
    ok
}

async fn render(out: &Path, webhook_url: &str, ca_pem: &str) -> Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let root = repo_root();
    let output = tokio::process::Command::new("python3")
        .current_dir(&root)
        .arg(root.join("tests/chart/render.py"))
        .arg("--out")
        .arg(out)
        .args(["--set", &format!("webhook.externalURL={webhook_url}")])
        .args(["--set", "tls.existingSecret=x"])
        .args(["--set", "kubedbCRDs.install=true"])
        .args(["--set-string", &format!("tls.caBundle={ca}")])
        .arg("--skip-tests")
        .output()
        .await
        .map_err(|source| Error::Io {
            context: "running tests/chart/render.py".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "render.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            context: format!("listing {}", dir.display()),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    Ok(out)
}

fn kinds(objs: &[DynamicObject]) -> Vec<String> {
    objs.iter()
        .map(|o| o.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default())
        .collect()
}

/// A counter of the webhook's /metrics, 0 when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rendered_configs_admit_and_an_expansion_succeeds() -> Result<()> {
    if !chart_tools_present() {
        return Ok(());
    }
    let mut h = Harness::start(HarnessOptions {
        install_crds: false,
        register_webhooks: false,
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await?;
    let client = h.client();
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        context: "temporary directory".into(),
        source,
    })?;
    let out = dir.path().join("rendered");
    render(&out, &h.webhook().url(), &h.webhook().ca_pem).await?;

    // CRDs exactly as the chart ships them: crds/, and KubeDB's kinds with kubedbCRDs.install.
    let crd_dir = repo_root().join("charts/volops/crds");
    for f in files(&crd_dir)? {
        h.apply_file(&f).await?;
    }
    let kubedb = h.apply_file(&out.join("kubedb-crds.yaml")).await?;
    // Redis, ZooKeeper, their ops requests and their storage autoscalers.
    assert_eq!(kinds(&kubedb), ["CustomResourceDefinition"; 6]);
    h.webhook().wait_ready(h.timeout()).await?;

    // RBAC: the harness runs the webhook and the controller as the chart's ServiceAccounts
    // under the default render's roles; this render's are the same objects (applied again,
    // unchanged), enforced by the API server.
    let mut rbac = Vec::new();
    for f in ["controller-rbac.yaml", "webhook-rbac.yaml", "tenant-rbac.yaml"] {
        rbac.extend(h.apply_file(&out.join(f)).await?);
    }
    let rbac_kinds = kinds(&rbac);
    for k in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        assert!(
            rbac_kinds.iter().any(|x| x == k),
            "{k} missing from {rbac_kinds:?}"
        );
    }

    // The webhook configurations: the same as the harness registers (so the other e2e tests
    // exercise the chart's configuration), then applied.
    let mutating = apply::read_documents(&out.join("mutating-webhook.yaml"))?;
    let validating = apply::read_documents(&out.join("validating-webhook.yaml"))?;
    let (m, v) = webhook_configurations(&h.webhook().ca_pem, &Target::Url(h.webhook().url()));
    assert_eq!(mutating.len(), 1);
    assert_eq!(validating.len(), 1);
    assert_eq!(
        mutating[0].data["webhooks"], m["webhooks"],
        "mutating webhooks differ from the harness's"
    );
    assert_eq!(
        validating[0].data["webhooks"], v["webhooks"],
        "validating webhooks differ from the harness's"
    );
    apply::apply_all(&client, &mutating).await?;
    apply::apply_all(&client, &validating).await?;

    // A database, then an invalid request (denied through /validate) and a valid one.
    let examples = repo_root().join("examples");
    for f in ["namespace.yaml", "storageclasses.yaml", "redis-cluster.yaml"] {
        h.apply_file(&examples.join(f)).await?;
    }
    let redis = h.databases(DatabaseKind::Redis, "demo");
    wait_ready(&redis, "sample-redis", h.timeout()).await?;
    h.webhook()
        .wait_cache("persistentvolumeclaims", 6, h.timeout())
        .await?;
    let shrink = volops_e2e::demo::try_shrinks(&h, "demo", "sample-redis", "1Gi").await?;
    for d in &shrink {
        assert!(d.seen(), "{d:#?}");
    }

    h.start_controller();
    h.apply_file(&examples.join("redis-online-expansion.yaml"))
        .await?;
    let ops = h.ops_requests(DatabaseKind::Redis, "demo");
    let done = wait_final(&ops, "rd-online-volume-expansion", h.timeout()).await?;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    // /mutate ran on CREATE: the defaults are in the stored spec.
    assert_eq!(
        at(&done, "/spec/apply"),
        Some("IfReady"),
        "{:#}",
        done.data["spec"]
    );
    let db = redis
        .get("sample-redis")
        .await
        .map_err(|e| Error::Invalid(e.to_string()))?;
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));

    // Every webhook of the rendered configurations reaches the binary: CREATE mutated and
    // validated above; an edit of the request, of a PVC's size and a policy below. (The
    // controller's own writes are skipped by the matchConditions where the API server
    // evaluates them, so they are not counted on.)
    let pq = kube::api::PatchParams::default();
    let note = serde_json::json!({"metadata": {"annotations": {"example.com/note": "seen"}}});
    ops.patch("rd-online-volume-expansion", &pq, &kube::api::Patch::Merge(&note))
        .await
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let pvcs: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(client.clone(), "demo");
    let grow = serde_json::json!({"spec": {"resources": {"requests": {"storage": "50Gi"}}}});
    let direct = pvcs
        .patch("data-sample-redis-shard0-0", &pq, &kube::api::Patch::Merge(&grow))
        .await;
    assert!(
        direct
            .as_ref()
            .is_err_and(|e| e.to_string().contains("--direct-growth deny")),
        "{direct:?}"
    );
    h.apply_file(&examples.join("policy.yaml")).await?;
    let metrics = h.webhook().metrics().await?;
    for (series, what) in [
        (
            r#"volops_webhook_admission_requests_total{endpoint="mutate",kind="RedisOpsRequest",operation="CREATE",allowed="true"}"#,
            MUTATE_OPS,
        ),
        (
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="RedisOpsRequest",operation="CREATE",allowed="true"}"#,
            VALIDATE_OPS,
        ),
        (
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="RedisOpsRequest",operation="UPDATE",allowed="true"}"#,
            "an edit of the request",
        ),
        (
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="Redis",operation="UPDATE",allowed="false"}"#,
            VALIDATE_DBS,
        ),
        (
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="PersistentVolumeClaim",operation="UPDATE",allowed="false"}"#,
            VALIDATE_PVCS,
        ),
        (
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="VolumeExpansionPolicy",operation="CREATE",allowed="true"}"#,
            VALIDATE_POLICIES,
        ),
    ] {
        assert!(
            counter(&metrics, series) >= 1,
            "{what}: {series} not counted in\n{metrics}"
        );
    }
    let stored: Value = serde_json::to_value(&done).map_err(|source| Error::Json {
        context: "request".into(),
        source,
    })?;
    println!("chart e2e: {} via the chart's configs", at_str(&stored));
    h.shutdown().await
}

fn at_str(v: &Value) -> String {
    format!(
        "{} {}",
        v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?"),
        v.pointer("/status/phase").and_then(Value::as_str).unwrap_or("?")
    )
}
