//! `spec.timeout` of an ops request: a Go duration, as KubeDB reads it (`metav1.Duration`).

use super::{Denial, Rule};
use crate::duration;

/// Denies a `spec.timeout` that is not a positive Go duration (`300s`, `5m`, `1h30m`). KubeDB's
/// docs call the field "in seconds", so a bare number is the likely mistake: the message shows
/// it with its unit. Absent is fine (the defaults fill it in).
pub fn validate_timeout(timeout: Option<&str>) -> Result<(), Denial> {
    let Some(text) = timeout else {
        return Ok(());
    };
    let hint = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{text}s for {text} seconds, ")
    } else {
        String::new()
    };
    let problem = match duration::parse(text) {
        Ok(d) if d.is_zero() => "must be longer than zero",
        Ok(_) => return Ok(()),
        Err(_) => "is not a duration",
    };
    Err(Denial::new(
        Rule::Timeout,
        format!(
            "spec.timeout {text:?} {problem}: write a Go duration with its unit, such as {hint}5m or 1h30m"
        ),
    ))
}
