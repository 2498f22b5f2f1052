//! kubectl against `volops-sandbox serve`: apply (client- and server-side), get with printer
//! columns, -o yaml, -w, patch, delete, describe, api-resources, and a webhook denial.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{kubectl, webhook};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

async fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_volops-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-cluster",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists() {
        assert!(tokio::time::Instant::now() < deadline, "sandbox did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        child,
        kubeconfig,
        _dir: dir,
    }
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(kubectl: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(kubectl);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut s = child.stdin.take().unwrap();
        s.write_all(text.as_bytes()).await.unwrap();
        drop(s);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Mode, type: string, jsonPath: .spec.mode}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string}
              mode: {type: string, enum: [Online, Offline], default: Online}
"#;

#[tokio::test]
async fn kubectl_end_to_end() {
    let Some(k) = kubectl() else { return };
    let mut srv = serve().await;
    let kc = srv.kubeconfig.clone();
    let sh = |args: &'static [&'static str]| {
        let k = k.clone();
        let kc = kc.clone();
        async move { run(&k, &kc, args, None).await }
    };

    // Client-side apply of a CRD, a custom resource and a configmap.
    let o = run(&k, &kc, &["apply", "-f", "-"], Some(CRD)).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{}",
        o.stdout
    );
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1Gi}\n";
    let o = run(&k, &kc, &["apply", "-f", "-"], Some(widget)).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stdout.contains("widget.example.com/w1 created"), "{}", o.stdout);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1}\ndata: {k: one}\n";
    assert!(run(&k, &kc, &["apply", "-f", "-"], Some(cm)).await.ok);
    let o = run(&k, &kc, &["apply", "-f", "-"], Some(&cm.replace("one", "two"))).await;
    assert!(
        o.stdout.contains("configmap/c1 configured"),
        "{} {}",
        o.stdout,
        o.stderr
    );

    // Server-side apply.
    let o = run(
        &k,
        &kc,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&cm.replace("one", "three")),
    )
    .await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout.contains("configmap/c1 serverside-applied"),
        "{}",
        o.stdout
    );

    // get shows the printer columns (by short name too).
    let o = sh(&["get", "wd"]).await;
    assert!(o.ok, "{}", o.stderr);
    let mut lines = o.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "SIZE", "MODE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, vec!["w1", "1Gi", "Online"]);

    let o = sh(&["get", "configmap", "c1", "-o", "yaml"]).await;
    assert!(o.stdout.contains("k: three"), "{}", o.stdout);
    assert!(o.stdout.contains("resourceVersion:"), "{}", o.stdout);

    // get -w prints a change.
    let mut watch = Command::new(&k)
        .args([
            "get",
            "configmap",
            "c1",
            "-w",
            "-o",
            "jsonpath={.data.k}{\"\\n\"}",
        ])
        .env("KUBECONFIG", &kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), reader.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("three"));
    let o = sh(&[
        "patch",
        "configmap",
        "c1",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"k":"four"}}"#,
    ])
    .await;
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stdout.contains("configmap/c1 patched"), "{}", o.stdout);
    let next = tokio::time::timeout(Duration::from_secs(20), reader.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.as_deref(), Some("four"));
    let _ = watch.kill().await;

    let o = sh(&["describe", "widget", "w1"]).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout.contains("Name:") && o.stdout.contains("w1"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("Size:") && o.stdout.contains("1Gi"),
        "{}",
        o.stdout
    );

    let o = sh(&["api-resources"]).await;
    assert!(o.ok, "{}", o.stderr);
    let widgets = o
        .stdout
        .lines()
        .find(|l| l.starts_with("widgets"))
        .expect("widgets listed");
    let cols: Vec<&str> = widgets.split_whitespace().collect();
    assert_eq!(cols, vec!["widgets", "wd", "example.com/v1", "true", "Widget"]);
    assert!(
        o.stdout.lines().any(|l| l.starts_with("statefulsets ")),
        "{}",
        o.stdout
    );

    // Schema errors look like kube-apiserver's.
    let o = run(
        &k,
        &kc,
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {mode: Online}\n"),
    )
    .await;
    assert!(!o.ok);
    assert!(
        o.stderr
            .contains("The Widget \"bad\" is invalid: spec.size: Required value"),
        "{}",
        o.stderr
    );

    let o = sh(&["delete", "widget", "w1"]).await;
    assert!(
        o.stdout.contains("widget.example.com \"w1\" deleted"),
        "{} {}",
        o.stdout,
        o.stderr
    );
    let o = sh(&["get", "widget", "w1"]).await;
    assert!(!o.ok);
    assert!(
        o.stderr
            .contains("Error from server (NotFound): widgets.example.com \"w1\" not found"),
        "{}",
        o.stderr
    );

    // A denial from a webhook reads as on a real cluster.
    let hook = webhook::start(&["localhost"]).await;
    let (_, v) = webhook::configs(&hook);
    let o = run(&k, &kc, &["apply", "-f", "-"], Some(&v.to_string())).await;
    assert!(o.ok, "{}", o.stderr);
    let denied = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nope}\ndata: {deny: \"yes\"}\n";
    let o = run(&k, &kc, &["create", "-f", "-"], Some(denied)).await;
    assert!(!o.ok);
    assert_eq!(
        o.stderr.trim(),
        "Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"deny.volops.test\" denied the request: objects with data.deny are not allowed"
    );
    let o = run(&k, &kc, &["apply", "-f", "-"], Some(&cm.replace("three", "five"))).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stderr.contains("Warning: checked by the test webhook"),
        "{}",
        o.stderr
    );

    srv.child.kill().await.unwrap();
}
