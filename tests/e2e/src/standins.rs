//! Stand-ins for APIs the sandbox does not serve, so a chart's objects of those kinds can be
//! stored (never enforced): RBAC as schemaless CRDs in the real group and version.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::apply::FIELD_MANAGER;
use crate::error::{Error, Result, kube_ctx};

/// (kind, plural, namespaced) of rbac.authorization.k8s.io/v1.
const RBAC: [(&str, &str, bool); 4] = [
    ("ClusterRole", "clusterroles", false),
    ("ClusterRoleBinding", "clusterrolebindings", false),
    ("Role", "roles", true),
    ("RoleBinding", "rolebindings", true),
];

/// Registers rbac.authorization.k8s.io/v1 kinds as schemaless CRDs (the sandbox has no RBAC
/// API). Objects are stored as given; nothing is authorised or denied by them.
pub async fn install_rbac(client: &kube::Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (kind, plural, namespaced) in RBAC {
        let name = format!("{plural}.rbac.authorization.k8s.io");
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name,
                         "annotations": {"api-approved.kubernetes.io": "unapproved, volops-e2e stand-in"}},
            "spec": {"group": "rbac.authorization.k8s.io",
                     "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                               "listKind": format!("{kind}List")},
                     "scope": if namespaced { "Namespaced" } else { "Cluster" },
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": true}}}]}
        });
        let crd: CustomResourceDefinition = serde_json::from_value(crd).map_err(|source| Error::Json {
            context: format!("stand-in CRD {name}"),
            source,
        })?;
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(kube_ctx(format!("registering the stand-in {name}")))?;
    }
    Ok(())
}
