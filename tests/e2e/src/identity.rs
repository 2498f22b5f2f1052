//! Who acts in the end-to-end tests, in one place: the volops controller as the chart's
//! ServiceAccount, tenants as plain users, both through kube's impersonation headers. When the
//! sandbox enforces RBAC (issue 19), the bindings these users need are added here.

use volops_sandbox::Sandbox;

use crate::chart_config::RELEASE_NS;
use crate::error::Result;

/// The controller's ServiceAccount (release `volops`: `<fullname>-controller`).
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "volops-controller";

/// The tenant of the tests and its group.
pub const TENANT: &str = "alice";
pub const TENANT_GROUP: &str = "tenants";

/// The controller's username as the API server reports it in `userInfo`
/// (`system:serviceaccount:volops-system:volops-controller`).
pub fn controller_username() -> String {
    format!("system:serviceaccount:{RELEASE_NS}:{CONTROLLER_SERVICE_ACCOUNT}")
}

/// A client acting as the volops controller's ServiceAccount (the sandbox adds the groups
/// `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`).
pub async fn controller_client(sandbox: &Sandbox) -> Result<kube::Client> {
    Ok(sandbox.client_as(&controller_username(), &[]).await?)
}

/// A client acting as tenant `user` (group `tenants`, and `system:authenticated`).
pub async fn tenant_client(sandbox: &Sandbox, user: &str) -> Result<kube::Client> {
    Ok(sandbox.client_as(user, &[TENANT_GROUP]).await?)
}
