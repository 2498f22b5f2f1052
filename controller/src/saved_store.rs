//! Reads and writes the saved-state Secrets (see `saved`) in the controller's own namespace
//! (`Config::state_namespace`). Every write is guarded by the resourceVersion read.

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};

use crate::{
    context::Ctx,
    error::{Error, KubeContext, Result},
    saved::{COMPONENT, SavedState, secret_name},
};

/// A saved state and the version of its Secret (None until it is created).
#[derive(Clone, Debug)]
pub struct Stored {
    pub state: SavedState,
    resource_version: Option<String>,
}

impl Stored {
    /// A state not written yet.
    pub fn new(state: SavedState) -> Self {
        Self {
            state,
            resource_version: None,
        }
    }

    fn read(secret: &Secret) -> Result<Self> {
        let state = SavedState::from_secret(secret).map_err(|source| Error::Saved {
            key: secret.name_any(),
            source,
        })?;
        Ok(Self {
            state,
            resource_version: secret.resource_version(),
        })
    }
}

fn api(ctx: &Ctx) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), &ctx.config.state_namespace)
}

/// The state saved for the request with this UID, if any.
pub async fn load(ctx: &Ctx, request_uid: &str) -> Result<Option<Stored>> {
    let name = secret_name(request_uid);
    let secret = api(ctx)
        .get_opt(&name)
        .await
        .during(|| format!("get saved state {}/{name}", ctx.config.state_namespace))?;
    secret.as_ref().map(Stored::read).transpose()
}

/// Writes the state: creates its Secret, or replaces it at the version read.
pub async fn save(ctx: &Ctx, stored: &mut Stored) -> Result<()> {
    let mut secret = stored
        .state
        .to_secret(&ctx.config.state_namespace)
        .map_err(|source| Error::Saved {
            key: secret_name(&stored.state.request.uid),
            source,
        })?;
    let name = secret.name_any();
    let api = api(ctx);
    let written = match &stored.resource_version {
        None => api
            .create(&PostParams::default(), &secret)
            .await
            .during(|| format!("save state {}/{name}", ctx.config.state_namespace))?,
        Some(rv) => {
            secret.metadata.resource_version = Some(rv.clone());
            api.replace(&name, &PostParams::default(), &secret)
                .await
                .during(|| format!("save state {}/{name}", ctx.config.state_namespace))?
        }
    };
    stored.resource_version = written.resource_version();
    Ok(())
}

/// Deletes the request's saved state (gone already is fine).
pub async fn delete(ctx: &Ctx, request_uid: &str) -> Result<()> {
    let name = secret_name(request_uid);
    match api(ctx).delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if crate::error::code_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(e).during(|| format!("delete saved state {}/{name}", ctx.config.state_namespace)),
    }
}

/// Every saved state matching `selector` (besides the component's own label); one that
/// cannot be read is returned as its error.
pub async fn list(ctx: &Ctx, selector: Option<&str>) -> Result<Vec<Result<Stored>>> {
    let mut labels = format!("app.kubernetes.io/component={COMPONENT}");
    if let Some(s) = selector {
        labels.push(',');
        labels.push_str(s);
    }
    let list = api(ctx)
        .list(&ListParams::default().labels(&labels))
        .await
        .during(|| format!("list saved states in {}", ctx.config.state_namespace))?;
    Ok(list.items.iter().map(Stored::read).collect())
}
