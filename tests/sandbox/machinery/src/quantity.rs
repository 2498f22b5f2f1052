//! Exact `resource.Quantity` arithmetic (parse, add, compare, canonical string) for quota and
//! PVC size rules. Values are kept as integer nano-units, which is exact for every quantity a
//! storage request can hold.

use std::cmp::Ordering;
use std::fmt;

const NANO: i128 = 1_000_000_000;

/// How kube prints a quantity back (the suffix family of the first parsed operand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    BinarySI,
    DecimalSI,
    DecimalExponent,
}

/// An exact quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// The string is not a valid quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
pub struct QuantityError(pub String);

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

impl Quantity {
    /// Zero (prints as "0"; takes the other operand's format on add).
    pub fn zero() -> Self {
        Self {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }

    /// A whole number of units, printed as DecimalSI.
    pub fn from_units(units: i64) -> Self {
        Self {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSI,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Parses `1Gi`, `500M`, `1.5Gi`, `100m`, `1e3`, `-2`.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let err = || QuantityError(s.to_string());
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let digits = format!("{int_part}{frac_part}");
        let mantissa: i128 = digits.parse().map_err(|_| err())?;
        let scale = u32::try_from(frac_part.len()).map_err(|_| err())?;
        // value = mantissa * mul_num / mul_den / 10^scale
        let (mul_num, mul_den, format): (i128, i128, Format) = match suffix {
            "" => (1, 1, Format::DecimalSI),
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                let k = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                    .iter()
                    .position(|x| *x == suffix)
                    .unwrap_or(0);
                (
                    1024_i128.pow(u32::try_from(k + 1).map_err(|_| err())?),
                    1,
                    Format::BinarySI,
                )
            }
            "n" => (1, 1_000_000_000, Format::DecimalSI),
            "u" => (1, 1_000_000, Format::DecimalSI),
            "m" => (1, 1_000, Format::DecimalSI),
            "k" => (1_000, 1, Format::DecimalSI),
            "M" => (1_000_000, 1, Format::DecimalSI),
            "G" => (10_i128.pow(9), 1, Format::DecimalSI),
            "T" => (10_i128.pow(12), 1, Format::DecimalSI),
            "P" => (10_i128.pow(15), 1, Format::DecimalSI),
            "E" => (10_i128.pow(18), 1, Format::DecimalSI),
            e if e.starts_with(['e', 'E']) => {
                let exp: i32 = e[1..].parse().map_err(|_| err())?;
                if exp.unsigned_abs() > 24 {
                    return Err(err());
                }
                let p = 10_i128.pow(exp.unsigned_abs());
                if exp >= 0 {
                    (p, 1, Format::DecimalExponent)
                } else {
                    (1, p, Format::DecimalExponent)
                }
            }
            _ => return Err(err()),
        };
        let num = mantissa
            .checked_mul(mul_num)
            .and_then(|v| v.checked_mul(NANO))
            .ok_or_else(err)?;
        let den = mul_den
            .checked_mul(10_i128.checked_pow(scale).ok_or_else(err)?)
            .ok_or_else(err)?;
        // kube rounds anything finer than nano up.
        let mut nanos = num / den + i128::from(num % den != 0);
        if neg {
            nanos = -nanos;
        }
        Ok(Self { nanos, format })
    }

    /// Sum; keeps this operand's format unless it is zero.
    pub fn add(&self, other: &Self) -> Self {
        Self {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.is_zero() { other.format } else { self.format },
        }
    }

    /// Difference; keeps this operand's format unless it is zero.
    pub fn sub(&self, other: &Self) -> Self {
        Self {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: if self.is_zero() { other.format } else { self.format },
        }
    }

    /// The canonical string kube-apiserver prints (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        let whole = self.nanos % NANO == 0;
        if format == Format::BinarySI && (self.nanos.abs() < 1024 * NANO || !whole) {
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut v = self.nanos / NANO;
            let mut k = 0;
            while k < 6 && v % 1024 == 0 {
                v /= 1024;
                k += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
            return format!("{v}{suffix}");
        }
        // Largest exponent (multiple of 3, from nano) that keeps the mantissa whole.
        let mut v = self.nanos;
        let mut e: i32 = -9;
        while e < 18 && v % 1000 == 0 {
            v /= 1000;
            e += 3;
        }
        if format == Format::DecimalExponent {
            return if e == 0 {
                format!("{v}")
            } else {
                format!("{v}e{e}")
            };
        }
        let suffix = match e {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        format!("{v}{suffix}")
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_and_compares_exactly() {
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("1G"), q("1000M"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("100m"), q("0.1"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("-1Ki"), q("-1024"));
        assert!(q("1Gi") < q("1073741825"));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "Gi", "1..2", "1Qi", "abc", "1 Gi", "1e99"] {
            assert!(Quantity::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn canonical_strings_match_kube() {
        assert_eq!(q("1024Mi").canonical(), "1Gi");
        assert_eq!(q("1.5Gi").canonical(), "1536Mi");
        assert_eq!(q("1.5k").canonical(), "1500");
        assert_eq!(q("1000").canonical(), "1k");
        assert_eq!(q("100m").canonical(), "100m");
        assert_eq!(q("512").canonical(), "512");
        assert_eq!(q("0Gi").canonical(), "0");
        assert_eq!(q("1e3").canonical(), "1e3");
        assert_eq!(q("0.5Ki").canonical(), "512");
    }

    #[test]
    fn add_keeps_first_format() {
        assert_eq!(q("1Gi").add(&q("2Gi")).canonical(), "3Gi");
        assert_eq!(Quantity::zero().add(&q("2Gi")).canonical(), "2Gi");
        assert_eq!(q("3Gi").sub(&q("1Gi")).canonical(), "2Gi");
        assert_eq!(q("1G").add(&q("500M")).canonical(), "1500M");
    }
}
