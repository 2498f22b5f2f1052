//! The Prometheus text format 0.0.4 for scrapers that ask for it (`promtool check metrics`
//! reads only that); OpenMetrics stays the default. The same as webhook/src/metrics.rs's.

/// Content type of the Prometheus text format, for scrapers that ask for it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for the Prometheus text format rather than OpenMetrics (the
/// default, and Prometheus's first choice): `promtool check metrics` reads only the former.
pub fn wants_text_format(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/plain") && !a.contains("application/openmetrics-text"))
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter family is named after its
/// `_total` samples there, and there is no `# EOF` or `# UNIT`.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_after_their_samples() {
        let om = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{a=\"b\"} 2\n\
                  # HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n# UNIT x_open seconds\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total{a=\"b\"} 2\n\
             # HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n"
        );
        assert!(wants_text_format(Some("text/plain; version=0.0.4")));
        assert!(!wants_text_format(None));
        assert!(!wants_text_format(Some("*/*")));
        assert!(!wants_text_format(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
    }
}
