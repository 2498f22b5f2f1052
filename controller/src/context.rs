//! What every reconcile shares: the client, the settings, metrics and the event recorder.

use std::sync::Arc;

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject},
    runtime::events::{Recorder, Reporter},
};
use volops_shared::{DatabaseKind, WorkloadKind};

use crate::{Config, metrics::Metrics};

/// Shared state of one controller process.
pub struct Ctx {
    pub client: Client,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
}

impl Ctx {
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "volops-controller".into(),
            instance: Some(config.identity.clone()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            config,
            metrics,
            recorder,
        }
    }

    pub fn database_api(&self, kind: DatabaseKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &database_resource(kind))
    }

    pub fn workload_api(&self, kind: WorkloadKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &workload_resource(kind))
    }
}

pub fn database_resource(kind: DatabaseKind) -> ApiResource {
    ApiResource {
        group: kind.group().into(),
        version: kind.version().into(),
        api_version: format!("{}/{}", kind.group(), kind.version()),
        kind: kind.kind().into(),
        plural: kind.plural().into(),
    }
}

pub fn workload_resource(kind: WorkloadKind) -> ApiResource {
    ApiResource {
        group: kind.group().into(),
        version: "v1".into(),
        api_version: kind.api_version().into(),
        kind: kind.kind().into(),
        plural: kind.plural().into(),
    }
}

/// A client that counts every request it sends in `api_requests`.
pub fn counting_client(client: Client, metrics: Arc<Metrics>) -> Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        metrics
            .api_requests
            .get_or_create(&crate::metrics::MethodLabels {
                method: req.method().to_string(),
            })
            .inc();
        let client = client.clone();
        async move { client.send(req).await }
    });
    Client::new(service, namespace)
}
