//! Waits driven by watches, each with a deadline.

use std::fmt::Debug;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::runtime::wait::await_condition;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Phases after which an ops request never changes again.
pub const FINAL_PHASES: [&str; 3] = ["Successful", "Failed", "Skipped"];

/// Waits until the named object exists and `cond` holds; returns it.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&K) -> bool + Send + 'static,
) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let fut = await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond));
    let err = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(Some(o))) => return Ok(o),
        Ok(Ok(None)) => "object gone".to_owned(),
        Ok(Err(e)) => format!("watch failed: {e}"),
        Err(_) => match api.get_opt(name).await {
            Ok(o) => format!("{o:?}").chars().take(2000).collect(),
            Err(e) => format!("get failed: {e}"),
        },
    };
    Err(Error::Timeout {
        what: format!("{what} ({name})"),
        after: timeout,
        last: err,
    })
}

/// A string at a JSON pointer of a dynamic object.
pub fn at<'a>(o: &'a DynamicObject, pointer: &str) -> Option<&'a str> {
    o.data.pointer(pointer).and_then(|v| v.as_str())
}

/// `status.phase` of an ops request or database.
pub fn phase(o: &DynamicObject) -> Option<&str> {
    at(o, "/status/phase")
}

/// Whether an ops request is done: a final phase and no finalizer left.
pub fn is_final(o: &DynamicObject) -> bool {
    phase(o).is_some_and(|p| FINAL_PHASES.contains(&p)) && o.finalizers().is_empty()
}

/// Waits until the ops request is done (see [`is_final`]).
pub async fn wait_final(api: &Api<DynamicObject>, name: &str, timeout: Duration) -> Result<DynamicObject> {
    wait_for(api, name, "ops request to finish", timeout, is_final).await
}

/// Waits until the database's `status.phase` is Ready.
pub async fn wait_ready(api: &Api<DynamicObject>, name: &str, timeout: Duration) -> Result<DynamicObject> {
    wait_for(api, name, "database Ready", timeout, |o| {
        phase(o) == Some("Ready")
    })
    .await
}
