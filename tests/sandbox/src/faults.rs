//! Fault injection for reliability tests: per verb+resource error rates, added latency and
//! watch streams cut at intervals, driven by a seeded RNG. Never applied to /sandbox/ paths.
//!
//! Admin endpoint (same HTTPS server, cluster-admin only): `GET /sandbox/v1/faults` returns the current
//! config, `PUT /sandbox/v1/faults` replaces it (and reseeds), e.g.
//! `{"seed": 7, "latencyMs": 20, "watchCutSeconds": 5, "rules": [{"verb": "patch",
//! "resource": "persistentvolumeclaims", "rate": 0.1, "code": 429, "retryAfterSeconds": 1}]}`.
//! `verb` is kube's (get, list, watch, create, update, patch, delete, deletecollection) or "*";
//! `resource` a plural, `plural/status`, or "*"; the first matching rule applies. `{}` clears.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::machinery::ApiError;

/// One error rule. `verb` and `resource` may be "*"; `resource` may be "plural/status".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    #[serde(default = "star")]
    pub verb: String,
    #[serde(default = "star")]
    pub resource: String,
    /// Probability in [0, 1] that a matching request fails.
    pub rate: f64,
    /// 500, 409, 429 or 403 (a non-transient refusal).
    pub code: u16,
    /// Retry-After seconds sent with 429.
    #[serde(default = "one")]
    pub retry_after_seconds: u32,
}

fn star() -> String {
    "*".into()
}
fn one() -> u32 {
    1
}

/// The whole fault configuration (`PUT /sandbox/v1/faults` body, camelCase JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    pub seed: u64,
    pub rules: Vec<FaultRule>,
    /// Added to every API request before it is handled.
    pub latency_ms: u64,
    /// Watch streams are closed after this many seconds (0 = never).
    pub watch_cut_seconds: u64,
}

struct State {
    config: FaultConfig,
    rng: StdRng,
}

/// Shared handle to the fault configuration.
#[derive(Clone)]
pub struct Faults(Arc<Mutex<State>>);

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Faults").field(&self.get()).finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults(Arc::new(Mutex::new(State {
            config: FaultConfig::default(),
            rng: StdRng::seed_from_u64(0),
        })))
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the configuration and reseeds the RNG.
    pub fn set(&self, config: FaultConfig) {
        let mut s = self.lock();
        s.rng = StdRng::seed_from_u64(config.seed);
        s.config = config;
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    pub fn get(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().config.latency_ms)
    }

    pub(crate) fn watch_cut(&self) -> Option<Duration> {
        match self.lock().config.watch_cut_seconds {
            0 => None,
            s => Some(Duration::from_secs(s)),
        }
    }

    /// Decides whether this request fails, and how.
    pub(crate) fn roll(&self, verb: &str, resource: &str, name: &str) -> Option<ApiError> {
        let mut s = self.lock();
        let State { config, rng } = &mut *s;
        let base = resource.split('/').next().unwrap_or(resource);
        let rule = config.rules.iter().find(|r| {
            (r.verb == "*" || r.verb == verb)
                && (r.resource == "*" || r.resource == resource || r.resource == base)
        })?;
        if rng.random::<f64>() >= rule.rate {
            return None;
        }
        Some(match rule.code {
            409 => ApiError::conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            429 => ApiError::too_many_requests(
                "the server has received too many requests and has asked us to try again later (injected)",
                rule.retry_after_seconds,
            ),
            403 => ApiError::forbidden(resource, name, "injected fault"),
            _ => ApiError::internal("injected fault"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rolls_repeat_and_follow_the_rate() {
        let f = Faults::default();
        let cfg = FaultConfig {
            seed: 7,
            rules: vec![FaultRule {
                verb: "get".into(),
                resource: "pods".into(),
                rate: 0.5,
                code: 500,
                retry_after_seconds: 1,
            }],
            ..Default::default()
        };
        f.set(cfg.clone());
        let a: Vec<bool> = (0..200).map(|_| f.roll("get", "pods", "x").is_some()).collect();
        f.set(cfg);
        let b: Vec<bool> = (0..200).map(|_| f.roll("get", "pods", "x").is_some()).collect();
        assert_eq!(a, b);
        let hits = a.iter().filter(|x| **x).count();
        assert!((60..140).contains(&hits), "{hits}");
        assert!(f.roll("list", "pods", "").is_none());
        assert!(f.roll("get", "secrets", "x").is_none());
    }
}
