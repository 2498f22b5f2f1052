//! Just enough of resource.Quantity for storage sizes (bytes, integer).

/// Parses a storage quantity ("10Gi", "1G", "500M", "1e9", "1024") into bytes.
/// Fractions are rounded up, like Kubernetes does when it needs an integer value.
pub fn parse(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mantissa, scale): (f64, f64) = match suffix {
        "" => (num.parse().ok()?, 1.0),
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let pow = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            (num.parse().ok()?, 1024f64.powi(pow))
        }
        "k" => (num.parse().ok()?, 1e3),
        "M" => (num.parse().ok()?, 1e6),
        "G" => (num.parse().ok()?, 1e9),
        "T" => (num.parse().ok()?, 1e12),
        "P" => (num.parse().ok()?, 1e15),
        "E" => (num.parse().ok()?, 1e18),
        "m" => (num.parse().ok()?, 1e-3),
        s if s.starts_with(['e', 'E']) => (num.parse().ok()?, 10f64.powi(s[1..].parse().ok()?)),
        _ => return None,
    };
    // Integer path keeps exactness for the common "<int><suffix>" case.
    if let (Ok(n), true) = (num.parse::<i128>(), scale >= 1.0) {
        return Some(n * scale as i128);
    }
    Some((mantissa * scale).ceil() as i128)
}

/// Formats bytes the way Kubernetes' canonical form would for a binary-SI sum:
/// the largest binary suffix that divides exactly, else a plain integer.
pub fn format(bytes: i128) -> String {
    const SUFFIXES: [(&str, i128); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    if bytes == 0 {
        return "0".to_owned();
    }
    for (suffix, unit) in SUFFIXES {
        if bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_and_exponent_forms() {
        assert_eq!(parse("10Gi"), Some(10 * (1 << 30)));
        assert_eq!(parse("1G"), Some(1_000_000_000));
        assert_eq!(parse("500M"), Some(500_000_000));
        assert_eq!(parse("1e3"), Some(1000));
        assert_eq!(parse("1536"), Some(1536));
        assert_eq!(parse("1.5Gi"), Some(3 * (1 << 29)));
        assert_eq!(parse("2k"), Some(2000));
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("10Xi"), None);
    }

    #[test]
    fn formats_with_largest_exact_binary_suffix() {
        assert_eq!(format(3 * (1 << 30)), "3Gi");
        assert_eq!(format(1536 * (1 << 20)), "1536Mi");
        assert_eq!(format(1000), "1000");
        assert_eq!(format(0), "0");
        assert_eq!(parse(&format(7 * (1 << 40))), Some(7 * (1 << 40)));
    }
}
