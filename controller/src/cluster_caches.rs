//! The cluster-wide facts Admit re-checks (StorageClasses, ResourceQuotas, Namespaces and
//! VolumeExpansionPolicies), kept from watches as the webhook keeps them. Admit reads them here
//! instead of listing them for every request; a cache whose first list is not in yet (or a
//! policy CRD the cluster does not serve) sends Admit to the API server as before.

use std::{collections::BTreeMap, future::Future};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::{
    core::v1::{Namespace, ResourceQuota},
    storage::v1::StorageClass,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::ListParams,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use volops_shared::{
    api::VolumeExpansionPolicy,
    facts::{PolicyView, QuotaView, StorageClassView},
};

use crate::caches::synced;

/// Stores of the cluster-wide facts; each answers None until its first list is in.
#[derive(Clone)]
pub struct ClusterCaches {
    classes: Store<StorageClass>,
    quotas: Store<ResourceQuota>,
    namespaces: Store<Namespace>,
    /// None where the cluster does not serve the policy CRD.
    policies: Option<Store<VolumeExpansionPolicy>>,
}

/// A reflector over every `K` with managedFields dropped, driven until the stream ends; watch
/// errors are retried with backoff.
fn cache<K>(client: &Client) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .modify(|o| o.managed_fields_mut().clear())
            .default_backoff(),
    );
    let drive = async move {
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            if let Err(e) = ev {
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff");
            }
        }
    };
    (store, drive)
}

impl ClusterCaches {
    /// The caches and the future that fills them (run it until the controllers stop).
    pub async fn start(client: &Client) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (classes, classes_run) = cache::<StorageClass>(client);
        let (quotas, quotas_run) = cache::<ResourceQuota>(client);
        let (namespaces, namespaces_run) = cache::<Namespace>(client);
        let served = Api::<VolumeExpansionPolicy>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await
            .is_ok();
        let (policies, policies_run) = if served {
            let (store, run) = cache::<VolumeExpansionPolicy>(client);
            (Some(store), run.left_future())
        } else {
            (None, futures::future::ready(()).right_future())
        };
        let run = async move {
            futures::join!(classes_run, quotas_run, namespaces_run, policies_run);
        };
        let caches = Self {
            classes,
            quotas,
            namespaces,
            policies,
        };
        (caches, run)
    }

    pub fn storage_classes(&self) -> Option<Vec<StorageClassView>> {
        synced(&self.classes).then(|| {
            self.classes
                .state()
                .iter()
                .map(|c| StorageClassView::from_class(c))
                .collect()
        })
    }

    pub fn quotas(&self, ns: &str) -> Option<Vec<QuotaView>> {
        synced(&self.quotas).then(|| {
            self.quotas
                .state()
                .iter()
                .filter(|q| q.metadata.namespace.as_deref() == Some(ns))
                .map(|q| QuotaView::from_quota(q))
                .collect()
        })
    }

    /// The namespace's labels; None also for a namespace the cache lacks (it may only be new).
    pub fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        if !synced(&self.namespaces) {
            return None;
        }
        let namespace = self.namespaces.get(&ObjectRef::new(ns))?;
        Some(namespace.metadata.labels.clone().unwrap_or_default())
    }

    pub fn policies(&self) -> Option<Vec<PolicyView>> {
        let store = self.policies.as_ref().filter(|s| synced(s))?;
        Some(
            store
                .state()
                .iter()
                .map(|p| PolicyView {
                    name: p.name_any(),
                    spec: p.spec.clone(),
                })
                .collect(),
        )
    }
}
