//! End to end: the webhook in-process against the sandbox API server, registered as the Helm
//! chart registers it (same webhook names, paths, rules incl. `/status`, failurePolicy Fail,
//! sideEffects None, a Service reference), with kubectl as the client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use volops_e2e::chart_config::{RELEASE_NS, SERVICE, Target, webhook_configurations};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};
use volops_shared::DatabaseKind;

const WAIT: Duration = Duration::from_secs(30);

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = tokio::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl must be installed (CI fails without it)");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = child.wait_with_output().await.unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn create<K>(client: &kube::Client, obj: Value)
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap())
        .await
        .unwrap();
}

fn redis(name: &str, storage_type: &str, class: &str, mode: Value) -> Value {
    let mut spec = json!({"version": "7.2.4", "storageType": storage_type,
        "storage": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}});
    spec.as_object_mut()
        .unwrap()
        .extend(mode.as_object().unwrap().clone());
    json!({"apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": name, "namespace": "demo"}, "spec": spec})
}

fn ops_yaml(name: &str, db: &str, size: &str) -> String {
    format!(
        "apiVersion: ops.kubedb.com/v1alpha1\nkind: RedisOpsRequest\nmetadata:\n  name: {name}\n  namespace: demo\n\
         spec:\n  type: VolumeExpansion\n  databaseRef:\n    name: {db}\n  volumeExpansion:\n    redis: {size}\n"
    )
}

/// Polls `probe` until it answers 200 or the deadline passes.
async fn wait_http(probe: SocketAddr, path: &str, want: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(body) = get(probe, path).await
            && want(&body)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} on {probe} not as expected within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = String::new();
    tcp.read_to_string(&mut buf).await.map_err(|e| e.to_string())?;
    if buf.starts_with("HTTP/1.1 200") {
        Ok(buf)
    } else {
        Err(buf)
    }
}

fn assert_denied(out: &Out, message: &str) {
    assert!(!out.ok, "expected a denial, kubectl succeeded: {}", out.stdout);
    let hook = if message.starts_with("spec.storage.resources") {
        "databases.validate.volops.dev"
    } else {
        "opsrequests.validate.volops.dev"
    };
    let want = format!("admission webhook \"{hook}\" denied the request: {message}");
    assert!(
        out.stderr.contains(&want),
        "stderr:\n{}\nwanted:\n{want}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_meets_every_denial_and_sees_defaults_and_plan() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = Sandbox::start(SandboxOptions {
        cluster: Some(ClusterConfig::fast()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let client = sb.client().await.unwrap();
    let kc = sb.kubeconfig_path().to_owned();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in volops_shared::crd::all().unwrap() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    create::<Namespace>(
        &client,
        json!({"metadata": {"name": "demo", "labels": {"tenant": "a"}}}),
    )
    .await;
    create::<Namespace>(&client, json!({"metadata": {"name": RELEASE_NS}})).await;
    let class = |name: &str, expand: bool| {
        json!({"metadata": {"name": name}, "provisioner": "sandbox.volops.dev/csi", "allowVolumeExpansion": expand,
               "volumeBindingMode": "Immediate",
               "parameters": {"sandbox.volops.dev/resize-mode": "online", "sandbox.volops.dev/resize-delay-ms": "20"}})
    };
    create::<StorageClass>(&client, class("fast", true)).await;
    create::<StorageClass>(&client, class("fixed", false)).await;
    let dbs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "demo", &DatabaseKind::Redis.database_resource());
    for db in [
        redis(
            "rd",
            "Durable",
            "fast",
            json!({"mode": "Cluster", "cluster": {"shards": 2, "replicas": 2}}),
        ),
        redis("rdfixed", "Durable", "fixed", json!({"mode": "Standalone"})),
        redis("eph", "Ephemeral", "fast", json!({"mode": "Standalone"})),
    ] {
        dbs.create(&PostParams::default(), &serde_json::from_value(db).unwrap())
            .await
            .unwrap();
    }
    // Wait until the KubeDB-like provisioner made rd's four PVCs and they are Bound.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "demo");
    let deadline = Instant::now() + WAIT;
    loop {
        let list = pvcs
            .list(&ListParams::default().labels("app.kubernetes.io/instance=rd"))
            .await
            .unwrap();
        let bound = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"));
        if bound.count() == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "rd's PVCs not bound in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    // Certificate, listeners and chart-shaped configurations come from the e2e harness.
    let running = volops_e2e::Webhook::start(client.clone(), dir.path())
        .await
        .unwrap();
    let https = running.https_addr;
    sb.set_service_resolver(Arc::new(move |ns: &str, name: &str, _port: u16| {
        (ns == RELEASE_NS && name == SERVICE).then_some(https)
    }));
    wait_http(running.probe_addr, "/readyz", |_| true).await;
    wait_http(running.probe_addr, "/metrics", |m| {
        m.contains(r#"volops_webhook_cache_objects{cache="persistentvolumeclaims"} 5"#)
    })
    .await;
    let (m, v) = webhook_configurations(&running.ca_pem, &Target::default());
    create::<MutatingWebhookConfiguration>(&client, m).await;
    create::<ValidatingWebhookConfiguration>(&client, v).await;

    let apply = |yaml: String| {
        let kc = kc.clone();
        async move { kubectl(&kc, &["apply", "-f", "-"], Some(&yaml)).await }
    };
    let started = Instant::now();
    assert_denied(
        &apply(ops_yaml("shrink", "rd", "512Mi")).await,
        "desired storage 512Mi must be greater than the current 1Gi (largest PVC data-rd-shard0-0); volumes can \
         only grow, so ask for more than 1Gi",
    );
    assert_denied(
        &apply(ops_yaml("same", "rd", "1Gi")).await,
        "desired storage 1Gi must be greater than the current 1Gi (largest PVC data-rd-shard0-0); volumes can \
         only grow, so ask for more than 1Gi",
    );
    let fixed = apply(ops_yaml("fixed", "rdfixed", "2Gi")).await;
    assert_denied(
        &fixed,
        "StorageClass \"fixed\" of PVC data-rdfixed-0 does not allow volume expansion; ask your cluster admin to \
         set allowVolumeExpansion: true on it (if its driver supports resizing)",
    );
    assert_denied(
        &apply(ops_yaml("eph", "eph", "2Gi")).await,
        "Redis demo/eph has spec.storageType Ephemeral: it keeps its data in memory-backed volumes that cannot \
         be expanded; only Durable databases can be",
    );
    assert_denied(
        &apply(ops_yaml("missing", "nope", "2Gi")).await,
        "Redis demo/nope not found: spec.databaseRef.name must name a Redis in namespace demo; create the \
         database first or fix the name",
    );
    let per_call = started.elapsed() / 5;
    println!("kubectl sees, e.g.:\n{}", fixed.stderr.trim());

    // Policy: the webhook must have seen it before the request comes.
    let policy = "apiVersion: volops.dev/v1alpha1\nkind: VolumeExpansionPolicy\nmetadata:\n  name: cap\n\
                  spec:\n  namespaceSelector:\n    matchLabels:\n      tenant: a\n  maxSize: 10Gi\n";
    assert!(kubectl(&kc, &["apply", "-f", "-"], Some(policy)).await.ok);
    wait_http(running.probe_addr, "/metrics", |m| {
        m.contains(r#"volops_webhook_cache_objects{cache="volumeexpansionpolicies"} 1"#)
    })
    .await;
    assert_denied(
        &apply(ops_yaml("huge", "rd", "20Gi")).await,
        "VolumeExpansionPolicy \"cap\" denies this request: 20Gi is above its maxSize of 10Gi; ask for at most 10Gi",
    );

    // dry-run=server: admitted, nothing stored, the plan comes back as warnings.
    let dry = kubectl(
        &kc,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&ops_yaml("grow", "rd", "2Gi")),
    )
    .await;
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stderr.contains(
            "Warning: plan: Redis demo/rd will be paused during the expansion and resumed after it"
        ),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr
            .contains("Warning: plan: PVC data-rd-shard0-0 grows 1Gi -> 2Gi (Online, all volumes at once)"),
        "{}",
        dry.stderr
    );

    // A valid request is admitted and stored with the defaults.
    let ok = apply(ops_yaml("grow", "rd", "2Gi")).await;
    assert!(ok.ok, "{}", ok.stderr);
    let got = kubectl(
        &kc,
        &["get", "redisopsrequest", "grow", "-n", "demo", "-o", "yaml"],
        None,
    )
    .await;
    assert!(got.ok, "{}", got.stderr);
    for line in [
        "apply: IfReady",
        "timeout: 10m",
        "maxRetries: 1",
        "mode: Online",
        "ops.kubedb.com/kind: Redis",
        "ops.kubedb.com/name: rd",
    ] {
        assert!(
            got.stdout.contains(line),
            "{line:?} missing from:\n{}",
            got.stdout
        );
    }

    // Its spec cannot change any more.
    assert_denied(
        &apply(ops_yaml("grow", "rd", "3Gi")).await,
        "the spec of RedisOpsRequest demo/grow cannot change once the request is accepted (changed: \
         spec.volumeExpansion.redis); create a new RedisOpsRequest instead",
    );

    // Status updates pass without the webhook: no rule names /status (the controller's writes
    // never depend on it), and the API server keeps spec and metadata on /status.
    let status = kubectl(
        &kc,
        &[
            "patch",
            "redisopsrequest",
            "grow",
            "-n",
            "demo",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Progressing"}}"#,
        ],
        None,
    )
    .await;
    assert!(status.ok, "{}", status.stderr);
    let calls_for_status = get(running.probe_addr, "/metrics").await.unwrap();
    assert!(
        !calls_for_status.contains(
            r#"volops_webhook_admission_requests_total{endpoint="validate",kind="RedisOpsRequest",operation="UPDATE",allowed="true"}"#
        ),
        "{calls_for_status}"
    );

    // Quota.
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: storage\n  namespace: demo\n\
                 spec:\n  hard:\n    requests.storage: 6Gi\n";
    let q = kubectl(&kc, &["apply", "-f", "-"], Some(quota)).await;
    assert!(q.ok, "{}", q.stderr);
    wait_http(running.probe_addr, "/metrics", |m| {
        m.contains(r#"volops_webhook_cache_objects{cache="resourcequotas"} 1"#)
    })
    .await;
    // Counted: rd's four PVCs and rdfixed's one (Ephemeral eph has none).
    assert_denied(
        &apply(ops_yaml("over", "rd", "3Gi")).await,
        "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 5Gi to 13Gi, above its \
         limit of 6Gi; ask for a smaller size or have the quota raised",
    );

    // A direct shrink of the database's spec.storage.
    let shrink = kubectl(
        &kc,
        &[
            "patch",
            "redis",
            "rd",
            "-n",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"storage":{"resources":{"requests":{"storage":"512Mi"}}}}}"#,
        ],
        None,
    )
    .await;
    assert_denied(
        &shrink,
        "spec.storage.resources.requests.storage of Redis demo/rd cannot shrink from 1Gi to 512Mi: volumes can \
         only grow; to grow them, create a RedisOpsRequest with spec.type VolumeExpansion",
    );

    println!(
        "kubectl apply through the sandbox and the webhook: {per_call:?} per denied apply (process start included)"
    );
    let metrics = get(running.probe_addr, "/metrics").await.unwrap();
    for line in metrics.lines().filter(|l| {
        l.contains("admission_duration_seconds_sum") || l.contains("admission_duration_seconds_count")
    }) {
        println!("{line}");
    }
    running.shutdown().await;
    sb.shutdown().await.unwrap();
}
