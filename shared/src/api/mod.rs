//! The Kubernetes API types volops serves and reads.

pub mod autoscaler;
pub mod condition;
pub mod database;
pub mod ops;
pub mod policy;
pub(crate) mod quantity_field;

pub use autoscaler::{
    AutoscalerOpsRequestOptions, AutoscalerPhase, AutoscalerStatus, AutoscalerView, LastOpsRequest,
    RedisAutoscaler, RedisAutoscalerSpec, RedisStorageAutoscalerSpec, StorageAutoscalerSpec,
    StorageRecommendation, StorageScalingRule, ZooKeeperAutoscaler, ZooKeeperAutoscalerSpec,
    ZooKeeperStorageAutoscalerSpec, autoscaler_view,
};
pub use condition::Condition;
pub use database::{DatabaseStatus, Redis, RedisClusterSpec, RedisSpec, ZooKeeper, ZooKeeperSpec};
pub use ops::{
    ApplyPolicy, DatabaseRef, OpsRequestPhase, OpsRequestStatus, RedisOpsRequest, RedisOpsRequestSpec,
    RedisVolumeExpansion, VolumeExpansionMode, ZooKeeperOpsRequest, ZooKeeperOpsRequestSpec,
    ZooKeeperVolumeExpansion,
};
pub use policy::{Enforcement, StorageClassInterval, VolumeExpansionPolicy, VolumeExpansionPolicySpec};
