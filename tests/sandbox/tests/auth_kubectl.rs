//! A real kubectl against the sandbox as a tenant (client certificate kubeconfig), as the admin
//! with `--as`, and as a ServiceAccount: `auth whoami`, `auth can-i` (resources, subresources,
//! non-resource URLs, `--list`), `create token`, and `get` allowed and forbidden.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::rbac::{self, group};
use common::{cm, kubectl, start};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Out {
    let child = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn kubectl_as_tenant_admin_and_service_account() {
    let Some(k) = kubectl() else { return };
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    rbac::namespace(&admin, "ops").await;
    Api::<ConfigMap>::namespaced(admin.clone(), "demo")
        .create(&PostParams::default(), &cm("settings"))
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    Api::<Secret>::namespaced(admin.clone(), "demo")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    rbac::role_binding(
        &admin,
        "demo",
        "tenants-view",
        "ClusterRole",
        "view",
        json!([group("tenants")]),
    )
    .await;
    rbac::create_service_account(&admin, "ops", "ctl").await;
    let dir = tempfile::tempdir().unwrap();
    let alice_kc = dir.path().join("alice");
    sb.write_user_kubeconfig("alice", &["tenants"], &alice_kc)
        .unwrap();
    let admin_kc = sb.kubeconfig_path().to_owned();

    // Who am I (a SelfSubjectReview, sent as protobuf).
    let o = run(&k, &alice_kc, &["auth", "whoami", "-o", "json"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let me: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(me["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!(["tenants", "system:authenticated"])
    );

    // can-i: yes exits 0, no exits 1.
    for (args, answer) in [
        (&["auth", "can-i", "get", "configmaps", "-n", "demo"][..], "yes"),
        (&["auth", "can-i", "list", "secrets", "-n", "demo"][..], "no"),
        (&["auth", "can-i", "delete", "configmaps", "-n", "demo"][..], "no"),
        (&["auth", "can-i", "get", "configmaps", "-n", "ops"][..], "no"),
        (
            &["auth", "can-i", "get", "pods", "--subresource=log", "-n", "demo"][..],
            "yes",
        ),
        (
            &["auth", "can-i", "get", "pods", "--subresource=exec", "-n", "demo"][..],
            "no",
        ),
        (&["auth", "can-i", "get", "/healthz"][..], "yes"),
        (&["auth", "can-i", "get", "/metrics"][..], "no"),
    ] {
        let o = run(&k, &alice_kc, args).await;
        assert_eq!(o.stdout.trim(), answer, "{args:?}: {}", o.stderr);
        assert_eq!(o.code, if answer == "yes" { 0 } else { 1 }, "{args:?}");
    }

    // can-i --list prints the rules (a SelfSubjectRulesReview).
    let o = run(&k, &alice_kc, &["auth", "can-i", "--list", "-n", "demo"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let cm_line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(cm_line.contains("[get list watch]"), "{cm_line}");
    assert!(
        o.stdout.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("secrets "), "{}", o.stdout);

    // get: allowed, and forbidden with kube's message.
    let o = run(&k, &alice_kc, &["get", "configmaps", "-n", "demo"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("settings"), "{}", o.stdout);
    let o = run(&k, &alice_kc, &["get", "secrets", "-n", "demo"]).await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(
            r#"Error from server (Forbidden): secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "demo""#
        ),
        "{}",
        o.stderr
    );
    // A tenant cannot impersonate.
    let o = run(&k, &alice_kc, &["get", "configmaps", "-n", "demo", "--as", "bob"]).await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(
            r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#
        ),
        "{}",
        o.stderr
    );

    // The admin asks on alice's behalf with --as/--as-group.
    let o = run(
        &k,
        &admin_kc,
        &[
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            "demo",
            "--as",
            "alice",
            "--as-group",
            "tenants",
        ],
    )
    .await;
    assert_eq!((o.stdout.trim(), o.code), ("yes", 0), "{}", o.stderr);
    let o = run(
        &k,
        &admin_kc,
        &[
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            "demo",
            "--as",
            "alice",
        ],
    )
    .await;
    assert_eq!((o.stdout.trim(), o.code), ("no", 1), "{}", o.stderr);

    // create token (a TokenRequest, sent as protobuf) and use it.
    let o = run(&k, &admin_kc, &["create", "token", "ctl", "-n", "ops"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let token = o.stdout.trim().to_owned();
    let o = run(
        &k,
        &admin_kc,
        &["--token", &token, "auth", "whoami", "-o", "json"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let me: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:ops:ctl"
    );
    let o = run(
        &k,
        &admin_kc,
        &["create", "token", "ctl", "-n", "ops", "--duration", "1m"],
    )
    .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds"
        ),
        "{}",
        o.stderr
    );
    let o = run(&k, &admin_kc, &["create", "token", "nope", "-n", "ops"]).await;
    assert!(
        o.stderr.contains(r#"serviceaccounts "nope" not found"#),
        "{}",
        o.stderr
    );

    // A pod's mounted token, handed over as a kubeconfig.
    let mount = dir.path().join("sa");
    let sa_kc = sb
        .mount_service_account_token("ops", "ctl", &mount)
        .await
        .unwrap();
    let o = run(&k, &sa_kc, &["auth", "can-i", "list", "pods", "-n", "ops"]).await;
    assert_eq!((o.stdout.trim(), o.code), ("no", 1), "{}", o.stderr);
    let o = run(&k, &sa_kc, &["get", "pods", "-n", "ops"]).await;
    assert!(
        o.stderr.contains(
            r#"pods is forbidden: User "system:serviceaccount:ops:ctl" cannot list resource "pods" in API group "" in the namespace "ops""#
        ),
        "{}",
        o.stderr
    );
}
