//! A decision in words: the reason (a condition's reason, a metric's outcome) and the message
//! the autoscaler's `Decision` condition and Events carry (KubeDB's CRD prunes volops's own
//! status fields, so the condition says it all).

use std::time::Duration;

use volops_shared::{
    Quantity,
    autoscale::{Blocked, Decision, Expansion, NoAction, Peak, WaitReason},
};

/// A size as people read it: exact when it is a whole number of a binary unit (`2Gi`), else
/// to a tenth of the largest unit below it (`870.4Mi`).
fn size(bytes: i128) -> String {
    const UNITS: [(&str, i128); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    match UNITS.iter().find(|(_, u)| bytes >= *u) {
        Some((name, unit)) if bytes % unit != 0 => format!("{:.1}{name}", bytes as f64 / *unit as f64),
        _ => Quantity::from_bytes(bytes).to_string(),
    }
}

/// `6h`, `90m`, `45s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn peak(p: &Peak) -> String {
    format!(
        "the fullest volume {} is {}% full ({} of {})",
        p.pvc,
        p.percent,
        size(p.used_bytes),
        size(p.capacity_bytes)
    )
}

/// The decision's reason: `Expand`, or the variant of why not.
pub fn reason(d: &Decision) -> &'static str {
    match d {
        Decision::NoAction(NoAction::TriggerOff) => "TriggerOff",
        Decision::NoAction(NoAction::BelowThreshold { .. }) => "BelowThreshold",
        Decision::Wait { reason, .. } => match reason {
            WaitReason::RequestActive { .. } => "RequestActive",
            WaitReason::NoSamples => "NoSamples",
            WaitReason::StaleSamples { .. } => "StaleSamples",
            WaitReason::ResizePending { .. } => "ResizePending",
            WaitReason::FailedBackoff { .. } => "FailedBackoff",
            WaitReason::MinInterval { .. } => "MinInterval",
        },
        Decision::Expand(_) => "Expand",
        Decision::Blocked(Blocked::AtLimit { .. }) => "AtLimit",
        Decision::Blocked(Blocked::Forbidden { .. }) => "Forbidden",
        Decision::Blocked(Blocked::InvalidSpec(_)) => "InvalidSpec",
    }
}

/// What an expansion asks for, and why.
pub fn expansion(e: &Expansion) -> String {
    let mut out = format!(
        "{}: growing every volume from {} to {} ({}, {})",
        peak(&e.peak),
        size(e.from_bytes),
        e.size,
        e.step,
        e.mode.as_str()
    );
    if let Some(c) = &e.clamp {
        out.push_str(&format!(
            "; clamped by {} (the rule asked for {})",
            c.limit.source, c.wanted
        ));
    }
    if e.emergency {
        out.push_str("; above the emergency threshold: apply Always");
    }
    out
}

fn wait(reason: &WaitReason) -> String {
    match reason {
        WaitReason::RequestActive { name } => {
            format!("ops request {name} of the database may still act: one request at a time")
        }
        WaitReason::NoSamples => "no usage sample of the database's volumes yet".into(),
        WaitReason::StaleSamples { last_finished_at } => format!(
            "every usage sample predates the end of the last expansion ({last_finished_at}): waiting for a newer one"
        ),
        WaitReason::ResizePending {
            capacity_bytes,
            request_bytes,
        } => format!(
            "a volume asks for {} and has {}: a resize is under way",
            size(*request_bytes),
            size(*capacity_bytes)
        ),
        WaitReason::FailedBackoff {
            failures,
            last_failed_at,
        } => format!("{failures} expansion(s) failed in a row, the last at {last_failed_at}: backing off"),
        WaitReason::MinInterval { interval, source } => format!(
            "{source} is {} between expansions of a volume",
            duration(*interval)
        ),
    }
}

/// The decision in one message.
pub fn message(d: &Decision) -> String {
    match d {
        Decision::NoAction(NoAction::TriggerOff) => "the storage section's trigger is not On".into(),
        Decision::NoAction(NoAction::BelowThreshold { peak: p, threshold }) => {
            format!("{}, below the usageThreshold {threshold}%", peak(p))
        }
        Decision::Wait { reason, until } => match until {
            Some(t) => format!("{}; next decision at {t}", wait(reason)),
            None => wait(reason),
        },
        Decision::Expand(e) => expansion(e),
        Decision::Blocked(Blocked::AtLimit { limit, peak: p }) => format!(
            "{}, but the volumes already reach {}: raise it to let the database grow",
            peak(p),
            limit.source
        ),
        Decision::Blocked(Blocked::Forbidden { reasons }) => {
            format!(
                "no request of this database would be admitted: {}",
                reasons.join("; ")
            )
        }
        Decision::Blocked(Blocked::InvalidSpec(why)) => {
            format!("the storage section cannot be acted on: {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(2 << 30), "2Gi");
        assert_eq!(size(912_680_551), "870.4Mi");
        assert_eq!(size(1_288_490_189), "1.2Gi");
        assert_eq!(size(7), "7");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn a_wait_names_its_reason_and_when_it_ends() {
        let d = Decision::Wait {
            reason: WaitReason::MinInterval {
                interval: Duration::from_secs(21600),
                source: "VolumeExpansionPolicy \"ebs\" minExpansionInterval".into(),
            },
            until: Some("2026-01-01T06:00:00Z".parse().unwrap()),
        };
        assert_eq!(reason(&d), "MinInterval");
        assert_eq!(
            message(&d),
            "VolumeExpansionPolicy \"ebs\" minExpansionInterval is 6h between expansions of a volume; \
             next decision at 2026-01-01T06:00:00Z"
        );
    }
}
