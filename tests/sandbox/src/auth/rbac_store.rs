//! The RBAC authorizer over the store: the machinery's [`RbacIndex`], rebuilt on the first
//! decision after any Role, ClusterRole, RoleBinding or ClusterRoleBinding changed (the store's
//! change feed tells), so every request after a write sees it and the rest pay a lookup.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast::{self, error::TryRecvError};
use volops_sandbox_machinery::rbac::{GROUP, MASTERS, RbacIndex, RbacObjects};

use crate::machinery::{Authorizer, AuthzRequest, Decision};
use crate::store::{Event, Store};

const PLURALS: [&str; 4] = ["roles", "clusterroles", "rolebindings", "clusterrolebindings"];

struct State {
    /// One change feed per RBAC resource; None until the first build.
    feeds: Option<Vec<broadcast::Receiver<Arc<Event>>>>,
    index: Arc<RbacIndex>,
}

/// kube's authorizer chain: `system:masters` first, then RBAC.
pub struct StoreRbac {
    store: Arc<Store>,
    state: Mutex<State>,
}

/// Whether anything arrived on a feed (drained; a lagging feed counts as changed).
fn changed(rx: &mut broadcast::Receiver<Arc<Event>>) -> bool {
    let mut any = false;
    loop {
        match rx.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => any = true,
            Err(TryRecvError::Empty) => return any,
            Err(TryRecvError::Closed) => return true,
        }
    }
}

impl StoreRbac {
    pub fn new(store: Arc<Store>) -> Self {
        StoreRbac {
            store,
            state: Mutex::new(State {
                feeds: None,
                index: Arc::new(RbacIndex::default()),
            }),
        }
    }

    /// The index as of the last RBAC change.
    pub fn index(&self) -> Arc<RbacIndex> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stale = match st.feeds.as_mut() {
            None => true,
            Some(feeds) => feeds.iter_mut().fold(false, |acc, rx| changed(rx) | acc),
        };
        if stale {
            if st.feeds.is_none() {
                // Subscribe before reading, so no change falls between.
                let feeds = PLURALS
                    .iter()
                    .filter_map(|p| {
                        let from = Some(self.store.current_rv());
                        self.store
                            .watch(&(GROUP.to_owned(), (*p).to_owned()), None, from)
                            .ok()
                            .map(|w| w.rx)
                    })
                    .collect();
                st.feeds = Some(feeds);
            }
            st.index = Arc::new(self.build());
        }
        st.index.clone()
    }

    fn build(&self) -> RbacIndex {
        let lists: Vec<Vec<Arc<Value>>> = PLURALS
            .iter()
            .map(|p| {
                self.store
                    .list(&(GROUP.to_owned(), (*p).to_owned()), None, None)
                    .0
            })
            .collect();
        let refs: Vec<Vec<&Value>> = lists.iter().map(|l| l.iter().map(|v| &**v).collect()).collect();
        RbacIndex::build(RbacObjects {
            roles: &refs[0],
            cluster_roles: &refs[1],
            role_bindings: &refs[2],
            cluster_role_bindings: &refs[3],
        })
    }
}

fn privileged(request: &AuthzRequest) -> bool {
    request.user.groups.iter().any(|g| g == MASTERS)
}

impl Authorizer for StoreRbac {
    fn authorize(&self, request: &AuthzRequest) -> Decision {
        if privileged(request) {
            return Decision::Allow;
        }
        self.index().authorize(request)
    }

    fn authorize_with_reason(&self, request: &AuthzRequest) -> (Decision, String) {
        if privileged(request) {
            return (Decision::Allow, String::new());
        }
        self.index().authorize_with_reason(request)
    }
}
