//! Shared by the reliability tests: a blocking HTTP/1.1-over-TLS client that trusts only a
//! given CA (the e2e package has no HTTP client dependency), a kubelet-style Secret volume,
//! and a webhook served from in-memory caches.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::Event;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use volops_webhook::caches::ApplyEvent;
use volops_webhook::{Caches, Config, Running, Writers, start_with_caches};

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration whose only root is `ca_pem`, speaking HTTP/1.1.
pub fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    client_config_many(&[ca_pem])
}

/// A client configuration trusting each of `ca_pems`, speaking HTTP/1.1.
pub fn client_config_many(ca_pems: &[&str]) -> Arc<ClientConfig> {
    install_provider();
    let mut roots = RootCertStore::empty();
    for ca in ca_pems {
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
    }
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server said `Connection: close`.
    pub close: bool,
}

/// A keep-alive HTTP/1.1 connection over TLS (blocking: run it on a thread or spawn_blocking).
pub struct H1 {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl H1 {
    /// Connects and completes the TLS handshake (server name `localhost`).
    pub fn connect(addr: SocketAddr, cfg: Arc<ClientConfig>) -> io::Result<H1> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(H1 {
            stream,
            buf: Vec::new(),
        })
    }

    /// The leaf certificate the server presented.
    pub fn served_leaf(&self) -> Option<CertificateDer<'static>> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
    }

    /// POSTs `body`; when writing fails (a server may answer 413 and close before reading
    /// everything) the response is still read if the server sent one.
    pub fn post(&mut self, path: &str, body: &[u8]) -> io::Result<Response> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let wrote = self
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| self.stream.write_all(body))
            .and_then(|()| self.stream.flush());
        match (self.read_response(), wrote) {
            (Ok(r), _) => Ok(r),
            (Err(e), Ok(())) => Err(e),
            (Err(_), Err(w)) => Err(w),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        for l in lines {
            let Some((k, v)) = l.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close"),
                _ => {}
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let n = len.unwrap_or(0);
            while self.buf.len() < n {
                self.fill()?;
            }
            self.buf.drain(..n).collect()
        };
        Ok(Response { status, body, close })
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(io::Error::other)?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill()?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A Secret volume as kubelet lays it out: `..<ts>/tls.*`, `..data -> ..<ts>`,
/// `tls.crt -> ..data/tls.crt`, `tls.key -> ..data/tls.key`.
pub struct SecretVolume {
    pub dir: tempfile::TempDir,
    generation: u32,
}

impl SecretVolume {
    pub fn new(cert: &str, key: &str) -> Self {
        let mut v = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        v.publish(cert, key);
        for f in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(f), v.dir.path().join(f)).unwrap();
        }
        v
    }

    /// Writes a new timestamped directory and atomically re-points `..data` at it, then
    /// removes the old one (what kubelet's AtomicWriter does).
    pub fn publish(&mut self, cert: &str, key: &str) {
        self.generation += 1;
        let ts = format!(
            "..2026_11_21_07_00_{:02}.{}",
            self.generation % 60,
            self.generation
        );
        let new = self.dir.path().join(&ts);
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("tls.crt"), cert).unwrap();
        std::fs::write(new.join("tls.key"), key).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&ts, &tmp).unwrap();
        let data = self.dir.path().join("..data");
        let old = std::fs::read_link(&data).ok();
        std::fs::rename(&tmp, &data).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

/// Starts the webhook on 127.0.0.1:0 serving `vol`'s certificate, deciding on [`world`].
pub async fn start_webhook(vol: &SecretVolume) -> (Running, CancellationToken) {
    install_provider();
    let mut config = Config::new(vol.cert(), vol.key());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.reload_debounce = Duration::from_millis(50);
    let token = CancellationToken::new();
    let running = start_with_caches(config, world(), token.clone()).await.unwrap();
    (running, token)
}

fn labels(plural: &str, db: &str) -> Value {
    json!({"app.kubernetes.io/name": plural, "app.kubernetes.io/instance": db,
           "app.kubernetes.io/managed-by": "kubedb.com"})
}

fn pvc(name: &str, labels: Value, size: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "namespace": "demo", "labels": labels},
           "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": size}}},
           "status": {"phase": "Bound", "capacity": {"storage": size}}})
}

fn fill<K: DeserializeOwned>(writer: &mut impl ApplyEvent<K>, objects: &[Value]) {
    writer.apply_event(&Event::Init);
    for o in objects {
        let obj: K = serde_json::from_value(o.clone()).unwrap();
        writer.apply_event(&Event::InitApply(obj));
    }
    writer.apply_event(&Event::InitDone);
}

/// Synced caches: namespace `demo`; Redis cluster `rd` (2 shards x 2, 1Gi on the expandable
/// class `fast`) and ZooKeeper `zk` (3 x 1Gi on `fast`) with their Bound PVCs; class `fixed`
/// not expandable; one pending Redis ops request (so queueing warnings are exercised).
pub fn world() -> Caches {
    let (caches, w) = Caches::new();
    let Writers {
        mut redis,
        mut zookeeper,
        mut redis_ops,
        mut zookeeper_ops,
        mut pvcs,
        mut classes,
        mut quotas,
        mut namespaces,
        mut policies,
    } = w;
    let rl = labels("redises.kubedb.com", "rd");
    let zl = labels("zookeepers.kubedb.com", "zk");
    let mut claims: Vec<Value> = [
        "data-rd-shard0-0",
        "data-rd-shard0-1",
        "data-rd-shard1-0",
        "data-rd-shard1-1",
    ]
    .iter()
    .map(|n| pvc(n, rl.clone(), "1Gi"))
    .collect();
    claims.extend((0..3).map(|i| pvc(&format!("zk-data-zk-{i}"), zl.clone(), "1Gi")));
    fill(&mut redis, &[redis_db("1Gi")]);
    fill(&mut zookeeper, &[zookeeper_db("1Gi")]);
    fill(
        &mut redis_ops,
        &[
            json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
        "metadata": {"name": "earlier", "namespace": "demo"},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                 "volumeExpansion": {"mode": "Online", "redis": "3Gi"}},
        "status": {"phase": "Pending"}}),
        ],
    );
    fill(&mut zookeeper_ops, &[]);
    fill(&mut pvcs, &claims);
    fill(
        &mut classes,
        &[
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
               "provisioner": "csi.example", "allowVolumeExpansion": true}),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fixed"},
               "provisioner": "csi.example", "allowVolumeExpansion": false}),
        ],
    );
    fill(
        &mut quotas,
        &[json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "storage", "namespace": "demo"},
        "spec": {"hard": {"requests.storage": "100Gi"}},
        "status": {"hard": {"requests.storage": "100Gi"}, "used": {"requests.storage": "7Gi"}}})],
    );
    fill(
        &mut namespaces,
        &[json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "demo", "labels": {"tenant": "a"}}})],
    );
    fill(
        &mut policies,
        &[
            json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
        "metadata": {"name": "tenants"},
        "spec": {"namespaceSelector": {"matchLabels": {"tenant": "a"}}, "maxSize": "50Gi",
                 "enforcement": "Warn"}}),
        ],
    );
    caches
}

pub fn redis_db(size: &str) -> Value {
    json!({"apiVersion": "kubedb.com/v1", "kind": "Redis",
           "metadata": {"name": "rd", "namespace": "demo"},
           "spec": {"version": "7.2.4", "mode": "Cluster", "cluster": {"shards": 2, "replicas": 2},
                    "storageType": "Durable",
                    "storage": {"storageClassName": "fast", "resources": {"requests": {"storage": size}}}},
           "status": {"phase": "Ready"}})
}

pub fn zookeeper_db(size: &str) -> Value {
    json!({"apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper",
           "metadata": {"name": "zk", "namespace": "demo"},
           "spec": {"replicas": 3, "storage": {"storageClassName": "fast",
                    "resources": {"requests": {"storage": size}}}},
           "status": {"phase": "Ready"}})
}

pub fn ops(kind: &str, db: &str, mode: &str, size: &str) -> Value {
    let field = if kind == "RedisOpsRequest" {
        "redis"
    } else {
        "node"
    };
    json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind,
           "metadata": {"name": "grow", "namespace": "demo"},
           "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db},
                    "volumeExpansion": {"mode": mode, field: size}}})
}

/// An AdmissionReview v1 for `object`/`old_object`.
pub fn review(
    uid: &str,
    kind: &str,
    operation: &str,
    sub_resource: Option<&str>,
    object: Option<Value>,
    old_object: Option<Value>,
    dry_run: bool,
) -> Value {
    let (group, version) = match kind {
        "Redis" => ("kubedb.com", "v1"),
        "ZooKeeper" => ("kubedb.com", "v1alpha2"),
        _ => ("ops.kubedb.com", "v1alpha1"),
    };
    let name = object
        .as_ref()
        .or(old_object.as_ref())
        .and_then(|o| o.pointer("/metadata/name"))
        .cloned()
        .unwrap_or(json!(""));
    let mut req = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.to_lowercase()},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": name, "namespace": "demo", "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": object, "oldObject": old_object, "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    });
    if let Some(s) = sub_resource {
        req["subResource"] = json!(s);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}
