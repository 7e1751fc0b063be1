//! Samples → medians and p90s → one Markdown table.

use std::fmt::Write as _;
use std::path::Path;

/// One metric measured on both engines. Lower is better for every row.
pub struct Row {
    pub metric: String,
    pub unit: &'static str,
    pub berth: Result<Vec<f64>, String>,
    pub dockerd: Result<Vec<f64>, String>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let idx = ((s.len() as f64 - 1.0) * p).round() as usize;
    s.get(idx).copied()
}

fn cell(r: &Result<Vec<f64>, String>, p: f64) -> String {
    match r {
        Ok(s) => percentile(s, p)
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "–".into()),
        Err(_) => "error".into(),
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| metric | Berth median | Berth p90 | dockerd median | dockerd p90 | dockerd / Berth (median) |\n|---|---|---|---|---|---|\n",
        );
        let mut errors = String::new();
        for r in &self.rows {
            let ratio = match (&r.berth, &r.dockerd) {
                (Ok(b), Ok(d)) => match (percentile(b, 0.5), percentile(d, 0.5)) {
                    (Some(b), Some(d)) if b > 0.0 => format!("{:.2}×", d / b),
                    _ => "–".into(),
                },
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {} | {} |",
                r.metric,
                r.unit,
                cell(&r.berth, 0.5),
                cell(&r.berth, 0.9),
                cell(&r.dockerd, 0.5),
                cell(&r.dockerd, 0.9),
                ratio
            );
            for (who, res) in [("Berth", &r.berth), ("dockerd", &r.dockerd)] {
                if let Err(e) = res {
                    let _ = writeln!(errors, "- {} / {who}: {e}", r.metric);
                }
            }
        }
        if !errors.is_empty() {
            out.push_str("\nErrors:\n");
            out.push_str(&errors);
        }
        out
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
    fn medians_and_ratio() {
        let r = Report {
            rows: vec![Row {
                metric: "x".into(),
                unit: "s",
                berth: Ok(vec![1.0, 2.0, 3.0]),
                dockerd: Ok(vec![4.0, 4.0, 8.0]),
            }],
        };
        let md = r.markdown();
        assert!(
            md.contains("| x (s) | 2.000 | 3.000 | 4.000 | 8.000 | 2.00× |"),
            "{md}"
        );
    }
}
