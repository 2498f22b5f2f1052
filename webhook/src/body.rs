//! Reading an admission review body within the limits: its size, the time it may take, and the
//! memory all bodies in flight may hold together (webhook/README.md, "Limits").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use prometheus_client::metrics::gauge::Gauge;

use crate::limits::{Limits, MIN_BODY_CHARGE};

/// The bytes of review bodies in memory now, over all requests.
#[derive(Debug, Default)]
pub struct BodyBudget {
    used: AtomicUsize,
    /// `volops_webhook_body_memory_bytes`, moved with `used`.
    gauge: Gauge,
}

impl BodyBudget {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes if the total stays within `ceiling`.
    fn try_take(&self, n: usize, ceiling: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= ceiling)
            })
            .is_ok();
        if taken {
            self.gauge.inc_by(gauge_value(n));
        }
        taken
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.gauge.dec_by(gauge_value(n));
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Bytes of the budget held by one request; given back when dropped (after its answer is built).
#[derive(Debug)]
pub struct Charge {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Charge {
    fn take(budget: &Arc<BodyBudget>, bytes: usize, ceiling: usize) -> Option<Charge> {
        budget.try_take(bytes, ceiling).then(|| Charge {
            budget: budget.clone(),
            bytes,
        })
    }

    /// Grows the charge to `bytes`.
    fn grow_to(&mut self, bytes: usize, ceiling: usize) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        if !self.budget.try_take(bytes - self.bytes, ceiling) {
            return false;
        }
        self.bytes = bytes;
        true
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// What the admission routes read bodies with.
#[derive(Clone, Debug)]
pub struct BodyLimits {
    /// Reading one body may take this long; well under kube-apiserver's 10 s.
    pub timeout: Duration,
    pub max_bytes: usize,
    limits: Limits,
    pub budget: Arc<BodyBudget>,
}

impl BodyLimits {
    pub fn new(timeout: Duration, limits: &Limits) -> Self {
        Self {
            timeout,
            max_bytes: limits.max_body_bytes,
            limits: limits.clone(),
            budget: BodyBudget::new(),
        }
    }

    /// The same limits with a budget that reports the bytes it holds to `gauge`.
    pub fn reporting_to(mut self, gauge: Gauge) -> Self {
        self.budget = Arc::new(BodyBudget {
            used: AtomicUsize::new(0),
            gauge,
        });
        self
    }
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Above the size limit: 413.
    TooLarge,
    /// The bodies in flight already hold the budget: 503 with `Retry-After: 1`, which
    /// kube-apiserver's client retries within the webhook's timeout.
    Busy,
    /// Not read within the timeout: 503.
    TimedOut,
    /// The client's stream failed: 400.
    Broken(String),
}

impl Refusal {
    /// The metric label of the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Busy => "body_memory",
            Refusal::TimedOut => "read_timeout",
            Refusal::Broken(_) => "broken_body",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::TooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "admission review too large").into_response()
            }
            Refusal::Busy => {
                let mut resp = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "webhook busy: too many admission reviews in memory; retry",
                )
                    .into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                resp
            }
            Refusal::TimedOut => {
                (StatusCode::SERVICE_UNAVAILABLE, "admission request timed out").into_response()
            }
            Refusal::Broken(e) => {
                (StatusCode::BAD_REQUEST, format!("reading admission review: {e}")).into_response()
            }
        }
    }
}

/// Reads `body` within `limits`: refused as soon as its declared length does not fit in the
/// budget (none of it is kept), otherwise charged as it arrives. The charge is held until the
/// caller drops it, i.e. while the review is parsed and decided.
///
/// A refused body is still read and dropped (within the timeout, up to the size limit) before
/// the answer: an HTTP/1.1 server that answers and closes while the client is still sending
/// makes it see a reset instead of the 413 or 503 (the lingering-close problem).
pub async fn read(mut body: Body, limits: &BodyLimits) -> Result<(Bytes, Charge), Refusal> {
    let declared = body.size_hint().exact().and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > limits.max_bytes) {
        drain(body, limits).await;
        return Err(Refusal::TooLarge);
    }
    let first = declared.unwrap_or(0).max(MIN_BODY_CHARGE);
    let Some(mut charge) = Charge::take(&limits.budget, first, limits.limits.body_ceiling(first)) else {
        drain(body, limits).await;
        return Err(Refusal::Busy);
    };
    match tokio::time::timeout(limits.timeout, collect(&mut body, declared, &mut charge, limits)).await {
        Ok(Ok(bytes)) => Ok((bytes, charge)),
        Ok(Err(refusal)) => {
            drop(charge);
            if refusal == Refusal::Busy {
                drain(body, limits).await;
            }
            Err(refusal)
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = limits.timeout.as_millis() as u64,
                "admission request timed out"
            );
            Err(Refusal::TimedOut)
        }
    }
}

async fn collect(
    body: &mut Body,
    declared: Option<usize>,
    charge: &mut Charge,
    limits: &BodyLimits,
) -> Result<Bytes, Refusal> {
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refusal::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = buf.len() + data.len();
        if total > limits.max_bytes {
            return Err(Refusal::TooLarge);
        }
        if !charge.grow_to(total, limits.limits.body_ceiling(total)) {
            return Err(Refusal::Busy);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and drops what is left of `body`, up to the size limit and within the timeout.
async fn drain(mut body: Body, limits: &BodyLimits) {
    let dropping = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > limits.max_bytes {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(limits.timeout, dropping).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(budget: usize) -> BodyLimits {
        BodyLimits::new(
            Duration::from_secs(5),
            &Limits {
                body_memory_bytes: budget,
                ..Limits::default()
            },
        )
    }

    #[tokio::test]
    async fn a_declared_length_beyond_the_budget_is_refused_before_reading() {
        let l = limits(4 << 20);
        let big = Body::from(vec![b'x'; 3 << 20]);
        // Three quarters of 4 MiB for large bodies: 3 MiB fits exactly, a second does not.
        let (bytes, held) = read(big, &l).await.unwrap();
        assert_eq!(
            (bytes.len(), held.bytes(), l.budget.used()),
            (3 << 20, 3 << 20, 3 << 20)
        );
        assert_eq!(
            read(Body::from(vec![b'y'; 2 << 20]), &l).await.unwrap_err(),
            Refusal::Busy
        );
        // A small body still finds the quarter kept for small ones.
        let (small, charge) = read(Body::from(vec![b'z'; 1000]), &l).await.unwrap();
        assert_eq!((small.len(), charge.bytes()), (1000, MIN_BODY_CHARGE));
        drop((held, charge));
        assert_eq!(l.budget.used(), 0);
    }

    #[tokio::test]
    async fn an_unsized_body_is_charged_as_it_arrives() {
        let l = limits(4 << 20);
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..5).map(|_| Ok(Bytes::from(vec![b'a'; 1 << 20]))).collect();
        let streamed = Body::from_stream(futures::stream::iter(chunks));
        // 5 MiB in 1 MiB chunks: past 3 MiB (the large-body ceiling) it is refused.
        assert_eq!(read(streamed, &l).await.unwrap_err(), Refusal::Busy);
        assert_eq!(l.budget.used(), 0);
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..2).map(|_| Ok(Bytes::from(vec![b'a'; 1 << 20]))).collect();
        let (bytes, charge) = read(Body::from_stream(futures::stream::iter(chunks)), &l)
            .await
            .unwrap();
        assert_eq!((bytes.len(), charge.bytes()), (2 << 20, 2 << 20));
    }

    #[tokio::test]
    async fn too_large_bodies_get_413_whether_declared_or_streamed() {
        let mut l = limits(64 << 20);
        l.max_bytes = 1000;
        assert_eq!(
            read(Body::from(vec![0u8; 1001]), &l).await.unwrap_err(),
            Refusal::TooLarge
        );
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..3).map(|_| Ok(Bytes::from(vec![0u8; 400]))).collect();
        assert_eq!(
            read(Body::from_stream(futures::stream::iter(chunks)), &l)
                .await
                .unwrap_err(),
            Refusal::TooLarge
        );
        assert_eq!(l.budget.used(), 0);
    }
}
