//! Invalid requests the webhook must deny, with the message a user sees.

use kube::api::{Patch, PatchParams};
use serde_json::json;
use volops_shared::DatabaseKind;

use crate::Harness;
use crate::apply;
use crate::chart_config::{VALIDATE_DBS, VALIDATE_OPS};
use crate::error::Result;

/// One attempted invalid change and what came back.
#[derive(Clone, Debug)]
pub struct Denial {
    pub what: String,
    /// The webhook expected to deny it.
    pub webhook: &'static str,
    /// A part of the message the webhook must give.
    pub expected: String,
    /// The API server's message, if the change was refused.
    pub message: Option<String>,
}

impl Denial {
    /// Refused by the expected webhook with the expected message.
    pub fn seen(&self) -> bool {
        self.message.as_deref().is_some_and(|m| {
            m.contains(&format!(
                "admission webhook \"{}\" denied the request",
                self.webhook
            )) && m.contains(&self.expected)
        })
    }
}

fn refused(result: std::result::Result<impl Sized, kube::Error>) -> Option<String> {
    match result {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(status.message.clone()),
        Err(e) => Some(e.to_string()),
    }
}

/// Asks to shrink the Redis `db` in `ns` (from `current`) two ways: with an ops request and
/// by editing the database directly.
pub async fn try_shrinks(h: &Harness, ns: &str, db: &str, current: &str) -> Result<Vec<Denial>> {
    let request = apply::documents(
        &format!(
            "apiVersion: ops.kubedb.com/v1alpha1\nkind: RedisOpsRequest\nmetadata:\n  name: {db}-shrink\n  \
             namespace: {ns}\nspec:\n  type: VolumeExpansion\n  databaseRef:\n    name: {db}\n  \
             volumeExpansion:\n    mode: Online\n    redis: 512Mi\n"
        ),
        "shrink request",
    )?;
    let mut out = Vec::new();
    for obj in &request {
        out.push(Denial {
            what: format!("RedisOpsRequest {db}-shrink asks for 512Mi"),
            webhook: VALIDATE_OPS,
            expected: format!("desired storage 512Mi must be greater than the current {current}"),
            message: refused(apply::create(&h.client(), obj).await?),
        });
    }
    let patch = json!({"spec": {"storage": {"resources": {"requests": {"storage": "512Mi"}}}}});
    let edited = h
        .databases(DatabaseKind::Redis, ns)
        .patch(db, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    out.push(Denial {
        what: format!("kubectl edit redis {db}: storage 512Mi"),
        webhook: VALIDATE_DBS,
        expected: format!("cannot shrink from {current} to 512Mi"),
        message: refused(edited),
    });
    Ok(out)
}
