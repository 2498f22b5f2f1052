//! Issue 23, operating volops: the live `/metrics` of both binaries, run as the chart deploys
//! them through expansions that succeed, fail, stay in flight and are denied, pass
//! `promtool check metrics`, and carry every metric name the chart's alerts and dashboard read;
//! and the CRD upgrade path of docs/RUNBOOK.md (server-side apply of the chart's `crds/`, over
//! an older version and again) with the real kubectl.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use volops_e2e::apply::{self, documents};
use volops_e2e::chart::{RenderedChart, default_render};
use volops_e2e::chart_config::{RELEASE_NS, SERVICE};
use volops_e2e::deployed::{Deployed, Pod};
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_e2e::{Harness, HarnessOptions, repo_root};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};
use volops_shared::DatabaseKind;

const TIMEOUT: Duration = Duration::from_secs(90);
const NS: &str = "demo";

/// A tool on PATH: required when CI=true, else the test is skipped.
fn tool(name: &str, why: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{name} is required when CI=true ({why})"
        );
        eprintln!("SKIPPED: {name} is not on PATH ({why})");
    }
    found
}

fn python_chart_packages() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import helm_python, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "tests/chart/requirements.txt is required when CI=true"
        );
        eprintln!("SKIPPED: the Python chart packages are missing");
    }
    ok
}

/// `promtool check metrics` of an exposition: Ok(its report) when it passes.
async fn promtool_check_metrics(promtool: &PathBuf, text: &str) -> Result<String, String> {
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The names of the samples of an exposition (`x_total`, `x_bucket`, ...).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// `volops_*` names in PromQL or a dashboard's JSON.
fn volops_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.starts_with("volops_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn name_extraction() {
    let text = "# TYPE volops_a counter\nvolops_a_total{k=\"v\"} 1\nvolops_b 2\n# EOF\n";
    assert_eq!(
        sample_names(text),
        BTreeSet::from(["volops_a_total".to_owned(), "volops_b".to_owned()])
    );
    assert_eq!(
        volops_names("sum(rate(volops_a_total{job=\"volops-metrics\"}[5m])) / volops_b"),
        BTreeSet::from(["volops_a_total".to_owned(), "volops_b".to_owned()])
    );
}

/// Every metric name the rendered PrometheusRule and dashboard read.
fn names_the_chart_reads(chart: &RenderedChart) -> (BTreeSet<String>, BTreeSet<String>) {
    let rule = chart.file("prometheusrule.yaml");
    let exprs: Vec<String> = rule
        .iter()
        .flat_map(|r| r.data["spec"]["groups"].as_array().cloned().unwrap_or_default())
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["expr"].as_str().map(str::to_owned))
        .collect();
    let dashboard = chart
        .file("grafana-dashboard.yaml")
        .first()
        .and_then(|cm| cm.data["data"]["volops.json"].as_str().map(str::to_owned))
        .expect("the dashboard ConfigMap");
    (volops_names(&exprs.join("\n")), volops_names(&dashboard))
}

fn ops_api(client: &kube::Client, kind: DatabaseKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &kind.ops_resource())
}

fn db_api(client: &kube::Client, kind: DatabaseKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &kind.database_resource())
}

const SLOW_CLASS: &str = r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: slow-online
provisioner: sandbox.volops.dev/csi
allowVolumeExpansion: true
parameters:
  sandbox.volops.dev/resize-mode: online
  sandbox.volops.dev/resize-delay-ms: "600000"
"#;

fn redis(name: &str, class: &str) -> String {
    format!(
        r#"
apiVersion: kubedb.com/v1
kind: Redis
metadata: {{name: {name}, namespace: {NS}}}
spec:
  version: 8.2.2
  storageType: Durable
  storage:
    storageClassName: {class}
    accessModes: [ReadWriteOnce]
    resources: {{requests: {{storage: 1Gi}}}}
  deletionPolicy: WipeOut
"#
    )
}

fn expansion(name: &str, db: &str, size: &str, timeout: &str) -> String {
    format!(
        r#"
apiVersion: ops.kubedb.com/v1alpha1
kind: RedisOpsRequest
metadata: {{name: {name}, namespace: {NS}}}
spec:
  type: VolumeExpansion
  databaseRef: {{name: {db}}}
  volumeExpansion: {{mode: Online, redis: {size}}}
  timeout: {timeout}
"#
    )
}

async fn apply_yaml(client: &kube::Client, yaml: &str) {
    apply::apply_all(client, &documents(yaml, "test manifest").unwrap())
        .await
        .unwrap();
}

/// A component's /metrics in the Prometheus text format (what `promtool check metrics` reads),
/// asked for as a scraper does with `Accept`.
async fn scrape_text(pod: &Pod) -> String {
    let mut tcp = tokio::net::TcpStream::connect(pod.metrics).await.unwrap();
    let req = "GET /metrics HTTP/1.1\r\nHost: scraper\r\nAccept: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n";
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    body.to_owned()
}

/// Polls the controller's /metrics until `wanted` appears in it.
async fn wait_metric(pod: &Pod, wanted: &[&str]) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = pod.metrics().await.unwrap();
        if wanted.iter().all(|w| text.contains(w)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{wanted:?} not in /metrics within {TIMEOUT:?}:\n{text}\nlog:\n{}",
            pod.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Admission reviews the webhook answers without a decision and a TLS handshake that fails.
async fn provoke_webhook_errors(deployed: &Deployed, chart: &RenderedChart) {
    let https = deployed.webhook.https.unwrap();
    let host = format!("{SERVICE}.{RELEASE_NS}.svc");
    let ca = reqwest::Certificate::from_pem(chart.webhook_tls().unwrap().ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve(&host, https)
        .build()
        .unwrap();
    let body = vec![b' '; 9 << 20]; // past the chart's webhook.limits.maxBodyBytes (8Mi)
    let resp = client
        .post(format!("https://{host}:{}/validate", https.port()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let mut tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut rest)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_pass_promtool_and_carry_every_name_the_alerts_and_dashboard_read() {
    let Some(promtool) = tool("promtool", "Debian's prometheus package") else {
        return;
    };
    if !python_chart_packages() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sandbox = Sandbox::start(SandboxOptions {
        cluster: Some(ClusterConfig::fast()),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let chart = default_render().unwrap();
    let deployed = Deployed::install(&sandbox, &chart, TIMEOUT).await.unwrap();
    let admin = sandbox.client().await.unwrap();
    let root = repo_root();
    for file in ["examples/namespace.yaml", "examples/storageclasses.yaml"] {
        apply::apply_all(&admin, &apply::read_documents(&root.join(file)).unwrap())
            .await
            .unwrap();
    }
    apply_yaml(&admin, SLOW_CLASS).await;
    let dbs = db_api(&admin, DatabaseKind::Redis);
    for (name, class) in [
        ("rd-ok", "topolvm-provisioner"),
        ("rd-slow", "slow-online"),
        ("rd-fail", "slow-online"),
    ] {
        apply_yaml(&admin, &redis(name, class)).await;
        wait_ready(&dbs, name, TIMEOUT).await.unwrap();
    }

    // One succeeds, one fails its timeout, one stays in flight holding its database paused.
    let requests = ops_api(&admin, DatabaseKind::Redis);
    apply_yaml(&admin, &expansion("grow-ok", "rd-ok", "2Gi", "5m")).await;
    apply_yaml(&admin, &expansion("grow-fail", "rd-fail", "2Gi", "3s")).await;
    apply_yaml(&admin, &expansion("grow-slow", "rd-slow", "2Gi", "10m")).await;
    for (name, phase) in [("grow-ok", "Successful"), ("grow-fail", "Failed")] {
        let done = wait_final(&requests, name, TIMEOUT).await.unwrap();
        assert_eq!(
            at(&done, "/status/phase"),
            Some(phase),
            "{name}: {:#}",
            done.data["status"]
        );
    }
    // A request that would shrink the database is denied by a rule.
    let shrink = documents(&expansion("shrink", "rd-ok", "512Mi", "5m"), "shrink").unwrap();
    let denied = apply::create(&admin, &shrink[0]).await.unwrap();
    assert!(denied.is_err(), "a shrink must be denied: {denied:?}");
    provoke_webhook_errors(&deployed, &chart).await;

    let in_flight = "request_namespace=\"demo\",request=\"grow-slow\"";
    let controller = wait_metric(
        &deployed.controller,
        &[
            &format!("volops_controller_step_deadline_timestamp_seconds{{kind=\"RedisOpsRequest\",{in_flight},step=\"Expand\"}}"),
            &format!("volops_controller_database_paused_since_timestamp_seconds{{kind=\"Redis\",{in_flight},database=\"rd-slow\"}}"),
            "volops_controller_ops_phase_total{kind=\"RedisOpsRequest\",phase=\"Failed\"} 1",
            "volops_controller_leader 1",
        ],
    )
    .await;
    // The finished requests are no longer in flight.
    assert!(!controller.contains("request=\"grow-ok\""), "{controller}");
    let webhook = deployed.webhook.metrics().await.unwrap();
    for wanted in [
        "volops_webhook_certificate_expiry_timestamp_seconds ",
        "volops_webhook_admission_requests_refused_total{reason=\"too_large\"} 1",
        "volops_webhook_connections_closed_total{reason=\"handshake_failed\"}",
        "volops_webhook_admission_denials_total{",
    ] {
        assert!(webhook.contains(wanted), "{wanted} missing:\n{webhook}");
    }

    for (who, pod) in [
        ("webhook", &deployed.webhook),
        ("controller", &deployed.controller),
    ] {
        let text = scrape_text(pod).await;
        if let Err(report) = promtool_check_metrics(&promtool, &text).await {
            panic!("promtool check metrics of the {who}'s /metrics:\n{report}\n{text}");
        }
    }
    // promtool is not a rubber stamp: a counter without the _total suffix is refused.
    let broken = "# HELP volops_x A counter.\n# TYPE volops_x counter\nvolops_x 1\n";
    assert!(promtool_check_metrics(&promtool, broken).await.is_err());

    let exported: BTreeSet<String> = sample_names(&webhook)
        .union(&sample_names(&controller))
        .cloned()
        .collect();
    let with_monitoring = RenderedChart::render(
        &[
            ("metrics.prometheusRule.enabled", "true"),
            ("metrics.grafanaDashboard.enabled", "true"),
        ],
        &[],
    )
    .unwrap();
    let (alerts, dashboard) = names_the_chart_reads(&with_monitoring);
    assert!(
        alerts.len() >= 7 && dashboard.len() >= 9,
        "{alerts:?} {dashboard:?}"
    );
    for (what, names) in [("alerts", &alerts), ("dashboard", &dashboard)] {
        let unknown: Vec<_> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "the {what} read metrics the binaries do not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    drop(deployed);
    sandbox.shutdown().await.unwrap();
}

/// kubectl against a sandbox, as its admin.
struct Kubectl {
    path: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// (succeeded, stderr, stdout)
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(&self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root())
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stderr, stdout) = self.run(args).await;
        assert!(ok, "kubectl {args:?}: {stderr}");
        stdout
    }
}

const CRD: &str = "volumeexpansionpolicies.volops.dev";
/// docs/RUNBOOK.md's command.
const APPLY_CRDS: &[&str] = &[
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=volops-crds",
    "-f",
];

/// The chart's CRD as an older chart shipped it: without `spec.enforcement`.
fn older_crd() -> String {
    let path = repo_root().join("charts/volops/crds").join(format!("{CRD}.yaml"));
    let mut crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for version in crd["spec"]["versions"].as_array_mut().unwrap() {
        let spec = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert!(spec.as_object_mut().unwrap().remove("enforcement").is_some());
    }
    serde_yaml::to_string(&crd).unwrap()
}

/// docs/RUNBOOK.md, "Upgrading the CRDs": the older CRD created as `helm install` creates it
/// (a plain create), then the chart's `crds/` by server-side apply, then again (a no-op);
/// objects stored under the old version stay, the new field is served.
#[tokio::test]
async fn crds_upgrade_by_server_side_apply_over_an_older_version_and_again() {
    let Some(kubectl) = tool("kubectl", "the real client of the CRD upgrade path") else {
        return;
    };
    let h = Harness::start(HarnessOptions {
        install_crds: false,
        register_webhooks: false,
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    let k = Kubectl {
        path: kubectl,
        kubeconfig: h.kubeconfig_path().to_path_buf(),
    };
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yaml");
    std::fs::write(&old, older_crd()).unwrap();
    k.ok(&["create", "-f", &old.display().to_string()]).await;

    // A policy stored under the old CRD.
    let policy = "apiVersion: volops.dev/v1alpha1\nkind: VolumeExpansionPolicy\n\
                  metadata: {name: old-limits}\nspec: {maxSize: 10Gi}\n";
    let policy_file = dir.path().join("old-policy.yaml");
    std::fs::write(&policy_file, policy).unwrap();
    k.ok(&["apply", "--server-side", "-f", &policy_file.display().to_string()])
        .await;

    // Without --force-conflicts the fields the create (Helm's manager) set conflict.
    let unforced: Vec<&str> = APPLY_CRDS
        .iter()
        .copied()
        .filter(|a| *a != "--force-conflicts")
        .collect();
    let out = k
        .run(&[unforced.as_slice(), &["charts/volops/crds/"]].concat())
        .await;
    assert!(!out.0 && out.1.contains("conflict"), "{}", out.1);

    let crds: Api<CustomResourceDefinition> = Api::all(h.client());
    let out = k.ok(&[APPLY_CRDS, &["charts/volops/crds/"]].concat()).await;
    assert!(out.contains(&format!("{CRD} serverside-applied")), "{out}");
    let upgraded = crds.get(CRD).await.unwrap();
    let generation = upgraded.metadata.generation;
    let schema = serde_json::to_value(&upgraded.spec.versions[0].schema).unwrap();
    assert!(
        schema
            .pointer("/openAPIV3Schema/properties/spec/properties/enforcement")
            .is_some(),
        "{schema:#}"
    );

    // The new field is served (an older schema would prune it); the old object is still there.
    k.ok(&["apply", "--server-side", "-f", "examples/policy.yaml"])
        .await;
    let policies = k.ok(&["get", "volumeexpansionpolicies", "-o", "json"]).await;
    let policies: Value = serde_json::from_str(&policies).unwrap();
    let by_name = |name: &str| {
        policies["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metadata"]["name"] == name)
            .cloned()
    };
    assert_eq!(by_name("tenant-limits").unwrap()["spec"]["enforcement"], "Deny");
    assert_eq!(by_name("old-limits").unwrap()["spec"]["maxSize"], "10Gi");

    // Applying the same CRDs again changes nothing.
    k.ok(&[APPLY_CRDS, &["charts/volops/crds/"]].concat()).await;
    assert_eq!(crds.get(CRD).await.unwrap().metadata.generation, generation);
    h.shutdown().await.unwrap();
}
