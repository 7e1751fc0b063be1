//! Samples → medians and p90s → one Markdown table, with per-engine errors listed under
//! it instead of numbers.

use std::fmt::Write as _;
use std::path::Path;

/// Samples of one metric on one engine, or why there are none.
pub type Samples = Result<Vec<f64>, String>;

/// One metric measured on both engines.
pub struct Row {
    pub metric: String,
    pub unit: &'static str,
    pub decimals: usize,
    pub better: Better,
    pub berth: Samples,
    pub dockerd: Samples,
}

/// Which way a metric improves. It decides the ratio's direction (above 1 always means
/// Berth wins) and which tail the p90 column shows (always the slow one).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Better {
    /// Times, memory: p90 is the 90th percentile, the ratio dockerd / Berth.
    Lower,
    /// Rates: p90 is the rate 90 % of samples reached (the 10th percentile), the
    /// ratio Berth / dockerd.
    Higher,
}

#[derive(Default)]
pub struct Report {
    /// Context lines printed above the table (inputs, iterations, versions).
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    /// Groups that failed as a whole (e.g. the registry did not start).
    pub failures: Vec<String>,
}

/// Linear interpolation between closest ranks (`p` in 0..=1); the median of an even
/// count is the mean of the middle two.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (*s.get(lo)?, *s.get(hi)?);
    Some(a + (b - a) * (rank - lo as f64))
}

/// Every sample less `by`: a series without a fixed cost that no engine decides.
pub fn less(samples: &Samples, by: f64) -> Samples {
    samples.clone().map(|v| v.iter().map(|t| t - by).collect())
}

/// The median (`tail == false`) or the slow tail (p90 of times, p10 of rates).
fn cell(r: &Samples, better: Better, tail: bool, decimals: usize) -> String {
    let p = match (tail, better) {
        (false, _) => 0.5,
        (true, Better::Lower) => 0.9,
        (true, Better::Higher) => 0.1,
    };
    match r {
        Ok(s) => percentile(s, p)
            .map(|v| format!("{v:.decimals$}"))
            .unwrap_or_else(|| "–".into()),
        Err(_) => "error".into(),
    }
}

fn ratio(row: &Row) -> String {
    let median = |r: &Samples| r.as_ref().ok().and_then(|s| percentile(s, 0.5));
    match (median(&row.berth), median(&row.dockerd)) {
        (Some(b), Some(d)) if b > 0.0 && row.better == Better::Lower => {
            format!("{:.2}×", d / b)
        }
        (Some(b), Some(d)) if d > 0.0 && row.better == Better::Higher => {
            format!("{:.2}×", b / d)
        }
        _ => "–".into(),
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Berth vs dockerd\n\n");
        for n in &self.notes {
            let _ = writeln!(out, "{n}  ");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "| metric | Berth median | Berth p90 | dockerd median | dockerd p90 | dockerd / Berth |\n\
             |---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let d = r.decimals;
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {} | {} |",
                r.metric,
                r.unit,
                cell(&r.berth, r.better, false, d),
                cell(&r.berth, r.better, true, d),
                cell(&r.dockerd, r.better, false, d),
                cell(&r.dockerd, r.better, true, d),
                ratio(r)
            );
        }
        if self.rows.iter().any(|r| r.better == Better::Higher) {
            out.push_str(
                "\nLower is better, except for rates (/s), whose p90 is the rate 90 % of \
                 samples reached. The last column above 1 means Berth wins (dockerd / Berth, \
                 for rates Berth / dockerd).\n",
            );
        } else {
            out.push_str(
                "\nLower is better in every row; the last column above 1 means Berth wins.\n",
            );
        }
        let errors = self.errors();
        if !errors.is_empty() {
            out.push_str("\nErrors:\n\n");
            for e in errors {
                let _ = writeln!(out, "- {e}");
            }
        }
        out
    }

    /// Each distinct per-engine error, then each failed group.
    fn errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for r in &self.rows {
            for (who, res) in [("Berth", &r.berth), ("dockerd", &r.dockerd)] {
                if let Err(e) = res {
                    let line = format!(
                        "{who}: {}",
                        e.split_whitespace().collect::<Vec<_>>().join(" ")
                    );
                    if !errors.contains(&line) {
                        errors.push(line);
                    }
                }
            }
        }
        errors.extend(self.failures.iter().cloned());
        errors
    }

    pub fn error_count(&self) -> usize {
        self.errors().len()
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(path, self.markdown())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[4.0, 1.0, 2.0, 3.0], 0.5), Some(2.5));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let p90 = percentile(&ten, 0.9).unwrap_or_default();
        assert!((p90 - 9.1).abs() < 1e-9, "{p90}");
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn table_has_medians_ratio_and_errors() {
        let r = Report {
            notes: vec!["3 iterations".into()],
            rows: vec![
                Row {
                    metric: "x".into(),
                    unit: "s",
                    decimals: 3,
                    better: Better::Lower,
                    berth: Ok(vec![1.0, 2.0, 3.0]),
                    dockerd: Ok(vec![4.0, 4.0, 8.0]),
                },
                Row {
                    metric: "y".into(),
                    unit: "MB",
                    decimals: 1,
                    better: Better::Lower,
                    berth: Err("pull not supported".into()),
                    dockerd: Ok(vec![100.0]),
                },
            ],
            failures: Vec::new(),
        };
        let md = r.markdown();
        assert!(
            md.contains("| x (s) | 2.000 | 2.800 | 4.000 | 7.200 | 2.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| y (MB) | error | error | 100.0 | 100.0 | – |"),
            "{md}"
        );
        assert!(md.contains("- Berth: pull not supported"), "{md}");
        assert!(md.contains("Lower is better in every row"), "{md}");
    }

    #[test]
    fn rates_show_the_slow_tail_and_berth_over_dockerd() {
        let r = Report {
            notes: Vec::new(),
            rows: vec![Row {
                metric: "download".into(),
                unit: "MB/s",
                decimals: 0,
                better: Better::Higher,
                berth: Ok((1..=11).map(|i| f64::from(i) * 100.0).collect()),
                dockerd: Ok(vec![300.0, 300.0, 300.0]),
            }],
            failures: Vec::new(),
        };
        let md = r.markdown();
        // Berth: median 600, p10 200; 600 / 300 = 2.
        assert!(
            md.contains("| download (MB/s) | 600 | 200 | 300 | 300 | 2.00× |"),
            "{md}"
        );
        assert!(md.contains("except for rates"), "{md}");
    }
}
