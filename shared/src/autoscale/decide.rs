//! The decision, step by step: never two requests of one database, never on a sample older
//! than the last expansion, never sooner than the policy's interval or a failure's back-off,
//! never above `upperBound` or a policy's limit (the clamp is reported).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::growth::{DEFAULT_USAGE_THRESHOLD, choose_step, grown, round_up_gib};
use super::{
    AutoscaleInput, Blocked, Ceiling, Clamp, Decision, Expansion, NoAction, Peak, VolumeUsage, WaitReason,
};
use crate::api::ApplyPolicy;
use crate::quantity::Quantity;

/// The wait after the first failed expansion; each further failure in a row doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(15 * 60);
/// The longest wait after failed expansions.
pub const BACKOFF_CAP: Duration = Duration::from_secs(24 * 3600);

/// The wait after `failures` failed expansions in a row (15m, 30m, 1h, ... at most 24h).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

fn wait(reason: WaitReason, until: Option<Timestamp>) -> Decision {
    Decision::Wait { reason, until }
}

/// The fullest sample (by used/capacity, exactly), with its whole percent.
fn peak(samples: &[&VolumeUsage]) -> Option<Peak> {
    let fullest = samples.iter().max_by(|a, b| {
        // a.used/a.cap vs b.used/b.cap without division (a zero capacity reads as one byte).
        let (ac, bc) = (a.capacity_bytes.max(1), b.capacity_bytes.max(1));
        (a.used_bytes.saturating_mul(bc)).cmp(&b.used_bytes.saturating_mul(ac))
    })?;
    let capacity = fullest.capacity_bytes.max(1);
    let percent = i32::try_from(fullest.used_bytes.saturating_mul(100) / capacity).unwrap_or(i32::MAX);
    Some(Peak {
        pvc: fullest.pvc.clone(),
        used_bytes: fullest.used_bytes,
        capacity_bytes: fullest.capacity_bytes,
        percent,
    })
}

/// `used / capacity >= threshold %`, exactly.
fn crossed(p: &Peak, threshold: i32) -> bool {
    p.used_bytes.saturating_mul(100) >= i128::from(threshold).saturating_mul(p.capacity_bytes.max(1))
}

/// The samples taken after the last expansion finished, or why there are none.
fn fresh<'a>(input: &AutoscaleInput<'a>) -> Result<Vec<&'a VolumeUsage>, Decision> {
    if input.samples.is_empty() {
        return Err(wait(WaitReason::NoSamples, None));
    }
    let since = input.history.last_finished_at;
    let fresh: Vec<&VolumeUsage> = input
        .samples
        .iter()
        .filter(|s| since.is_none_or(|t| s.sampled_at > t))
        .collect();
    match since {
        Some(last_finished_at) if fresh.is_empty() => {
            Err(wait(WaitReason::StaleSamples { last_finished_at }, None))
        }
        _ => Ok(fresh),
    }
}

/// The failure back-off, then the policy's minimum interval, from the last expansion.
fn timing(input: &AutoscaleInput<'_>) -> Option<Decision> {
    let now = input.now;
    if let Some(f) = input.history.failures {
        let until = after(f.last_failed_at, backoff(f.consecutive));
        if now < until {
            let reason = WaitReason::FailedBackoff {
                failures: f.consecutive,
                last_failed_at: f.last_failed_at,
            };
            return Some(wait(reason, Some(until)));
        }
    }
    if let (Some((interval, source)), Some(last)) =
        (&input.limits.min_interval, input.history.last_finished_at)
    {
        let until = after(last, *interval);
        if now < until {
            let reason = WaitReason::MinInterval {
                interval: *interval,
                source: source.clone(),
            };
            return Some(wait(reason, Some(until)));
        }
    }
    None
}

/// The lowest of `upperBound` and the policies' ceilings.
fn lowest_limit(input: &AutoscaleInput<'_>) -> Result<Option<Ceiling>, String> {
    let upper = match &input.section.upper_bound {
        Some(q) => match Quantity::parse(&q.0) {
            Ok(b) if b.is_positive() => Some(Ceiling {
                bytes: b.bytes_ceil(),
                source: format!("upperBound {}", q.0),
            }),
            _ => return Err(format!("upperBound {:?} is not a quantity above 0", q.0)),
        },
        None => None,
    };
    Ok(upper
        .into_iter()
        .chain(input.limits.ceilings.iter().cloned())
        .min_by_key(|c| c.bytes))
}

/// The size to ask for, from the volumes' real capacity, or why none can be.
fn size(input: &AutoscaleInput<'_>, peak: Peak) -> Result<(Quantity, i128, String, Option<Clamp>), Blocked> {
    let current = input.current;
    let from = current
        .capacity_bytes
        .or(current.request_bytes)
        .unwrap_or(peak.capacity_bytes);
    let chosen = choose_step(input.section, from).map_err(Blocked::InvalidSpec)?;
    let wanted = round_up_gib(grown(from, chosen.step));
    let limit = lowest_limit(input).map_err(Blocked::InvalidSpec)?;
    let have = from.max(current.request_bytes.unwrap_or(0));
    match limit {
        Some(limit) if limit.bytes <= have => Err(Blocked::AtLimit { limit, peak }),
        Some(limit) if limit.bytes < wanted => {
            let clamp = Clamp {
                wanted: Quantity::from_bytes(wanted),
                limit: limit.clone(),
            };
            Ok((
                Quantity::from_bytes(limit.bytes),
                from,
                chosen.source,
                Some(clamp),
            ))
        }
        _ => Ok((Quantity::from_bytes(wanted), from, chosen.source, None)),
    }
}

/// Decides what to do for one database (see the module's summary for the order).
pub fn decide(input: &AutoscaleInput<'_>) -> Decision {
    let section = input.section;
    if !section.is_on() {
        return Decision::NoAction(NoAction::TriggerOff);
    }
    let Some(mode) = section.expansion_mode else {
        return Decision::Blocked(Blocked::InvalidSpec("expansionMode is required".into()));
    };
    if let Some(name) = &input.history.active_request {
        return wait(WaitReason::RequestActive { name: name.clone() }, None);
    }
    let samples = match fresh(input) {
        Ok(samples) => samples,
        Err(decision) => return decision,
    };
    if let (Some(capacity_bytes), Some(request_bytes)) =
        (input.current.capacity_bytes, input.current.request_bytes)
        && request_bytes > capacity_bytes
    {
        return wait(
            WaitReason::ResizePending {
                capacity_bytes,
                request_bytes,
            },
            None,
        );
    }
    let Some(peak) = peak(&samples) else {
        return wait(WaitReason::NoSamples, None);
    };
    let threshold = section.usage_threshold.unwrap_or(DEFAULT_USAGE_THRESHOLD);
    if !crossed(&peak, threshold) {
        return Decision::NoAction(NoAction::BelowThreshold { peak, threshold });
    }
    if let Some(decision) = timing(input) {
        return decision;
    }
    if !input.limits.forbidden.is_empty() {
        return Decision::Blocked(Blocked::Forbidden {
            reasons: input.limits.forbidden.clone(),
        });
    }
    let emergency = input
        .limits
        .emergency_threshold
        .as_ref()
        .is_some_and(|(t, _)| crossed(&peak, *t));
    let (size, from_bytes, step, clamp) = match size(input, peak.clone()) {
        Ok(sized) => sized,
        Err(blocked) => return Decision::Blocked(blocked),
    };
    let apply = if emergency {
        ApplyPolicy::Always
    } else {
        input.options.apply.unwrap_or_default()
    };
    Decision::Expand(Box::new(Expansion {
        size,
        from_bytes,
        step,
        clamp,
        mode,
        apply,
        emergency,
        timeout: input.options.timeout.clone(),
        max_retries: input.options.max_retries,
        peak,
    }))
}
