//! Optional JSON snapshot of the whole store (the bin's `--state FILE`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SandboxError;
use crate::api::Api;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    resource_version: u64,
    objects: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    group: String,
    resource: String,
    object: Value,
}

pub fn save(api: &Api, path: &Path) -> Result<(), SandboxError> {
    let (rv, all) = api.store.dump();
    let snap = Snapshot {
        resource_version: rv,
        objects: all
            .into_iter()
            .map(|((group, resource), o)| Entry {
                group,
                resource,
                object: (*o).clone(),
            })
            .collect(),
    };
    let text = serde_json::to_vec(&snap).map_err(|e| SandboxError::State(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| SandboxError::Io(tmp.display().to_string(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| SandboxError::Io(path.display().to_string(), e))
}

/// Loads a snapshot if the file exists; CRDs in it are served again.
pub fn load(api: &Api, path: &Path) -> Result<(), SandboxError> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read(path).map_err(|e| SandboxError::Io(path.display().to_string(), e))?;
    let snap: Snapshot = serde_json::from_slice(&text).map_err(|e| SandboxError::State(e.to_string()))?;
    let mut reg = api.registry_mut();
    for e in &snap.objects {
        if e.group == "apiextensions.k8s.io" && e.resource == "customresourcedefinitions" {
            reg.register_crd(&e.object);
        }
    }
    drop(reg);
    api.store.load(
        snap.resource_version,
        snap.objects
            .into_iter()
            .map(|e| ((e.group, e.resource), e.object))
            .collect(),
    );
    Ok(())
}
