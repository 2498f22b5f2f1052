//! One small trait over the two ops-request kinds so every step is written once.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};
use volops_shared::{
    DatabaseKind,
    api::{
        ApplyPolicy, OpsRequestStatus, RedisOpsRequest, VolumeExpansionMode, ZooKeeperOpsRequest,
        ops::VOLUME_EXPANSION,
    },
};

/// What the controller needs from an ops request, whatever its kind.
pub trait OpsRequest:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: DatabaseKind;
    fn spec_type(&self) -> &str;
    fn database(&self) -> &str;
    /// The requested size as written, if any.
    fn target_text(&self) -> Option<&str>;
    fn mode(&self) -> VolumeExpansionMode;
    fn timeout(&self) -> Option<&str>;
    fn apply_policy(&self) -> ApplyPolicy;
    fn max_retries(&self) -> i32;
    fn status(&self) -> Option<&OpsRequestStatus>;

    fn is_volume_expansion(&self) -> bool {
        self.spec_type() == VOLUME_EXPANSION
    }
}

/// The two ops-request kinds differ only in their kind and the field that carries the size.
macro_rules! ops_request {
    ($ty:ty, $kind:expr, $size:ident) => {
        impl OpsRequest for $ty {
            const KIND: DatabaseKind = $kind;
            fn spec_type(&self) -> &str {
                &self.spec.type_
            }
            fn database(&self) -> &str {
                &self.spec.database_ref.name
            }
            fn target_text(&self) -> Option<&str> {
                self.spec
                    .volume_expansion
                    .as_ref()?
                    .$size
                    .as_ref()
                    .map(|q| q.0.as_str())
            }
            fn mode(&self) -> VolumeExpansionMode {
                self.spec
                    .volume_expansion
                    .as_ref()
                    .map(|v| v.mode)
                    .unwrap_or_default()
            }
            fn timeout(&self) -> Option<&str> {
                self.spec.timeout.as_deref()
            }
            fn apply_policy(&self) -> ApplyPolicy {
                self.spec.apply
            }
            fn max_retries(&self) -> i32 {
                self.spec.max_retries
            }
            fn status(&self) -> Option<&OpsRequestStatus> {
                self.status.as_ref()
            }
        }
    };
}

ops_request!(RedisOpsRequest, DatabaseKind::Redis, redis);
ops_request!(ZooKeeperOpsRequest, DatabaseKind::ZooKeeper, node);
