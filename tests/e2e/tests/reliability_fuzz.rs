//! Webhook fuzzing: random and mutated AdmissionReview bodies sent to the webhook over one
//! keep-alive HTTPS connection (the real router behind hyper). Invariants: the server never
//! dies; every answer is 200 with a well-formed AdmissionReview echoing the uid, or a 400 with
//! a reason, or a 413 for a body over the 8 MiB limit. Cases: VOLOPS_FUZZ_CASES (default
//! 2,000); seed: VOLOPS_FUZZ_SEED (default random, printed).

#![allow(clippy::unwrap_used)] // test code: helpers and closures outside #[test] fns

mod reliability_common;

use std::collections::BTreeMap;

use base64::Engine;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reliability_common::*;
use serde_json::{Value, json};
use volops_webhook::routes::MAX_BODY;

/// Spliced in after serialisation (see [`Case::finish`]).
const MARKER: &str = "\u{1}volops-fuzz-marker\u{1}";

/// Valid reviews of every kind and operation, and the path each goes to.
fn seeds() -> Vec<(&'static str, Value)> {
    let rd = |s: &str| ops("RedisOpsRequest", "rd", "Online", s);
    let zk = |s: &str| ops("ZooKeeperOpsRequest", "zk", "Offline", s);
    let mut with_status = rd("2Gi");
    with_status["status"] = json!({"phase": "Progressing", "conditions": []});
    let u = "705ab4f5-6393-11e8-b7cc-42010a800002";
    let mut out = Vec::new();
    for path in ["/mutate", "/validate"] {
        out.extend([
            (
                path,
                review(u, "RedisOpsRequest", "CREATE", None, Some(rd("2Gi")), None, false),
            ),
            (
                path,
                review(
                    u,
                    "RedisOpsRequest",
                    "CREATE",
                    None,
                    Some(rd("512Mi")),
                    None,
                    true,
                ),
            ),
            (
                path,
                review(
                    u,
                    "RedisOpsRequest",
                    "CREATE",
                    None,
                    Some(ops("RedisOpsRequest", "nope", "Offline", "2Gi")),
                    None,
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "RedisOpsRequest",
                    "UPDATE",
                    None,
                    Some(rd("3Gi")),
                    Some(rd("2Gi")),
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "RedisOpsRequest",
                    "UPDATE",
                    Some("status"),
                    Some(with_status.clone()),
                    Some(rd("2Gi")),
                    false,
                ),
            ),
            (
                path,
                review(u, "RedisOpsRequest", "DELETE", None, None, Some(rd("2Gi")), false),
            ),
            (
                path,
                review(
                    u,
                    "ZooKeeperOpsRequest",
                    "CREATE",
                    None,
                    Some(zk("2Gi")),
                    None,
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "ZooKeeperOpsRequest",
                    "CREATE",
                    None,
                    Some(zk("100Gi")),
                    None,
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "ZooKeeperOpsRequest",
                    "UPDATE",
                    None,
                    Some(zk("4Gi")),
                    Some(zk("2Gi")),
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "Redis",
                    "UPDATE",
                    None,
                    Some(redis_db("512Mi")),
                    Some(redis_db("1Gi")),
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "Redis",
                    "UPDATE",
                    None,
                    Some(redis_db("2Gi")),
                    Some(redis_db("1Gi")),
                    true,
                ),
            ),
            (
                path,
                review(
                    u,
                    "ZooKeeper",
                    "UPDATE",
                    None,
                    Some(zookeeper_db("1Gi")),
                    Some(zookeeper_db("2Gi")),
                    false,
                ),
            ),
            (
                path,
                review(
                    u,
                    "ZooKeeper",
                    "CREATE",
                    None,
                    Some(zookeeper_db("1Gi")),
                    None,
                    false,
                ),
            ),
        ]);
    }
    out
}

/// Every JSON pointer in `v` (the root included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn random_scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..8) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => json!(""),
        5 => json!(
            [
                "CREATE",
                "UPDATE",
                "DELETE",
                "CONNECT",
                "create",
                "2Gi",
                "-1Gi",
                "1e999",
                "VolumeExpansion"
            ]
            .choose(rng)
            .copied()
            .unwrap_or_default()
        ),
        6 => json!([]),
        _ => json!({}),
    }
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    if depth == 0 || rng.random_bool(0.4) {
        return random_scalar(rng);
    }
    if rng.random_bool(0.5) {
        Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        )
    } else {
        let keys = [
            "request",
            "uid",
            "kind",
            "object",
            "spec",
            "metadata",
            "name",
            "x",
            "operation",
        ];
        Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| {
                    let k = keys.choose(rng).copied().unwrap_or("k").to_owned();
                    (k, random_value(rng, depth - 1))
                })
                .collect(),
        )
    }
}

/// One generated body and what was done to it.
struct Case {
    value: Value,
    splice: Option<Vec<u8>>,
    ops: Vec<&'static str>,
}

impl Case {
    /// Replaces the node at a random pointer with `v` (the root only if chosen).
    fn replace_random(&mut self, rng: &mut StdRng, v: Value) {
        let mut ps = Vec::new();
        pointers(&self.value, String::new(), &mut ps);
        if let Some(p) = ps.choose(rng)
            && let Some(slot) = self.value.pointer_mut(p)
        {
            *slot = v;
        }
    }

    fn mutate(&mut self, rng: &mut StdRng) {
        let op = match rng.random_range(0..11) {
            0 => {
                let mut ps = Vec::new();
                pointers(&self.value, String::new(), &mut ps);
                if let Some(p) = ps.choose(rng).filter(|p| !p.is_empty())
                    && let Some((parent, key)) = p.rsplit_once('/')
                {
                    match self.value.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(i) = key.parse::<usize>()
                                && i < a.len()
                            {
                                a.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
                "drop field"
            }
            1 => {
                let v = random_scalar(rng);
                self.replace_random(rng, v);
                "change type"
            }
            2 => {
                let len = *[1usize << 10, 1 << 16, 1 << 20].choose(rng).unwrap_or(&1024);
                let v = json!("x".repeat(len));
                self.replace_random(rng, v);
                "huge string"
            }
            3 => {
                let depth = *[64usize, 127, 129, 1000, 20_000].choose(rng).unwrap_or(&64);
                let nest = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                self.splice = Some(nest.into_bytes());
                self.replace_random(rng, json!(MARKER));
                "deep nesting"
            }
            4 => {
                self.splice = Some(b"\"ab\xff\xfe\xc3(cd\"".to_vec());
                self.replace_random(rng, json!(MARKER));
                "invalid UTF-8"
            }
            5 => {
                let kinds = [
                    "Pod",
                    "Redis",
                    "ZooKeeper",
                    "RedisOpsRequest",
                    "ZooKeeperOpsRequest",
                    "",
                    "Secret",
                ];
                let groups = ["", "kubedb.com", "ops.kubedb.com", "apps"];
                let k = kinds.choose(rng).copied().unwrap_or("Pod");
                let g = groups.choose(rng).copied().unwrap_or("");
                if let Some(r) = self.value.get_mut("request").and_then(Value::as_object_mut) {
                    r.insert("kind".into(), json!({"group": g, "version": "v1", "kind": k}));
                }
                "wrong kind"
            }
            6 => {
                let v = random_value(rng, 3);
                if let Some(o) = self.value.as_object_mut() {
                    o.insert("request".into(), if v.is_object() { json!([v]) } else { v });
                }
                "non-object request"
            }
            7 => {
                self.value = random_value(rng, 4);
                "random JSON"
            }
            8 => {
                let ops = ["CREATE", "UPDATE", "DELETE", "CONNECT", "", "create"];
                let o = ops.choose(rng).copied().unwrap_or("");
                if let Some(r) = self.value.get_mut("request").and_then(Value::as_object_mut) {
                    r.insert("operation".into(), json!(o));
                }
                "operation"
            }
            9 => {
                let v = random_value(rng, 3);
                self.replace_random(rng, v);
                "random subtree"
            }
            _ => {
                self.ops.push("bytes");
                return;
            }
        };
        self.ops.push(op);
    }

    /// Serialises, splices, and applies byte-level damage when a "bytes" op was drawn.
    fn finish(&self, rng: &mut StdRng) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(&self.value).unwrap();
        if let Some(splice) = &self.splice {
            let marker = serde_json::to_vec(&json!(MARKER)).unwrap();
            if let Some(i) = bytes.windows(marker.len()).position(|w| w == marker.as_slice()) {
                bytes.splice(i..i + marker.len(), splice.iter().copied());
            }
        }
        for _ in self.ops.iter().filter(|o| **o == "bytes") {
            if bytes.is_empty() {
                break;
            }
            let i = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes.truncate(i),
                1 => bytes[i] = rng.random(),
                2 => bytes.insert(i, rng.random()),
                _ => {
                    let j = rng.random_range(i..bytes.len());
                    let dup = bytes[i..j].to_vec();
                    bytes.splice(i..i, dup);
                }
            }
        }
        bytes
    }
}

/// The uid a 200 must echo: `Some(None)` when the request has none (then there is no 200),
/// `None` when it cannot be known (bytes damaged beyond JSON).
///
/// The webhook parses only the fields it reads and serde_json skips the others without
/// checking UTF-8 or the nesting limit, so a body that is not strict JSON may still be
/// answered. Such a body is judged by its lossy decoding, or by the tree it was built from
/// when only the spliced-in node is broken.
fn expected_uid(body: &[u8], case: &Case) -> Option<Option<String>> {
    let uid = |v: &Value| {
        v.pointer("/request/uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(v) = serde_json::from_slice::<Value>(body)
        .ok()
        .or_else(|| serde_json::from_str(&String::from_utf8_lossy(body)).ok())
    {
        return Some(uid(&v));
    }
    (!case.ops.contains(&"bytes")).then(|| uid(&case.value))
}

/// Checks one answer; returns the outcome label.
fn check(body: &[u8], resp: &Response, uid: Option<Option<String>>) -> Result<&'static str, String> {
    let text = String::from_utf8_lossy(&resp.body);
    match resp.status {
        413 if body.len() > MAX_BODY => Ok("413 too large"),
        _ if body.len() > MAX_BODY => Err(format!("{} for a body over the limit", resp.status)),
        400 if !resp.body.is_empty() => Ok("400 malformed"),
        400 => Err("400 without a reason".into()),
        200 => {
            let out: Value = serde_json::from_slice(&resp.body)
                .map_err(|e| format!("200 with a non-JSON body ({e}): {text}"))?;
            if out["apiVersion"] != "admission.k8s.io/v1" || out["kind"] != "AdmissionReview" {
                return Err(format!("not an AdmissionReview: {text}"));
            }
            let r = &out["response"];
            let got = r["uid"]
                .as_str()
                .ok_or_else(|| format!("no response.uid: {text}"))?;
            match uid {
                Some(Some(want)) if want == got => {}
                None => {}
                other => return Err(format!("uid {got:?} echoed for {other:?}")),
            }
            let allowed = r["allowed"]
                .as_bool()
                .ok_or_else(|| format!("no response.allowed: {text}"))?;
            if let Some(p) = r.get("patch") {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(p.as_str().unwrap_or_default())
                    .map_err(|e| format!("patch is not base64 ({e}): {text}"))?;
                let patch: Value =
                    serde_json::from_slice(&raw).map_err(|e| format!("patch is not JSON ({e})"))?;
                if !patch.is_array() || r["patchType"] != "JSONPatch" {
                    return Err(format!("bad patch: {text}"));
                }
            }
            if !allowed && r["status"]["message"].as_str().is_none_or(str::is_empty) {
                return Err(format!("denial without a message: {text}"));
            }
            Ok(if allowed { "200 allowed" } else { "200 denied" })
        }
        s => Err(format!("unexpected status {s}: {text}")),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_admission_reviews_never_break_the_webhook() {
    let cases = env_u64("VOLOPS_FUZZ_CASES").unwrap_or(2_000);
    let seed = env_u64("VOLOPS_FUZZ_SEED").unwrap_or_else(rand::random);
    println!("fuzz seed {seed} (VOLOPS_FUZZ_SEED={seed} reproduces), {cases} cases");
    let bundle = volops_certs::generate(
        &["localhost".to_owned()],
        &[std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
        1,
    )
    .unwrap();
    let vol = SecretVolume::new(&bundle.cert_pem, &bundle.key_pem);
    let (running, token) = start_webhook(&vol).await;
    let (addr, cfg) = (running.https_addr, client_config(&bundle.ca_cert_pem));

    let started = std::time::Instant::now();
    let fuzz_cfg = cfg.clone();
    let tally = tokio::task::spawn_blocking(move || {
        let cfg = fuzz_cfg;
        let mut rng = StdRng::seed_from_u64(seed);
        let seeds = seeds();
        let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut conn: Option<H1> = None;
        for n in 0..cases {
            let (path, valid) = seeds.choose(&mut rng).cloned().unwrap();
            let mut case = Case {
                value: valid,
                splice: None,
                ops: Vec::new(),
            };
            // A quarter of the cases go unmutated: the happy path must stay well-formed too.
            for _ in 0..rng.random_range(0..4) {
                case.mutate(&mut rng);
            }
            let mut body = case.finish(&mut rng);
            if rng.random_ratio(1, 400) {
                body.resize(MAX_BODY + 1 + rng.random_range(0..1024), b' ');
                case.ops.push("over the limit");
            }
            let mut c = match conn.take() {
                Some(c) => c,
                None => H1::connect(addr, cfg.clone()).unwrap(),
            };
            let resp = c
                .post(path, &body)
                .unwrap_or_else(|e| panic!("case {n} (seed {seed}, ops {:?}): no answer: {e}", case.ops));
            match check(&body, &resp, expected_uid(&body, &case)) {
                Ok(label) => *tally.entry(label).or_default() += 1,
                Err(why) => panic!(
                    "case {n} (seed {seed}, {path}, ops {:?}): {why}\nbody (first 500 bytes): {}",
                    case.ops,
                    String::from_utf8_lossy(&body[..body.len().min(500)])
                ),
            }
            for op in &case.ops {
                *tally.entry(op).or_default() += 1;
            }
            // Keep the connection unless the server closed it or refused the request.
            if resp.status == 200 && !resp.close {
                conn = Some(c);
            }
        }
        tally
    })
    .await
    .unwrap();
    println!(
        "fuzzed {cases} AdmissionReview bodies in {:.1}s: {tally:?}",
        started.elapsed().as_secs_f64()
    );
    // The server is still healthy after all that: a valid review on a fresh connection.
    let ok = tokio::task::spawn_blocking(move || {
        let (path, valid) = seeds().remove(0);
        let body = serde_json::to_vec(&valid).unwrap();
        let resp = H1::connect(addr, cfg).unwrap().post(path, &body).unwrap();
        let uid = valid["request"]["uid"].as_str().map(str::to_owned);
        check(&body, &resp, Some(uid))
    })
    .await
    .unwrap();
    assert_eq!(ok, Ok("200 allowed"));
    assert!(tally.get("200 allowed").copied().unwrap_or(0) > 0, "{tally:?}");
    assert!(tally.get("400 malformed").copied().unwrap_or(0) > 0, "{tally:?}");
    token.cancel();
    running.wait().await;
}
