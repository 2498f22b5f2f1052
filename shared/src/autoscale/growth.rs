//! How much a volume grows: the scaling rule for its size, its threshold read as a percent or a
//! quantity, and the result rounded up to a whole GiB.

use crate::api::StorageAutoscalerSpec;
use crate::quantity::Quantity;

/// `usageThreshold` when none is set (KubeDB's default).
pub const DEFAULT_USAGE_THRESHOLD: i32 = 80;
/// `scalingThreshold` when none is set (KubeDB's default).
pub const DEFAULT_SCALING_THRESHOLD: i32 = 50;
/// Sizes are asked for in whole GiB.
pub const GIB: i128 = 1 << 30;

/// A scaling rule's `threshold`: a percent of the current size, or bytes to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Percent(u32),
    Bytes(i128),
}

/// Reads a `threshold`: `30pc` or `30%` (a whole, positive percent), or a positive quantity.
pub fn parse_step(threshold: &str) -> Result<Step, String> {
    let percent = threshold
        .strip_suffix("pc")
        .or_else(|| threshold.strip_suffix('%'));
    if let Some(digits) = percent {
        return match digits.parse::<u32>() {
            Ok(p) if p > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Step::Percent(p)),
            _ => Err(format!(
                "threshold {threshold:?} is not a percent: write a whole number above 0 such as 30pc or 20%"
            )),
        };
    }
    match Quantity::parse(threshold) {
        Ok(q) if q.is_positive() => Ok(Step::Bytes(q.bytes_ceil())),
        Ok(_) => Err(format!("threshold {threshold:?} must be above 0")),
        Err(e) => Err(format!(
            "threshold {threshold:?} is neither a percent nor a quantity ({e}); write one such as 30pc, 20% or 50Gi"
        )),
    }
}

/// Reads an `appliesUpto`: empty for "any size", else a positive quantity, in bytes.
pub fn parse_applies_upto(applies_upto: &str) -> Result<Option<i128>, String> {
    if applies_upto.is_empty() {
        return Ok(None);
    }
    match Quantity::parse(applies_upto) {
        Ok(q) if q.is_positive() => Ok(Some(q.bytes_ceil())),
        Ok(_) => Err(format!("appliesUpto {applies_upto:?} must be above 0")),
        Err(e) => Err(format!(
            "appliesUpto {applies_upto:?} is not a quantity ({e}); write one such as 500Gi, or leave it empty"
        )),
    }
}

/// The step chosen for a size, and the text it came from (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenStep {
    pub step: Step,
    /// `scalingRules[i] (appliesUpto 500Gi, threshold 30pc)` or `scalingThreshold 50`.
    pub source: String,
}

/// The step for a volume of `size` bytes: the rule with the smallest `appliesUpto` at or above
/// the size; else the rule with an empty `appliesUpto`; else `scalingThreshold` percent. Rules
/// are read in any order (KubeDB's webhook sorts them; an object stored without it is not).
pub fn choose_step(spec: &StorageAutoscalerSpec, size: i128) -> Result<ChosenStep, String> {
    let mut bounded: Option<(i128, usize)> = None;
    let mut open: Option<usize> = None;
    let rules = spec.scaling_rules.as_deref().unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        match parse_applies_upto(&rule.applies_upto).map_err(|e| format!("scalingRules[{i}]: {e}"))? {
            Some(upto) if upto >= size && bounded.is_none_or(|(b, _)| upto < b) => bounded = Some((upto, i)),
            Some(_) => {}
            None => open = open.or(Some(i)),
        }
    }
    if let Some(i) = bounded.map(|(_, i)| i).or(open) {
        let rule = &rules[i];
        let step = parse_step(&rule.threshold).map_err(|e| format!("scalingRules[{i}]: {e}"))?;
        let upto = if rule.applies_upto.is_empty() {
            "any size"
        } else {
            &rule.applies_upto
        };
        return Ok(ChosenStep {
            step,
            source: format!(
                "scalingRules[{i}] (appliesUpto {upto}, threshold {})",
                rule.threshold
            ),
        });
    }
    let percent = spec.scaling_threshold.unwrap_or(DEFAULT_SCALING_THRESHOLD);
    let step = u32::try_from(percent)
        .ok()
        .filter(|p| *p > 0)
        .map(Step::Percent)
        .ok_or_else(|| format!("scalingThreshold {percent} is not a percent above 0"))?;
    Ok(ChosenStep {
        step,
        source: format!("scalingThreshold {percent}"),
    })
}

/// `size` grown by `step` (a percent rounded up to a whole byte).
pub fn grown(size: i128, step: Step) -> i128 {
    match step {
        Step::Percent(p) => size.saturating_add((size.saturating_mul(i128::from(p)) + 99) / 100),
        Step::Bytes(b) => size.saturating_add(b),
    }
}

/// `bytes` rounded up to a whole GiB.
pub fn round_up_gib(bytes: i128) -> i128 {
    bytes.div_euclid(GIB) * GIB + if bytes.rem_euclid(GIB) == 0 { 0 } else { GIB }
}
