//! Every kubectl command README.md, docs/ and KubeDB's volume expansion guides use, run with the
//! real kubectl against the sandbox (kubectl sends built-in kinds as protobuf): create ns,
//! configmap (literal and file) and secret; get as tables, -o wide/yaml/json; apply client-side
//! and server-side; label, annotate; patch json/merge/strategic; edit; describe and events of a
//! RedisOpsRequest whose events the controller's kube-rs Recorder wrote through events.k8s.io/v1;
//! delete. Each effect is checked through kube-rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{kubectl, start, status};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tokio::process::Command;

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

struct Out {
    stdout: String,
    stderr: String,
}

impl Kubectl {
    /// Runs kubectl; panics unless it succeeds.
    async fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None, &[]).await.stdout
    }

    async fn ok_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &Path)]) -> Out {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut s = child.stdin.take().unwrap();
            s.write_all(text.as_bytes()).await.unwrap();
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl timed out")
            .unwrap();
        let o = Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            o.stderr,
            o.stdout
        );
        o
    }
}

/// The columns of the row of `table` whose first column is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

fn header(table: &str) -> Vec<&str> {
    table.lines().next().unwrap_or("").split_whitespace().collect()
}

/// A file of KubeDB's CRDs and docs: `shared/kubedb` beside the repository (the nearest one
/// above this package, so worktrees find it too).
fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/kubedb"))
        .find(|d| d.is_dir())
        .expect("shared/kubedb beside the repository")
        .join(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_commands_of_the_docs_work_against_the_sandbox() {
    let Some(bin) = kubectl() else { return };
    let (sb, client) = start().await;
    let k = Kubectl {
        bin,
        kubeconfig: sb.kubeconfig_path().to_path_buf(),
        dir: tempfile::tempdir().unwrap(),
    };

    // create: namespace, configmaps from literals and a file, a secret (all sent as protobuf).
    assert_eq!(
        k.ok(&["create", "ns", "demo"]).await.trim(),
        "namespace/demo created"
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    assert_eq!(
        nss.get("demo").await.unwrap().status.unwrap().phase.as_deref(),
        Some("Active")
    );
    let settings = k.dir.path().join("settings.conf");
    std::fs::write(&settings, "maxmemory 2gb\n").unwrap();
    let from_file = format!("--from-file={}", settings.display());
    let out = k
        .ok(&[
            "create",
            "configmap",
            "app-config",
            "-n",
            "demo",
            "--from-literal=mode=online",
            &from_file,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/app-config created");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let data = cms.get("app-config").await.unwrap().data.unwrap();
    assert_eq!(data["mode"], "online");
    assert_eq!(data["settings.conf"], "maxmemory 2gb\n");
    let out = k
        .ok(&[
            "create",
            "secret",
            "generic",
            "db-auth",
            "-n",
            "demo",
            "--from-literal=password=s3cret",
        ])
        .await;
    assert_eq!(out.trim(), "secret/db-auth created");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "demo");
    let secret = secrets.get("db-auth").await.unwrap();
    assert_eq!(secret.data.unwrap()["password"].0, b"s3cret");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let with_strings =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: demo}\nstringData: {user: admin}\n";
    let o = k.ok_with(&["apply", "-f", "-"], Some(with_strings), &[]).await;
    assert_eq!(o.stdout.trim(), "secret/tls created");
    let tls = secrets.get("tls").await.unwrap();
    assert_eq!(tls.data.unwrap()["user"].0, b"admin");
    assert!(tls.string_data.is_none(), "stringData is write-only");

    // get: tables, -o wide, -o json, -o yaml.
    let t = k.ok(&["get", "configmap", "-n", "demo"]).await;
    assert_eq!(header(&t), ["NAME", "DATA", "AGE"]);
    assert_eq!(row(&t, "app-config")[1], "2");
    let t = k
        .ok(&["get", "secret", "db-auth", "-n", "demo", "-o", "wide"])
        .await;
    assert_eq!(header(&t), ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(row(&t, "db-auth")[1..3], ["Opaque", "1"]);
    let t = k.ok(&["get", "ns", "demo"]).await;
    assert_eq!(row(&t, "demo")[1], "Active");
    let j: Value = serde_json::from_str(
        &k.ok(&["get", "configmap", "app-config", "-n", "demo", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(j["data"]["mode"], "online");
    let y = k
        .ok(&["get", "secret", "db-auth", "-n", "demo", "-o", "yaml"])
        .await;
    assert!(y.contains("password: czNjcmV0"), "{y}");

    // apply: client-side create, then configure; server-side apply.
    let web = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: demo}\ndata: {k: one}\n";
    let o = k.ok_with(&["apply", "-f", "-"], Some(web), &[]).await;
    assert_eq!(o.stdout.trim(), "configmap/web created");
    let o = k
        .ok_with(&["apply", "-f", "-"], Some(&web.replace("one", "two")), &[])
        .await;
    assert_eq!(o.stdout.trim(), "configmap/web configured");
    assert_eq!(cms.get("web").await.unwrap().data.unwrap()["k"], "two");
    let o = k
        .ok_with(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&web.replace("one", "three")),
            &[],
        )
        .await;
    assert_eq!(o.stdout.trim(), "configmap/web serverside-applied");
    let applied = cms.get("web").await.unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["k"], "three");
    assert!(
        applied
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("kubectl") && m.operation.as_deref() == Some("Apply")),
        "{:?}",
        applied.managed_fields()
    );

    // label, annotate, patch (three kinds), edit.
    assert_eq!(
        k.ok(&["label", "configmap", "app-config", "-n", "demo", "tier=db"])
            .await
            .trim(),
        "configmap/app-config labeled"
    );
    assert_eq!(
        k.ok(&["annotate", "configmap", "app-config", "-n", "demo", "note=hello"])
            .await
            .trim(),
        "configmap/app-config annotated"
    );
    let patches = [
        ("json", r#"[{"op":"add","path":"/data/json","value":"1"}]"#),
        ("merge", r#"{"data":{"merge":"2"}}"#),
        ("strategic", r#"{"data":{"strategic":"3"}}"#),
    ];
    for (ty, p) in patches {
        let out = k
            .ok(&[
                "patch",
                "configmap",
                "app-config",
                "-n",
                "demo",
                "--type",
                ty,
                "-p",
                p,
            ])
            .await;
        assert_eq!(out.trim(), "configmap/app-config patched", "{ty}");
    }
    let editor = k.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/mode: online/mode: offline/' \"$1\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = k
        .ok_with(
            &["edit", "configmap", "app-config", "-n", "demo"],
            None,
            &[("KUBE_EDITOR", &editor)],
        )
        .await;
    assert_eq!(o.stdout.trim(), "configmap/app-config edited");
    let cm = cms.get("app-config").await.unwrap();
    let data = cm.data.as_ref().unwrap();
    assert_eq!(
        (
            data["mode"].as_str(),
            data["json"].as_str(),
            data["merge"].as_str(),
            data["strategic"].as_str()
        ),
        ("offline", "1", "2", "3")
    );
    assert_eq!(cm.labels()["tier"], "db");
    assert_eq!(cm.annotations()["note"], "hello");
    let d = k.ok(&["describe", "configmap", "app-config", "-n", "demo"]).await;
    assert!(d.contains("tier=db") && d.contains("offline"), "{d}");

    // KubeDB's guide: the ops request CRD and the docs' RedisOpsRequest, then the controller's
    // events (kube-rs Recorder, events.k8s.io/v1) as describe and events show them.
    let crd = shared("crds/ops.kubedb.com_redisopsrequests.yaml");
    let out = k
        .ok(&["apply", "--server-side", "-f", crd.to_str().unwrap()])
        .await;
    assert!(
        out.contains("redisopsrequests.ops.kubedb.com serverside-applied"),
        "{out}"
    );
    let ops = shared("docs-examples/redis_online-vol-expansion.yaml");
    let out = k.ok(&["apply", "-f", ops.to_str().unwrap()]).await;
    assert_eq!(
        out.trim(),
        "redisopsrequest.ops.kubedb.com/rd-online-volume-expansion created"
    );
    let ar = ApiResource {
        group: "ops.kubedb.com".into(),
        version: "v1alpha1".into(),
        api_version: "ops.kubedb.com/v1alpha1".into(),
        kind: "RedisOpsRequest".into(),
        plural: "redisopsrequests".into(),
    };
    let ops_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "demo", &ar);
    let req = ops_api.get("rd-online-volume-expansion").await.unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "volops-controller".into(),
            instance: Some("volops-controller-0".into()),
        },
    );
    for (reason, note) in [
        ("Starting", "Pausing Redis demo/sample-redis"),
        ("UpdatePVCs", "resized data-sample-redis-0 to 2Gi"),
    ] {
        let ev = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "VolumeExpansion".into(),
            secondary: None,
        };
        recorder.publish(&ev, &req.object_ref(&ar)).await.unwrap();
    }
    let d = k
        .ok(&[
            "describe",
            "redisopsrequest",
            "rd-online-volume-expansion",
            "-n",
            "demo",
        ])
        .await;
    let events = d
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events in:\n{d}"));
    let starting = row(events.trim_start_matches(['\n', ' ']), "Normal");
    assert_eq!(starting[1], "Starting", "{events}");
    assert!(
        events.contains("volops-controller") && events.contains("resized data-sample-redis-0 to 2Gi"),
        "{events}"
    );
    let ev = k
        .ok(&[
            "events",
            "-n",
            "demo",
            "--for",
            "redisopsrequest/rd-online-volume-expansion",
        ])
        .await;
    assert_eq!(
        header(&ev),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        ev.contains("UpdatePVCs") && ev.contains("RedisOpsRequest/rd-online-volume-expansion"),
        "{ev}"
    );
    let t = k.ok(&["get", "events", "-n", "demo"]).await;
    assert!(
        t.contains("redisopsrequest/rd-online-volume-expansion   Pausing Redis demo/sample-redis"),
        "{t}"
    );
    let t = k.ok(&["get", "redisopsrequest", "-n", "demo"]).await;
    assert_eq!(row(&t, "rd-online-volume-expansion")[1], "VolumeExpansion", "{t}");

    // delete.
    assert_eq!(
        k.ok(&["delete", "configmap", "web", "-n", "demo"]).await.trim(),
        "configmap \"web\" deleted"
    );
    assert_eq!(status(cms.get("web").await).0, 404);
    assert_eq!(
        k.ok(&["delete", "ns", "demo"]).await.trim(),
        "namespace \"demo\" deleted"
    );
    assert_eq!(status(cms.get("app-config").await).0, 404);
}
