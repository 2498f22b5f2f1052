//! Registers the PetSet CRD (`petsets.apps.k8s.appscode.com`).

use crate::error::{Context, Error, is_code};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The PetSet CRD: namespaced, v1, status subresource, StatefulSet-shaped spec kept as is.
pub fn petset_crd() -> Result<CustomResourceDefinition, Error> {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "petsets.apps.k8s.appscode.com"},
        "spec": {
            "group": "apps.k8s.appscode.com",
            "scope": "Namespaced",
            "names": {"kind": "PetSet", "listKind": "PetSetList", "plural": "petsets", "singular": "petset"},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ]
            }]
        }
    }))
    .map_err(|e| Error::Malformed {
        what: "petset CRD".into(),
        reason: e.to_string(),
    })
}

/// Creates the PetSet CRD unless it exists.
pub async fn register_petset_crd(client: &kube::Client) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    match api.create(&PostParams::default(), &petset_crd()?).await {
        Err(e) if is_code(&e, 409) => Ok(()),
        res => res.map(|_| ()).ctx(|| "creating the PetSet CRD".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn crd_is_well_typed() {
        let crd = super::petset_crd().expect("valid");
        assert_eq!(crd.spec.names.plural, "petsets");
        assert_eq!(crd.spec.versions[0].name, "v1");
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }
}
