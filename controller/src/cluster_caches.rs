//! The cluster-wide facts Admit re-checks (StorageClasses, ResourceQuotas, Namespaces and
//! VolumeExpansionPolicies), kept from watches as the rules' views, as the webhook keeps them.
//! Admit reads them here instead of listing them for every request; a cache whose first list
//! is not in yet (or a policy CRD the cluster does not serve) sends Admit to the API server.

use std::{collections::BTreeMap, future::Future};

use futures::{FutureExt, StreamExt};
use kube::{
    Api, Client, Resource,
    api::ListParams,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use volops_shared::{
    api::VolumeExpansionPolicy,
    facts::{NamespaceView, PolicyView, QuotaView, StorageClassView},
    index::{Named, ViewIndex},
};

/// View indexes of the cluster-wide facts; each answers None until its first list is in.
#[derive(Clone)]
pub struct ClusterCaches {
    classes: ViewIndex<StorageClassView>,
    quotas: ViewIndex<QuotaView>,
    namespaces: ViewIndex<NamespaceView>,
    /// None where the cluster does not serve the policy CRD.
    policies: Option<ViewIndex<PolicyView>>,
}

/// A watch over every `K` whose events change `index`, driven until the stream ends; watch
/// errors are retried with backoff.
fn cache<K, V>(
    client: &Client,
    index: ViewIndex<V>,
    view: fn(&K) -> V,
) -> (ViewIndex<V>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    V: Named + Clone + Send + Sync + 'static,
{
    let events = watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff();
    let writer = index.clone();
    let drive = async move {
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            match ev {
                Ok(event) => writer.apply(&event, view),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff");
                }
            }
        }
    };
    (index, drive)
}

impl ClusterCaches {
    /// The caches and the future that fills them (run it until the controllers stop).
    pub async fn start(client: &Client) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (classes, classes_run) = cache(client, ViewIndex::cluster_scoped(), StorageClassView::from_class);
        let (quotas, quotas_run) = cache(client, ViewIndex::namespaced(), QuotaView::from_quota);
        let (namespaces, namespaces_run) =
            cache(client, ViewIndex::cluster_scoped(), NamespaceView::from_namespace);
        let served = Api::<VolumeExpansionPolicy>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await
            .is_ok();
        let (policies, policies_run) = if served {
            let (index, run) = cache(client, ViewIndex::cluster_scoped(), PolicyView::from_policy);
            (Some(index), run.left_future())
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
        self.classes.namespace("").map(|l| l.to_vec())
    }

    pub fn quotas(&self, ns: &str) -> Option<Vec<QuotaView>> {
        self.quotas.namespace(ns).map(|l| l.to_vec())
    }

    /// The namespace's labels; None also for a namespace the cache lacks (it may only be new).
    pub fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        let all = self.namespaces.namespace("")?;
        let at = all.binary_search_by(|n| n.name.as_str().cmp(ns)).ok()?;
        all.get(at).map(|n| n.labels.clone())
    }

    pub fn policies(&self) -> Option<Vec<PolicyView>> {
        self.policies.as_ref()?.namespace("").map(|l| l.to_vec())
    }

    /// Each cache by name with its size, None while its first list is not in.
    pub fn sizes(&self) -> Vec<(String, Option<usize>)> {
        fn size<V: Named + Clone>(name: &str, index: &ViewIndex<V>) -> (String, Option<usize>) {
            (name.to_owned(), index.is_live().then(|| index.len()))
        }
        let mut out = vec![
            size("storageclasses", &self.classes),
            size("resourcequotas", &self.quotas),
            size("namespaces", &self.namespaces),
        ];
        if let Some(p) = &self.policies {
            out.push(size("volumeexpansionpolicies", p));
        }
        out
    }
}
