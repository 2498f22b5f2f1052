//! The storage autoscaler's decision (docs/ARCHITECTURE.md, "Storage autoscaling"), a pure
//! function: the controller gathers the inputs (the autoscaler's section for the database's
//! mode, the volumes' usage samples, their size, the database's ops requests, the policies'
//! limits, the time) and carries out the [`Decision`]. No kube types, no clock, no I/O.

mod decide;
pub mod defaults;
pub mod growth;

use std::time::Duration;

use jiff::Timestamp;

use crate::api::{ApplyPolicy, AutoscalerOpsRequestOptions, StorageAutoscalerSpec, VolumeExpansionMode};
use crate::quantity::Quantity;

pub use decide::{BACKOFF_BASE, BACKOFF_CAP, backoff, decide};

/// One volume's usage as the kubelet (or Prometheus) reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeUsage {
    pub pvc: String,
    /// The file system's size (a little below the PVC's capacity).
    pub capacity_bytes: i128,
    pub used_bytes: i128,
    /// When the sample was taken (the kubelet's `time`, not when it was read).
    pub sampled_at: Timestamp,
}

/// The database's volumes as their PVCs say: the largest `status.capacity` (what they really
/// are) and the largest `spec.resources.requests.storage` (what was last asked for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CurrentSize {
    pub capacity_bytes: Option<i128>,
    pub request_bytes: Option<i128>,
}

/// The last expansion of the database that failed, and how many failed in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    pub last_failed_at: Timestamp,
    pub consecutive: u32,
}

/// The database's expansions, as its ops requests tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpansionHistory {
    /// An ops request of the database that may still act (any type, anyone's): one at a time.
    pub active_request: Option<String>,
    /// When the database's last expansion reached a final phase (Successful or Failed).
    pub last_finished_at: Option<Timestamp>,
    /// Set while the last expansion Failed (cleared by a Successful one).
    pub failures: Option<Failures>,
}

/// A size a request may not exceed, and which limit it is (for the clamp's report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceiling {
    pub bytes: i128,
    /// e.g. `VolumeExpansionPolicy "tenant-limits" maxSize 100Gi`.
    pub source: String,
}

/// The platform's limits on this database's expansions (the policies that select its
/// namespace; `rules::autoscale_limits` resolves them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyLimits {
    /// Every policy's `maxSize`, and its `maxIncrease` added to the current size.
    pub ceilings: Vec<Ceiling>,
    /// The longest minimum interval for the database's StorageClasses, and its source.
    pub min_interval: Option<(Duration, String)>,
    /// The lowest emergency usage threshold (percent), and its source.
    pub emergency_threshold: Option<(i32, String)>,
    /// Why any request for this database would be denied whatever its size (a mode or class a
    /// Deny policy forbids, a policy that cannot be enforced).
    pub forbidden: Vec<String>,
}

/// Everything one decision is made on.
#[derive(Clone, Copy, Debug)]
pub struct AutoscaleInput<'a> {
    /// The autoscaler's storage section for the database's mode (defaults applied or not).
    pub section: &'a StorageAutoscalerSpec,
    pub options: &'a AutoscalerOpsRequestOptions,
    /// The latest sample of each of the database's volumes.
    pub samples: &'a [VolumeUsage],
    pub current: CurrentSize,
    pub history: &'a ExpansionHistory,
    pub limits: &'a PolicyLimits,
    pub now: Timestamp,
}

/// The fullest volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peak {
    pub pvc: String,
    pub used_bytes: i128,
    pub capacity_bytes: i128,
    /// Whole percent, rounded down.
    pub percent: i32,
}

/// Why nothing is to be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoAction {
    /// The section's `trigger` is not `On`.
    TriggerOff,
    BelowThreshold {
        peak: Peak,
        threshold: i32,
    },
}

/// Why the decision waits, and for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// A request of the database may still act.
    RequestActive { name: String },
    /// No usage sample of the database's volumes yet.
    NoSamples,
    /// Every sample predates the end of the last expansion.
    StaleSamples { last_finished_at: Timestamp },
    /// A PVC asks for more than it has: a resize is under way.
    ResizePending {
        capacity_bytes: i128,
        request_bytes: i128,
    },
    /// The last expansion failed: backing off before the next.
    FailedBackoff {
        failures: u32,
        last_failed_at: Timestamp,
    },
    /// The policy's minimum interval since the last expansion has not passed.
    MinInterval { interval: Duration, source: String },
}

/// Why the database cannot grow now, until someone changes something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The volumes are at or above the lowest limit already.
    AtLimit { limit: Ceiling, peak: Peak },
    /// A policy forbids any request of this database.
    Forbidden { reasons: Vec<String> },
    /// The section cannot be acted on (a rule that does not parse, no `expansionMode`): the
    /// webhook refuses such objects; one stored before it ran is reported.
    InvalidSpec(String),
}

/// Which limit lowered the size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clamp {
    /// What the scaling rule asked for, rounded up to a whole GiB.
    pub wanted: Quantity,
    pub limit: Ceiling,
}

/// The request to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expansion {
    /// The new size of every volume of the database: whole GiB unless a limit lowered it.
    pub size: Quantity,
    /// The size grown from: the volumes' real capacity.
    pub from_bytes: i128,
    /// The scaling rule used (`scalingRules[0] (...)` or `scalingThreshold 50`).
    pub step: String,
    pub clamp: Option<Clamp>,
    pub mode: VolumeExpansionMode,
    /// `Always` above the emergency threshold, else the autoscaler's `opsRequestOptions.apply`.
    pub apply: ApplyPolicy,
    /// The peak crossed the policy's emergency threshold.
    pub emergency: bool,
    pub timeout: Option<String>,
    pub max_retries: Option<i32>,
    pub peak: Peak,
}

/// What the controller does next for one database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    NoAction(NoAction),
    /// Decide again later: at `until` when known, else on the next sample or request change.
    Wait {
        reason: WaitReason,
        until: Option<Timestamp>,
    },
    Expand(Box<Expansion>),
    Blocked(Blocked),
}

#[cfg(test)]
mod tests;
