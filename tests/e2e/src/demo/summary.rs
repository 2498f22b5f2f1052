//! The summary table: each PVC's capacity before and after.

/// One PVC's capacity before and after the expansions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvcRow {
    pub database: String,
    pub pvc: String,
    pub before: String,
    pub after: String,
}

/// A plain-text table that fits 80 columns (long names are cut with `~`).
pub fn table(rows: &[PvcRow]) -> String {
    fn cut(s: &str, w: usize) -> String {
        if s.chars().count() <= w {
            s.to_owned()
        } else {
            let mut t: String = s.chars().take(w - 1).collect();
            t.push('~');
            t
        }
    }
    let mut out = format!(
        "{:<16} {:<40} {:>10} {:>10}\n",
        "DATABASE", "PVC", "BEFORE", "AFTER"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<16} {:<40} {:>10} {:>10}\n",
            cut(&r.database, 16),
            cut(&r.pvc, 40),
            cut(&r.before, 10),
            cut(&r.after, 10)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fit_80_columns_even_with_long_names() {
        let rows = [PvcRow {
            database: "a-very-long-database-name".into(),
            pvc: "data-a-very-long-database-name-shard0-0-and-more-text".into(),
            before: "1Gi".into(),
            after: "2Gi".into(),
        }];
        let t = table(&rows);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(
            t.lines()
                .nth(1)
                .is_some_and(|l| l.ends_with("2Gi") && l.contains('~')),
            "{t}"
        );
    }
}
