//! Garbage collector by ownerReferences (uid), like kube-controller-manager's:
//! - Background: once every owner of a dependent is gone, the dependent is deleted.
//!   If only some owners are gone, their references are removed instead.
//! - Foreground: an owner with the `foregroundDeletion` finalizer gets its dependents deleted
//!   (blocking ones in foreground too) and loses the finalizer once no dependent with
//!   `blockOwnerDeletion: true` is left.
//! - Orphan: the API server strips the references; nothing to do here.
//!
//! Owner absence is always confirmed with a live GET before deleting.

use crate::error::{Context, Error, ignore_codes, is_code};
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Key, Queue, spawn_workers};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

const FOREGROUND: &str = "foregroundDeletion";

#[derive(Debug, Clone)]
struct Node {
    ar: Arc<ApiResource>,
    ns: String,
    name: String,
    resource_version: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    foreground: bool,
    finalizers: Vec<String>,
}

/// (apiVersion, kind) -> resource, for the kinds the collector watches.
type KindMap = HashMap<(String, String), Arc<ApiResource>>;

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
        Some(node)
    }

    fn insert(&mut self, uid: String, node: Node) {
        self.remove(&uid);
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, node);
    }
}

/// The collector: feed it changes from informers with [`Collector::handler`].
#[derive(Clone)]
pub struct Collector {
    graph: Arc<Mutex<Graph>>,
    kinds: Arc<Mutex<KindMap>>,
    deps: Queue,
    owners: Queue,
}

impl Collector {
    /// A collector whose workers run on `tasks`.
    pub fn start(client: kube::Client, pause: PauseSwitch, tasks: &mut JoinSet<()>) -> Self {
        let gc = Self {
            graph: Arc::default(),
            kinds: Arc::default(),
            deps: Queue::default(),
            owners: Queue::default(),
        };
        let (g, c) = (gc.clone(), client.clone());
        spawn_workers(
            tasks,
            "gc-dependents",
            gc.deps.clone(),
            4,
            pause.clone(),
            move |key| {
                let (g, c) = (g.clone(), c.clone());
                async move { g.check_dependent(&c, &key.name).await }
            },
        );
        let g = gc.clone();
        spawn_workers(tasks, "gc-owners", gc.owners.clone(), 2, pause, move |key| {
            let (g, c) = (g.clone(), client.clone());
            async move { g.check_owner(&c, &key.name).await }
        });
        gc
    }

    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn kind(&self, api_version: &str, kind: &str) -> Option<Arc<ApiResource>> {
        let kinds = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kinds.get(&(api_version.to_owned(), kind.to_owned())).cloned()
    }

    /// A handler for an informer of kind `ar`.
    pub fn handler<K: Resource>(&self, ar: ApiResource) -> impl Fn(Change<'_, K>) + Send + Sync + 'static {
        let ar = Arc::new(ar);
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((ar.api_version.clone(), ar.kind.clone()), ar.clone());
        let gc = self.clone();
        move |change| match change {
            Change::Applied(o) => gc.applied(&ar, o.meta()),
            Change::Deleted(o) => gc.deleted(o.meta()),
        }
    }

    fn applied(&self, ar: &Arc<ApiResource>, meta: &ObjectMeta) {
        let Some(uid) = meta.uid.clone() else { return };
        let finalizers = meta.finalizers.clone().unwrap_or_default();
        let node = Node {
            ar: ar.clone(),
            ns: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            foreground: meta.deletion_timestamp.is_some() && finalizers.iter().any(|f| f == FOREGROUND),
            finalizers,
        };
        let mut g = self.graph();
        if node.foreground {
            self.owners.add(Key::new("", &uid));
        }
        let mut check_self = false;
        for o in &node.owners {
            match g.nodes.get(&o.uid) {
                None => check_self = true,
                Some(owner) if owner.foreground => {
                    check_self = true;
                    self.owners.add(Key::new("", &o.uid));
                }
                Some(_) => {}
            }
        }
        g.insert(uid.clone(), node);
        drop(g);
        if check_self {
            self.deps.add(Key::new("", &uid));
        }
    }

    fn deleted(&self, meta: &ObjectMeta) {
        let Some(uid) = meta.uid.as_deref() else { return };
        let mut g = self.graph();
        let Some(node) = g.remove(uid) else { return };
        for d in g.dependents.get(uid).into_iter().flatten() {
            self.deps.add(Key::new("", d));
        }
        for o in &node.owners {
            if g.nodes.get(&o.uid).is_some_and(|n| n.foreground) {
                self.owners.add(Key::new("", &o.uid));
            }
        }
    }

    /// Owner state: Some(true) alive, Some(false) absent, None unknown kind (treated alive).
    async fn owner_alive(
        &self,
        client: &kube::Client,
        ns: &str,
        r: &OwnerReference,
    ) -> Result<Option<bool>, Error> {
        let known = self.graph().nodes.get(&r.uid).map(|n| !n.foreground);
        if let Some(alive) = known {
            return Ok(Some(alive));
        }
        let Some(ar) = self.kind(&r.api_version, &r.kind) else {
            return Ok(None);
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar.as_ref());
        match api.get(&r.name).await {
            Ok(o) => Ok(Some(o.metadata.uid.as_deref() == Some(r.uid.as_str()))),
            Err(e) if is_code(&e, 404) => Ok(Some(false)),
            Err(e) => Err(e).ctx(|| format!("looking up owner {}/{}", r.kind, r.name)),
        }
    }

    async fn check_dependent(&self, client: &kube::Client, uid: &str) -> Result<Option<Duration>, Error> {
        let Some(node) = self.graph().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        // Our watches are separate streams: the owner's delete can arrive before the dependent's
        // update (e.g. ownerReferences stripped by an Orphan delete), so decide on the live object.
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &node.ns, node.ar.as_ref());
        let Some(live) = api
            .get_opt(&node.name)
            .await
            .ctx(|| format!("reading {}", node.name))?
        else {
            return Ok(None);
        };
        if live.metadata.uid.as_deref() != Some(uid) || live.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let owners = live.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(None);
        }
        let mut dead = Vec::new();
        let mut any_alive = false;
        let mut foreground = false;
        for r in &owners {
            match self.owner_alive(client, &node.ns, r).await? {
                Some(false) => {
                    let owner_fg = self.graph().nodes.get(&r.uid).is_some_and(|n| n.foreground);
                    foreground |= owner_fg && r.block_owner_deletion == Some(true);
                    if !owner_fg {
                        dead.push(r.uid.clone());
                    }
                }
                _ => any_alive = true,
            }
        }
        if !any_alive {
            let policy = if foreground {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            };
            let dp = DeleteParams {
                propagation_policy: Some(policy),
                preconditions: Some(Preconditions {
                    uid: Some(uid.to_owned()),
                    resource_version: live.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            // 409: the dependent changed meanwhile (e.g. was orphaned); its event re-checks it.
            ignore_codes(api.delete(&node.name, &dp).await, &[404, 409])
                .ctx(|| format!("collecting {} {}", node.ar.kind, node.name))?;
        } else if !dead.is_empty() {
            let keep: Vec<&OwnerReference> = owners.iter().filter(|r| !dead.contains(&r.uid)).collect();
            let patch: json_patch::Patch = serde_json::from_value(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": live.metadata.resource_version},
                {"op": "replace", "path": "/metadata/ownerReferences", "value": keep},
            ]))
            .map_err(|e| Error::Malformed {
                what: "owner patch".into(),
                reason: e.to_string(),
            })?;
            ignore_codes(
                api.patch(&node.name, &PatchParams::default(), &Patch::Json::<()>(patch))
                    .await,
                &[404],
            )
            .ctx(|| format!("dropping dead owners of {}", node.name))?;
        }
        Ok(None)
    }

    async fn check_owner(&self, client: &kube::Client, uid: &str) -> Result<Option<Duration>, Error> {
        let (node, blocking) = {
            let g = self.graph();
            let Some(node) = g.nodes.get(uid).cloned() else {
                return Ok(None);
            };
            if !node.foreground {
                return Ok(None);
            }
            let mut blocking = 0;
            for d in g.dependents.get(uid).into_iter().flatten() {
                let Some(dep) = g.nodes.get(d) else { continue };
                if !dep.deleting {
                    self.deps.add(Key::new("", d));
                }
                if dep
                    .owners
                    .iter()
                    .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                {
                    blocking += 1;
                }
            }
            (node, blocking)
        };
        if blocking > 0 {
            return Ok(None);
        }
        let rest: Vec<&String> = node.finalizers.iter().filter(|f| *f != FOREGROUND).collect();
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": node.resource_version},
            {"op": "replace", "path": "/metadata/finalizers", "value": rest},
        ]))
        .map_err(|e| Error::Malformed {
            what: "finalizer patch".into(),
            reason: e.to_string(),
        })?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &node.ns, node.ar.as_ref());
        ignore_codes(
            api.patch(&node.name, &PatchParams::default(), &Patch::Json::<()>(patch))
                .await,
            &[404],
        )
        .ctx(|| format!("removing {FOREGROUND} from {}", node.name))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owners: &[&str]) -> Node {
        Node {
            ar: Arc::new(crate::util::statefulset_ar()),
            ns: "ns".into(),
            name: "n".into(),
            resource_version: "1".into(),
            owners: owners
                .iter()
                .map(|u| OwnerReference {
                    uid: (*u).to_owned(),
                    ..OwnerReference::default()
                })
                .collect(),
            deleting: false,
            foreground: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn graph_indexes_dependents_and_forgets_them() {
        let mut g = Graph::default();
        g.insert("a".into(), node(&["o1", "o2"]));
        g.insert("b".into(), node(&["o1"]));
        assert_eq!(g.dependents["o1"].len(), 2);
        // Re-inserting with fewer owners updates the index.
        g.insert("a".into(), node(&["o2"]));
        assert_eq!(g.dependents["o1"], HashSet::from(["b".to_owned()]));
        g.remove("b");
        assert!(!g.dependents.contains_key("o1"));
        assert_eq!(g.dependents["o2"], HashSet::from(["a".to_owned()]));
    }
}
