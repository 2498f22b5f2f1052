//! Exact Kubernetes `resource.Quantity` parsing and comparison.
//!
//! Values are held as signed nano-units (`1` = 10^9 nano) in an `i128`, which represents every
//! quantity Kubernetes can store (at most 2^63-1 base units, nano precision) without floats.
//! Precision finer than a nano-unit is rounded up, as Kubernetes does.

use std::{cmp::Ordering, fmt, str::FromStr};

/// Nano-units in one base unit.
const NANO: i128 = 1_000_000_000;
/// The largest magnitude Kubernetes represents: 2^63-1 base units.
const MAX_NANO: i128 = (i64::MAX as i128) * NANO;

/// Why a string is not a Kubernetes quantity. Messages follow apimachinery's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("quantity is larger than the largest Kubernetes quantity (2^63-1)")]
    TooLarge,
}

/// A parsed quantity: its exact value and the text it came from.
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

impl Quantity {
    /// Parses a quantity exactly, e.g. `1Gi`, `1.5Gi`, `500M`, `1e9`, `0.5Ti`, `100m`.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        Ok(Self {
            nanos: parse_nanos(s)?,
            text: s.to_owned(),
        })
    }

    /// A quantity of whole bytes, written in the most readable exact form (`2Gi`, `1500M`, `7`).
    pub fn from_bytes(bytes: i128) -> Self {
        let nanos = bytes.saturating_mul(NANO).clamp(-MAX_NANO, MAX_NANO);
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// The exact value of `s` in nano-units, without keeping its text (no allocation).
    pub fn nanos_of(s: &str) -> Result<i128, QuantityError> {
        parse_nanos(s)
    }

    /// A computed value (clamped like every sum), written in canonical form.
    pub fn from_nanos(nanos: i128) -> Self {
        let nanos = nanos.clamp(-MAX_NANO, MAX_NANO);
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// `a + b` as [`Quantity::add`] computes it, on nano-units.
    pub fn add_nanos(a: i128, b: i128) -> i128 {
        a.saturating_add(b).clamp(-MAX_NANO, MAX_NANO)
    }

    /// The value in nano-units (exact).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in whole base units, rounded up (a fractional byte needs a whole byte).
    pub fn bytes_ceil(&self) -> i128 {
        let whole = self.nanos.div_euclid(NANO);
        if self.nanos.rem_euclid(NANO) == 0 {
            whole
        } else {
            whole + 1
        }
    }

    /// The text the quantity was parsed from (or its canonical form when computed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    /// Sum of two quantities, written in canonical form.
    pub fn add(&self, other: &Self) -> Self {
        let nanos = Self::add_nanos(self.nanos, other.nanos);
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// Difference of two quantities, written in canonical form.
    pub fn sub(&self, other: &Self) -> Self {
        let nanos = self.nanos.saturating_sub(other.nanos).clamp(-MAX_NANO, MAX_NANO);
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// This quantity times `n`, written in canonical form.
    pub fn times(&self, n: i128) -> Self {
        let nanos = self.nanos.saturating_mul(n).clamp(-MAX_NANO, MAX_NANO);
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// `percent`% of this quantity, rounded up to a whole nano-unit.
    pub fn percent(&self, percent: u32) -> Self {
        let scaled = self.nanos.saturating_mul(i128::from(percent));
        let nanos = if scaled.rem_euclid(100) == 0 {
            scaled / 100
        } else {
            scaled.div_euclid(100) + 1
        };
        Self {
            nanos,
            text: format_nanos(nanos),
        }
    }

    /// The canonical text of this value (ignores how it was written).
    pub fn canonical(&self) -> String {
        format_nanos(self.nanos)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// The multiplier a suffix stands for: `2^binary * 10^decimal`.
struct Scale {
    binary: u32,
    decimal: i32,
}

fn interpret_suffix(suffix: &str) -> Result<Scale, QuantityError> {
    let s = |binary, decimal| Ok(Scale { binary, decimal });
    match suffix {
        "" => s(0, 0),
        "Ki" => s(10, 0),
        "Mi" => s(20, 0),
        "Gi" => s(30, 0),
        "Ti" => s(40, 0),
        "Pi" => s(50, 0),
        "Ei" => s(60, 0),
        "n" => s(0, -9),
        "u" => s(0, -6),
        "m" => s(0, -3),
        "k" => s(0, 3),
        "M" => s(0, 6),
        "G" => s(0, 9),
        "T" => s(0, 12),
        "P" => s(0, 15),
        "E" => s(0, 18),
        _ => {
            // decimalExponent: "e" or "E" followed by a signed integer.
            let rest = suffix.strip_prefix(['e', 'E']).ok_or(QuantityError::Suffix)?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Suffix);
            }
            let exp: i32 = rest.parse().map_err(|_| QuantityError::Suffix)?;
            s(0, exp)
        }
    }
}

/// Splits `s` the way apimachinery's `parseQuantityString` does.
fn split(s: &str) -> Result<(bool, &str, &str, &str), QuantityError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    let mut pos = 0;
    let mut positive = true;
    match b[0] {
        b'-' => {
            positive = false;
            pos = 1;
        }
        b'+' => pos = 1,
        _ => {}
    }
    let int_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int = &s[int_start..pos];
    let mut frac = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac = &s[frac_start..pos];
    }
    if int.is_empty() && frac.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != b.len() {
        return Err(QuantityError::FormatWrong);
    }
    Ok((positive, int, frac, &s[suffix_start..]))
}

fn parse_nanos(s: &str) -> Result<i128, QuantityError> {
    let (positive, int, frac, suffix) = split(s)?;
    let scale = interpret_suffix(suffix)?;
    // value = digits * 10^(9 - frac.len() + decimal) * 2^binary, in nano-units.
    let frac_len = i32::try_from(frac.len()).map_err(|_| QuantityError::Numeric)?;
    let exp10 = 9 - frac_len + scale.decimal;
    // The significant digits (leading zeros dropped) as a number, without allocating: at most
    // 38 of them, which always fit a u128.
    let mut digits = 0usize;
    let mut n: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if digits == 0 && b == b'0' {
            continue;
        }
        digits += 1;
        if digits > 38 {
            return Err(QuantityError::TooLarge);
        }
        n = n * 10 + u128::from(b - b'0');
    }
    let magnitude = if digits == 0 {
        0
    } else {
        let n = n
            .checked_mul(1u128 << scale.binary)
            .ok_or(QuantityError::TooLarge)?;
        scale_by_pow10(n, exp10)?
    };
    let magnitude = i128::try_from(magnitude).map_err(|_| QuantityError::TooLarge)?;
    if magnitude > MAX_NANO {
        return Err(QuantityError::TooLarge);
    }
    Ok(if positive { magnitude } else { -magnitude })
}

/// `n * 10^exp`, rounding up when `exp` is negative (Kubernetes rounds up lost precision).
fn scale_by_pow10(n: u128, exp: i32) -> Result<u128, QuantityError> {
    if exp >= 0 {
        let p = 10u128
            .checked_pow(exp.unsigned_abs())
            .ok_or(QuantityError::TooLarge)?;
        return n.checked_mul(p).ok_or(QuantityError::TooLarge);
    }
    match 10u128.checked_pow(exp.unsigned_abs()) {
        Some(p) => Ok(n.div_ceil(p)),
        // 10^-exp exceeds u128, so 0 < n < 10^-exp: the value rounds up to one nano-unit.
        None => Ok(u128::from(n > 0)),
    }
}

/// The shortest exact text for a nano value: binary suffixes for whole multiples of 1024,
/// then decimal suffixes, then milli/micro/nano.
fn format_nanos(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n == 0 {
        return "0".to_owned();
    }
    let nano = NANO.unsigned_abs();
    if n.is_multiple_of(nano) {
        let units = n / nano;
        for (suffix, shift) in [
            ("Ei", 60),
            ("Pi", 50),
            ("Ti", 40),
            ("Gi", 30),
            ("Mi", 20),
            ("Ki", 10),
        ] {
            let base = 1u128 << shift;
            if units.is_multiple_of(base) {
                return format!("{sign}{}{suffix}", units / base);
            }
        }
        for (suffix, exp) in [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)] {
            let base = 10u128.pow(exp);
            if units.is_multiple_of(base) {
                return format!("{sign}{}{suffix}", units / base);
            }
        }
        return format!("{sign}{units}");
    }
    for (suffix, div) in [("m", 1_000_000u128), ("u", 1_000)] {
        if n.is_multiple_of(div) {
            return format!("{sign}{}{suffix}", n / div);
        }
    }
    format!("{sign}{n}n")
}

#[cfg(test)]
mod tests;
