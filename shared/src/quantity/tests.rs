use super::*;
use proptest::prelude::*;

fn bytes(s: &str) -> i128 {
    let q = Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(q.nanos() % NANO, 0, "{s} is not whole bytes");
    q.nanos() / NANO
}

#[test]
fn accepts_every_form_kubernetes_accepts() {
    let gi = 1i128 << 30;
    let cases: &[(&str, i128)] = &[
        ("1Gi", gi),
        ("1.5Gi", gi + gi / 2),
        ("500M", 500_000_000),
        ("1e9", 1_000_000_000),
        ("1E9", 1_000_000_000),
        ("1e+9", 1_000_000_000),
        ("1000000000", 1_000_000_000),
        ("0.5Ti", 1i128 << 39),
        ("1Ki", 1024),
        ("1k", 1000),
        ("2Ei", 2i128 << 60),
        ("1E", 1_000_000_000_000_000_000),
        ("+2Mi", 2 << 20),
        ("5.", 5),
        (".5k", 500),
        ("0", 0),
        ("007", 7),
        ("1.25e3", 1250),
    ];
    for (text, want) in cases {
        assert_eq!(bytes(text), *want, "{text}");
    }
}

#[test]
fn keeps_sub_unit_values_exact_and_rounds_up_below_nano() {
    assert_eq!(Quantity::parse("100m").unwrap().nanos(), 100_000_000);
    assert_eq!(Quantity::parse("1n").unwrap().nanos(), 1);
    assert_eq!(Quantity::parse("1e-3").unwrap().nanos(), 1_000_000);
    assert_eq!(Quantity::parse("0.1n").unwrap().nanos(), 1);
    assert_eq!(
        Quantity::parse("0.0000000000000000000000000000000000000000001")
            .unwrap()
            .nanos(),
        1
    );
    assert_eq!(Quantity::parse("-1.5").unwrap().nanos(), -1_500_000_000);
    assert_eq!(Quantity::parse("100m").unwrap().bytes_ceil(), 1);
}

#[test]
fn rejects_what_kubernetes_rejects() {
    let cases: &[(&str, QuantityError)] = &[
        ("", QuantityError::FormatWrong),
        ("Gi", QuantityError::FormatWrong),
        (".", QuantityError::FormatWrong),
        ("1 Gi", QuantityError::FormatWrong),
        ("1GB", QuantityError::FormatWrong),
        ("1g", QuantityError::FormatWrong),
        ("1.5.5", QuantityError::FormatWrong),
        ("--1", QuantityError::FormatWrong),
        ("1K", QuantityError::Suffix),
        ("1e", QuantityError::Suffix),
        ("1Gi5", QuantityError::Suffix),
        ("1iG", QuantityError::Suffix),
        ("1e1000", QuantityError::TooLarge),
        ("9Ei", QuantityError::TooLarge),
        (
            "99999999999999999999999999999999999999999",
            QuantityError::TooLarge,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Quantity::parse(text).unwrap_err(), *want, "{text:?}");
    }
}

#[test]
fn error_messages_match_apimachinery() {
    assert_eq!(
        Quantity::parse("2GB").unwrap_err().to_string(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        Quantity::parse("2K").unwrap_err().to_string(),
        "unable to parse quantity's suffix"
    );
}

#[test]
fn compares_across_forms() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert_eq!(q("1Gi"), q("1073741824"));
    assert_eq!(q("1G"), q("1e9"));
    assert!(q("1Gi") > q("1G"));
    assert!(q("1.5Gi") < q("2Gi"));
    assert!(q("1024Mi") == q("1Gi"));
    assert!(q("999m") < q("1"));
}

#[test]
fn formats_computed_values_readably() {
    assert_eq!(Quantity::from_bytes(2 << 30).to_string(), "2Gi");
    assert_eq!(Quantity::from_bytes(1_500_000_000).to_string(), "1500M");
    assert_eq!(Quantity::from_bytes(7).to_string(), "7");
    assert_eq!(Quantity::from_bytes(0).to_string(), "0");
    assert_eq!(Quantity::parse("100m").unwrap().canonical(), "100m");
    assert_eq!(Quantity::parse("1Gi").unwrap().times(3).to_string(), "3Gi");
    assert_eq!(Quantity::parse("10Gi").unwrap().percent(50).to_string(), "5Gi");
    assert_eq!(
        Quantity::parse("3Gi")
            .unwrap()
            .sub(&Quantity::parse("1Gi").unwrap())
            .to_string(),
        "2Gi"
    );
}

const SUFFIXES: &[(&str, u32, i32)] = &[
    ("", 0, 0),
    ("Ki", 10, 0),
    ("Mi", 20, 0),
    ("Gi", 30, 0),
    ("Ti", 40, 0),
    ("k", 0, 3),
    ("M", 0, 6),
    ("G", 0, 9),
    ("T", 0, 12),
];

proptest! {
    #[test]
    fn whole_numbers_with_any_suffix_equal_their_byte_count(n in 0u64..1_000_000, idx in 0usize..9) {
        let (suffix, bin, dec) = SUFFIXES[idx];
        let want = i128::from(n) * (1i128 << bin) * 10i128.pow(dec.unsigned_abs());
        prop_assert_eq!(bytes(&format!("{n}{suffix}")), want);
    }

    #[test]
    fn decimal_fractions_are_exact(whole in 0u32..10_000, frac in 0u32..1000, idx in 0usize..9) {
        let (suffix, bin, dec) = SUFFIXES[idx];
        let q = Quantity::parse(&format!("{whole}.{frac:03}{suffix}")).unwrap();
        // (whole*1000 + frac) / 1000 * 2^bin * 10^dec, in nano-units, rounded up.
        let num = (i128::from(whole) * 1000 + i128::from(frac)) * (1i128 << bin) * 10i128.pow(dec.unsigned_abs()) * NANO;
        prop_assert_eq!(q.nanos(), (num + 999) / 1000);
    }

    #[test]
    fn canonical_form_round_trips(bytes_count in 0i64..i64::MAX / 2) {
        let q = Quantity::from_bytes(i128::from(bytes_count));
        let back = Quantity::parse(q.as_str()).unwrap();
        prop_assert_eq!(back.nanos(), i128::from(bytes_count) * NANO);
    }

    #[test]
    fn scientific_notation_matches_byte_count(mantissa in 0u32..100_000, exp in 0u32..12) {
        let want = i128::from(mantissa) * 10i128.pow(exp);
        prop_assert_eq!(bytes(&format!("{mantissa}e{exp}")), want);
    }

    #[test]
    fn garbage_never_panics(s in "\\PC{0,12}") {
        let _ = Quantity::parse(&s);
    }
}
