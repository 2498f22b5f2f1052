//! What a request's run saves to put things back (controller/DESIGN-NOTES.md, "Saved state"):
//! the request it belongs to, what was admitted, each workload it orphan-deletes and each pod
//! it takes down. It lives in one Secret per request in the controller's own namespace, where
//! tenants cannot write, and is read from nowhere else. Pure: the types and the Secret's
//! encoding; `saved_store` reads and writes it.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use volops_shared::{DatabaseKind, WorkloadKind, api::VolumeExpansionMode};

/// The Secret key holding the gzip'd JSON of a [`SavedState`].
pub const DATA_KEY: &str = "state.json.gz";
/// `app.kubernetes.io/component` of every saved-state Secret (the sweep lists by it).
pub const COMPONENT: &str = "saved-state";
/// Label of a saved-state Secret naming its database (a hash: label values are short).
pub const DATABASE_LABEL: &str = "volops.dev/database";
/// Label of a saved-state Secret carrying its request's UID.
pub const REQUEST_UID_LABEL: &str = "volops.dev/request-uid";
/// The Secret type, so that nobody mistakes it for credentials.
pub const SECRET_TYPE: &str = "volops.dev/saved-state";
/// kube-apiserver refuses a Secret whose data passes 1 MiB; a margin stays for the key.
pub const MAX_DATA_BYTES: usize = 1024 * 1024 - 1024;

/// Why a saved state cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
    #[error("the Secret has no {DATA_KEY}")]
    Missing,
    #[error(
        "{bytes} bytes compressed, past the {MAX_DATA_BYTES} a Secret may hold: the workload manifests are too large to save"
    )]
    TooLarge { bytes: usize },
}

/// The request a saved state belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIdentity {
    /// `RedisOpsRequest` or `ZooKeeperOpsRequest`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.databaseRef.name`.
    pub database: String,
}

impl RequestIdentity {
    pub fn database_kind(&self) -> Option<DatabaseKind> {
        DatabaseKind::from_ops_kind(&self.kind)
    }

    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What Admit accepted: the later steps carry out this, never the request's current spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admitted {
    /// `metadata.generation` of the request when admitted.
    pub generation: i64,
    /// The size admitted, as written.
    pub target: String,
    pub mode: VolumeExpansionMode,
    /// The database's UID when admitted: a database deleted and created again under the same
    /// name is another database.
    pub database_uid: String,
}

/// A workload the controller verified as the database's (controller ownerReference to its
/// UID) and saved before its orphan delete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedWorkload {
    pub name: String,
    pub kind: WorkloadKind,
    pub uid: String,
    /// The claim template that holds the data (checked present in the manifest).
    pub claim_template: String,
    /// `spec.replicas` of the saved manifest: its pods are `<name>-0..replicas`.
    pub replicas: i32,
    /// The stripped manifest (see `manifest::strip_workload`).
    pub manifest: Value,
}

impl SavedWorkload {
    /// Pod names, in order.
    pub fn pods(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.replicas.max(0)).map(|i| format!("{}-{i}", self.name))
    }

    /// The claim of one of its pods: `<claimTemplate>-<pod>`.
    pub fn claim_of(&self, pod: &str) -> String {
        format!("{}-{pod}", self.claim_template)
    }
}

/// A pod of a saved workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPod {
    /// The UID of the pod the controller may act on: one its verified workload controlled
    /// when saved, or one the controller created. None: a pod it did not verify (never
    /// deleted by the controller).
    pub uid: Option<String>,
    /// Offline mode: the pod as it was before the controller took it down (KubeDB's
    /// stripped pod), until it is back.
    pub manifest: Option<Value>,
    /// Offline mode: the pod was put back; the step waits for it to be Ready.
    #[serde(default)]
    pub restarted: bool,
}

/// A step's non-transient errors counted against `spec.maxRetries`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retries {
    pub step: String,
    pub count: i32,
}

/// How long a cleanup has been trying (its retries are bounded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupProgress {
    /// When the first pass that could not finish ran.
    pub started: Time,
    /// Passes in which the API server refused a restore (not a transient error).
    pub refusals: u32,
}

/// Everything one request's run saved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedState {
    pub request: RequestIdentity,
    #[serde(default)]
    pub admitted: Option<Admitted>,
    /// Set before the controller asks the database to pause: the cleanup resumes it.
    #[serde(default)]
    pub pause_requested: bool,
    /// In the database's workload order.
    #[serde(default)]
    pub workloads: Vec<SavedWorkload>,
    #[serde(default)]
    pub pods: BTreeMap<String, SavedPod>,
    #[serde(default)]
    pub retries: Option<Retries>,
    #[serde(default)]
    pub cleanup: Option<CleanupProgress>,
}

/// The name of a request's saved-state Secret.
pub fn secret_name(request_uid: &str) -> String {
    format!("volops-saved-{request_uid}")
}

/// The value of [`DATABASE_LABEL`] for a database: a hash of its kind, namespace and name
/// (FNV-1a, stable across processes and versions).
pub fn database_label(kind: DatabaseKind, namespace: &str, name: &str) -> String {
    let text = format!("{}/{namespace}/{name}", kind.kind());
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl SavedState {
    pub fn new(request: RequestIdentity) -> Self {
        Self {
            request,
            ..Self::default()
        }
    }

    /// The saved workload of this name.
    pub fn workload(&self, name: &str) -> Option<&SavedWorkload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// Whether `pod` is `<workload>-<ordinal>` of a saved workload, within its replicas.
    pub fn is_pod_of_saved_workload(&self, pod: &str) -> bool {
        self.workloads.iter().any(|w| {
            pod.strip_prefix(w.name.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|ordinal| ordinal.parse::<i32>().ok())
                .is_some_and(|i| (0..w.replicas).contains(&i) && pod == format!("{}-{i}", w.name))
        })
    }

    /// The Secret holding this state in `namespace`.
    pub fn to_secret(&self, namespace: &str) -> Result<Secret, SavedError> {
        let json = serde_json::to_vec(self)?;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&json)?;
        let packed = gz.finish()?;
        if packed.len() > MAX_DATA_BYTES {
            return Err(SavedError::TooLarge { bytes: packed.len() });
        }
        let kind = self.request.database_kind().unwrap_or(DatabaseKind::Redis);
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "volops-controller".to_owned(),
            ),
            ("app.kubernetes.io/component".to_owned(), COMPONENT.to_owned()),
            (
                DATABASE_LABEL.to_owned(),
                database_label(kind, &self.request.namespace, &self.request.database),
            ),
            (REQUEST_UID_LABEL.to_owned(), self.request.uid.clone()),
        ]);
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(secret_name(&self.request.uid)),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.to_owned()),
            data: Some(BTreeMap::from([(DATA_KEY.to_owned(), ByteString(packed))])),
            ..Secret::default()
        })
    }

    /// The state a Secret holds.
    pub fn from_secret(secret: &Secret) -> Result<Self, SavedError> {
        let packed = secret
            .data
            .as_ref()
            .and_then(|d| d.get(DATA_KEY))
            .ok_or(SavedError::Missing)?;
        let mut json = Vec::new();
        // Bounded like the writer: a Secret never holds more than 1 MiB, but its gzip could
        // expand without limit.
        GzDecoder::new(packed.0.as_slice())
            .take(64 * MAX_DATA_BYTES as u64)
            .read_to_end(&mut json)?;
        Ok(serde_json::from_slice(&json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> SavedState {
        let mut s = SavedState::new(RequestIdentity {
            kind: "RedisOpsRequest".into(),
            namespace: "team".into(),
            name: "grow".into(),
            uid: "0b7f".into(),
            database: "rd".into(),
        });
        s.workloads.push(SavedWorkload {
            name: "rd-shard0".into(),
            kind: WorkloadKind::StatefulSet,
            uid: "w1".into(),
            claim_template: "data".into(),
            replicas: 2,
            manifest: json!({"kind": "StatefulSet", "metadata": {"name": "rd-shard0"}}),
        });
        s.pods.insert(
            "rd-shard0-1".into(),
            SavedPod {
                uid: Some("p1".into()),
                manifest: Some(json!({"kind": "Pod"})),
                restarted: false,
            },
        );
        s
    }

    #[test]
    fn a_state_reads_back_from_its_secret() {
        let s = state();
        let secret = s.to_secret("volops-system").unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("volops-saved-0b7f"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("volops-system"));
        let labels = secret.metadata.labels.clone().unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], COMPONENT);
        assert_eq!(labels[REQUEST_UID_LABEL], "0b7f");
        assert_eq!(
            labels[DATABASE_LABEL],
            database_label(DatabaseKind::Redis, "team", "rd")
        );
        assert_eq!(SavedState::from_secret(&secret).unwrap(), s);
    }

    #[test]
    fn database_labels_are_short_stable_and_apart() {
        let a = database_label(DatabaseKind::Redis, "team", "rd");
        assert_eq!(a.len(), 16);
        assert_eq!(a, database_label(DatabaseKind::Redis, "team", "rd"));
        assert_ne!(a, database_label(DatabaseKind::ZooKeeper, "team", "rd"));
        assert_ne!(a, database_label(DatabaseKind::Redis, "other", "rd"));
        assert_ne!(a, database_label(DatabaseKind::Redis, "team", "rd2"));
    }

    #[test]
    fn only_pods_of_saved_workloads_within_their_replicas_are_theirs() {
        let s = state();
        for (pod, want) in [
            ("rd-shard0-0", true),
            ("rd-shard0-1", true),
            ("rd-shard0-2", false),
            ("rd-shard0--1", false),
            ("rd-shard0-01", false),
            ("rd-shard0-x", false),
            ("rd-shard1-0", false),
            ("rd-shard0", false),
            ("evil-0", false),
        ] {
            assert_eq!(s.is_pod_of_saved_workload(pod), want, "{pod}");
        }
    }

    #[test]
    fn a_state_past_a_secret_s_limit_is_refused_and_a_damaged_one_is_an_error() {
        let mut s = state();
        // Incompressible: 2 MiB of pseudo-random hex.
        let mut x = 1u64;
        let noise: String = (0..(2 << 20) / 16)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                format!("{x:016x}")
            })
            .collect();
        s.workloads[0].manifest = json!({"noise": noise});
        assert!(matches!(s.to_secret("ns"), Err(SavedError::TooLarge { .. })));
        let mut secret = state().to_secret("ns").unwrap();
        assert!(matches!(
            SavedState::from_secret(&Secret::default()),
            Err(SavedError::Missing)
        ));
        secret.data = Some(BTreeMap::from([(
            DATA_KEY.to_owned(),
            ByteString(b"not gzip".to_vec()),
        )]));
        assert!(matches!(
            SavedState::from_secret(&secret),
            Err(SavedError::Gzip(_))
        ));
    }
}
