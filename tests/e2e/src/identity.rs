//! Who acts in the end-to-end tests, in one place: the webhook and the controller as the
//! chart's ServiceAccounts, holding exactly the chart's RBAC (the harness applies it), and
//! tenants as plain users bound to Kubernetes' `edit` role in their namespaces, which the
//! chart's tenant roles extend by aggregation (docs/SECURITY.md).

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use volops_sandbox::Sandbox;

use crate::apply::FIELD_MANAGER;
use crate::chart_config::RELEASE_NS;
use crate::error::{Result, kube_ctx};

/// The ServiceAccounts of release `volops` (`<fullname>-controller`, `<fullname>-webhook`).
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "volops-controller";
pub const WEBHOOK_SERVICE_ACCOUNT: &str = "volops-webhook";

/// The tenant of the tests and its group.
pub const TENANT: &str = "alice";
pub const TENANT_GROUP: &str = "tenants";

/// The controller's username as the API server reports it in `userInfo`
/// (`system:serviceaccount:volops-system:volops-controller`).
pub fn controller_username() -> String {
    service_account_username(CONTROLLER_SERVICE_ACCOUNT)
}

/// The webhook's username (`system:serviceaccount:volops-system:volops-webhook`).
pub fn webhook_username() -> String {
    service_account_username(WEBHOOK_SERVICE_ACCOUNT)
}

fn service_account_username(name: &str) -> String {
    format!("system:serviceaccount:{RELEASE_NS}:{name}")
}

/// A client acting as the volops controller's ServiceAccount (the sandbox adds the groups
/// `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`).
pub async fn controller_client(sandbox: &Sandbox) -> Result<kube::Client> {
    Ok(sandbox.client_as(&controller_username(), &[]).await?)
}

/// A client acting as the webhook's ServiceAccount.
pub async fn webhook_client(sandbox: &Sandbox) -> Result<kube::Client> {
    Ok(sandbox.client_as(&webhook_username(), &[]).await?)
}

/// A client acting as tenant `user` (group `tenants`, and `system:authenticated`).
pub async fn tenant_client(sandbox: &Sandbox, user: &str) -> Result<kube::Client> {
    Ok(sandbox.client_as(user, &[TENANT_GROUP]).await?)
}

/// Grants `user` Kubernetes' `edit` role in `ns`: what a platform team gives a tenant
/// (`kubectl create rolebinding <user>-edit --clusterrole=edit --user=<user> -n <ns>`).
pub async fn grant_edit(admin: &kube::Client, ns: &str, user: &str) -> Result<()> {
    let binding: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": format!("{user}-edit"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .map_err(|source| crate::Error::Json {
        context: "RoleBinding".into(),
        source,
    })?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::RoleBinding>(&()),
    );
    api.patch(
        &format!("{user}-edit"),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&binding),
    )
    .await
    .map_err(kube_ctx(format!("binding {user} to edit in {ns}")))?;
    Ok(())
}
