//! Applying YAML (one or many documents) with server-side apply, resolving each kind
//! through discovery - what `kubectl apply --server-side` does.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiResource, Scope};

use crate::error::{Error, Result, io_ctx, kube_ctx};

/// Field manager used for every apply.
pub const FIELD_MANAGER: &str = "volops-e2e";

/// Splits `yaml` into its non-empty documents.
pub fn documents(yaml: &str, context: &str) -> Result<Vec<DynamicObject>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value =
            <serde_json::Value as serde::Deserialize>::deserialize(doc).map_err(|source| Error::Yaml {
                context: context.to_owned(),
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value).map_err(|source| Error::Json {
            context: format!("object in {context}"),
            source,
        })?;
        out.push(obj);
    }
    Ok(out)
}

/// Reads a YAML file into its documents.
pub fn read_documents(path: &Path) -> Result<Vec<DynamicObject>> {
    let text = std::fs::read_to_string(path).map_err(io_ctx(format!("reading {}", path.display())))?;
    documents(&text, &path.display().to_string())
}

/// The typed-less API of `obj`'s kind (namespace from the object, else `default`).
pub async fn api_for(
    client: &kube::Client,
    obj: &DynamicObject,
) -> Result<(Api<DynamicObject>, ApiResource)> {
    let types = obj
        .types
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("object {:?} has no apiVersion/kind", obj.metadata.name)))?;
    let (group, version) = match types.api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), types.api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &types.kind);
    // A CRD applied a moment ago may take a few milliseconds to be served.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ar, caps) = loop {
        match discovery::pinned_kind(client, &gvk).await {
            Ok(found) => break found,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, kind = %types.kind, "kind not served yet");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => {
                return Err(kube_ctx(format!(
                    "discovering {}/{}",
                    types.api_version, types.kind
                ))(e));
            }
        }
    };
    let api = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            obj.metadata.namespace.as_deref().unwrap_or("default"),
            &ar,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    Ok((api, ar))
}

fn name_of(obj: &DynamicObject) -> Result<String> {
    obj.metadata
        .name
        .clone()
        .ok_or_else(|| Error::Invalid("object without metadata.name".into()))
}

/// Server-side applies every object (force: this harness owns the fields); returns what the
/// server stored.
pub async fn apply_all(client: &kube::Client, objs: &[DynamicObject]) -> Result<Vec<DynamicObject>> {
    let mut out = Vec::with_capacity(objs.len());
    for obj in objs {
        let (api, ar) = api_for(client, obj).await?;
        let name = name_of(obj)?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let stored = api
            .patch(&name, &params, &Patch::Apply(obj))
            .await
            .map_err(kube_ctx(format!("applying {} {name}", ar.kind)))?;
        out.push(stored);
    }
    Ok(out)
}

/// Creates one object (POST; admission sees a CREATE). Returns the kube error as is, so
/// callers can inspect a denial.
pub async fn create(
    client: &kube::Client,
    obj: &DynamicObject,
) -> Result<Result<DynamicObject, kube::Error>> {
    let (api, _) = api_for(client, obj).await?;
    Ok(api.create(&PostParams::default(), obj).await)
}
