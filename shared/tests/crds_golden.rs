//! The committed CRDs under charts/volops/crds/ must be what `volops-crdgen` generates.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::PathBuf;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/volops/crds")
}

#[test]
fn committed_kubedb_template_matches_the_generator() {
    let path = crds_dir().join("..").join(volops_shared::crd::KUBEDB_TEMPLATE);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}); run `make crds`", path.display()));
    assert!(
        committed == volops_shared::crd::kubedb_template().expect("template"),
        "{} differs from volops-crdgen output; run `make crds`",
        path.display()
    );
}

#[test]
fn redis_is_served_as_v1_and_v1alpha2_and_stored_as_v1() {
    let crds = volops_shared::crd::kubedb().expect("CRDs build");
    let redis = crds
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("redises.kubedb.com"))
        .expect("redis");
    let versions: Vec<(&str, bool, bool)> = redis
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(versions, [("v1", true, true), ("v1alpha2", true, false)]);
    for crd in &crds {
        assert!(
            crd.spec.conversion.is_none(),
            "KubeDB's CRDs declare no conversion"
        );
        assert_eq!(
            crd.spec.names.list_kind.as_deref(),
            Some(format!("{}List", crd.spec.names.kind).as_str())
        );
    }
}

#[test]
fn ops_request_crds_keep_sections_volops_does_not_model() {
    for crd in volops_shared::crd::kubedb().expect("CRDs build") {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if !name.ends_with(".ops.kubedb.com") {
            continue;
        }
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true, "{name}");
        let db_ref = &spec["properties"]["databaseRef"];
        assert_eq!(db_ref["x-kubernetes-preserve-unknown-fields"], true, "{name}");
        assert!(
            db_ref.get("required").is_none(),
            "{name}: KubeDB's name is optional"
        );
    }
}

#[test]
fn committed_crds_match_the_generator() {
    let crds = volops_shared::crd::own();
    let mut expected_files: Vec<String> = crds.iter().map(volops_shared::crd::file_name).collect();
    for crd in &crds {
        let path = crds_dir().join(volops_shared::crd::file_name(crd));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}); run `make crds`", path.display()));
        let generated = volops_shared::crd::to_yaml(crd).expect("yaml");
        assert!(
            committed == generated,
            "{} differs from volops-crdgen output; run `make crds`",
            path.display()
        );
    }
    let mut present: Vec<String> = std::fs::read_dir(crds_dir())
        .expect("crds dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "stale or unexpected files in charts/volops/crds/"
    );
}

#[test]
fn ops_request_crds_carry_the_printer_columns_and_defaults() {
    for crd in volops_shared::crd::all().expect("CRDs build") {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if !name.ends_with(".ops.kubedb.com") {
            continue;
        }
        let version = &crd.spec.versions[0];
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Type", "Database", "Size", "Mode", "Status", "Age"],
            "{name}"
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} has /status"
        );
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .unwrap();
        let spec = &schema["properties"]["spec"];
        assert_eq!(spec["properties"]["apply"]["default"], "IfReady", "{name}");
        assert_eq!(spec["properties"]["maxRetries"]["default"], 1, "{name}");
        // KubeDB's schema: volops's own defaults (timeout, mode) are filled when a request is
        // read, not by the API server (spec.timeout is every ops type's).
        assert!(spec["properties"]["timeout"].get("default").is_none(), "{name}");
        let expansion = &spec["properties"]["volumeExpansion"];
        assert!(expansion["properties"]["mode"].get("default").is_none(), "{name}");
        assert_eq!(expansion["required"], serde_json::json!(["mode"]), "{name}");
        assert_eq!(
            spec["required"],
            serde_json::json!(["databaseRef", "type"]),
            "{name}"
        );
    }
}

#[test]
fn database_crds_preserve_unknown_fields() {
    for crd in volops_shared::crd::all().expect("CRDs build") {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if !name.ends_with(".kubedb.com") || name.contains(".ops.") {
            continue;
        }
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let root = &schema["openAPIV3Schema"]["properties"];
        assert_eq!(
            root["spec"]["x-kubernetes-preserve-unknown-fields"], true,
            "{name}"
        );
        assert_eq!(
            root["status"]["x-kubernetes-preserve-unknown-fields"], true,
            "{name}"
        );
    }
}

/// KubeDB's real CRD `file` from ../shared/kubedb/crds: required in CI, `None` elsewhere.
fn kubedbs_crd(file: &str) -> Option<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/kubedb/crds")
        .join(file);
    if !path.is_file() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is required in CI",
            path.display()
        );
        eprintln!("SKIPPED: {} is absent", path.display());
        return None;
    }
    Some(serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
}

/// Every field `theirs` stores is stored by `ours` with the same type, enum and default: typed
/// the same, or kept by an object that preserves unknown fields.
fn keeps_every_field(
    theirs: &serde_json::Value,
    ours: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    if ours["x-kubernetes-preserve-unknown-fields"] == true && ours.get("properties").is_none() {
        return;
    }
    for key in ["type", "enum", "default", "x-kubernetes-int-or-string"] {
        if theirs.get(key).is_some() && theirs.get(key) != ours.get(key) {
            out.push(format!("{path}: {key} {} is {}", theirs[key], ours[key]));
        }
    }
    if let Some(props) = theirs.get("properties").and_then(|p| p.as_object()) {
        for (name, prop) in props {
            match ours.pointer(&format!("/properties/{name}")) {
                Some(mine) => keeps_every_field(prop, mine, &format!("{path}.{name}"), out),
                None if ours["x-kubernetes-preserve-unknown-fields"] == true => {}
                None => out.push(format!("{path}.{name} would be pruned")),
            }
        }
    }
    if let Some(items) = theirs.get("items") {
        keeps_every_field(items, &ours["items"], &format!("{path}[]"), out);
    }
}

/// The autoscaler CRDs keep every field of KubeDB's (ZooKeeper's before and after KubeDB removed
/// its storage section), with KubeDB's names, scope, versions and status subresource.
#[test]
fn autoscaler_crds_keep_every_field_of_kubedbs() {
    let crds = volops_shared::crd::kubedb().expect("CRDs build");
    let cases = [
        (
            "redisautoscalers.autoscaling.kubedb.com",
            "autoscaling.kubedb.com_redisautoscalers.yaml",
        ),
        (
            "zookeeperautoscalers.autoscaling.kubedb.com",
            "autoscaling.kubedb.com_zookeeperautoscalers.yaml",
        ),
        (
            "zookeeperautoscalers.autoscaling.kubedb.com",
            "autoscaling.kubedb.com_zookeeperautoscalers.before-2026-05.yaml",
        ),
    ];
    for (name, file) in cases {
        let Some(theirs) = kubedbs_crd(file) else { return };
        let ours = crds
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .expect(name);
        let ours = serde_json::to_value(ours).unwrap();
        for key in ["group", "scope", "names"] {
            assert_eq!(ours["spec"][key], theirs["spec"][key], "{file}: {key}");
        }
        let (theirs_v, ours_v) = (&theirs["spec"]["versions"][0], &ours["spec"]["versions"][0]);
        for key in ["name", "served", "storage", "subresources"] {
            assert_eq!(ours_v[key], theirs_v[key], "{file}: {key}");
        }
        let mut lost = Vec::new();
        keeps_every_field(
            &theirs_v["schema"]["openAPIV3Schema"],
            &ours_v["schema"]["openAPIV3Schema"],
            "",
            &mut lost,
        );
        assert!(lost.is_empty(), "{file}: {lost:#?}");
    }
    // The check can fail: a schema that types a field differently or drops one is caught.
    let theirs = serde_json::json!({"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    let ours = serde_json::json!({"properties": {"a": {"type": "integer"}}});
    let mut lost = Vec::new();
    keeps_every_field(&theirs, &ours, "", &mut lost);
    assert_eq!(lost, [".a: type \"string\" is \"integer\"", ".b would be pruned"]);
}
